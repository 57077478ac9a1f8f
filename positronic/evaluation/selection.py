"""Choosing among training runs that differ only in their seed, by how often each stacks on held-out layouts.

Runs of one recipe with different trainer seeds reach the same loss and still differ widely in closed-loop
success (docs/results.md), so only an evaluation on layouts kept apart from both the demonstrations and the final
test can tell them apart.
"""

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from positronic.evaluation.results import SUMMARY_JSON, write_json_atomic


@dataclass(frozen=True)
class Candidate:
    """One training run's final checkpoint and its success on the validation layouts."""

    train_seed: int
    successes: int
    total: int

    @classmethod
    def from_evaluation(cls, train_seed: int, evaluation_dir: Path) -> 'Candidate':
        """The candidate trained with ``train_seed``, scored by the ``summary.json`` in ``evaluation_dir``."""
        result = json.loads((Path(evaluation_dir) / SUMMARY_JSON).read_text())
        return cls(train_seed, int(result['successes']), int(result['total']))


def best_candidate(candidates: Sequence[Candidate]) -> Candidate:
    """The candidate that succeeded most often; a tie goes to the one listed first. ``candidates`` is not empty."""
    if not candidates:
        raise ValueError('no candidates to choose from')
    return max(candidates, key=lambda candidate: candidate.successes)


def write_selection(candidates: Sequence[Candidate], chosen: Candidate, path: Path) -> dict:
    """Write (atomically) which trainer seeds were scored, how each did, and which was kept. Returns what it wrote."""
    record = {'chosen_train_seed': chosen.train_seed, 'candidates': [asdict(c) for c in candidates]}
    write_json_atomic(record, path)
    return record
