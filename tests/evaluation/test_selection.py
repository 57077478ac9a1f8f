"""Keeping the training run that stacks most often on held-out layouts."""

import json

import pytest

from positronic.evaluation.selection import Candidate, best_candidate, write_selection


def test_the_candidate_with_most_successes_is_kept():
    candidates = [Candidate(3, 38, 50), Candidate(4, 44, 50), Candidate(5, 29, 50)]
    assert best_candidate(candidates) == Candidate(4, 44, 50)


def test_a_tie_goes_to_the_candidate_listed_first():
    assert best_candidate([Candidate(1, 41, 50), Candidate(0, 41, 50)]).train_seed == 1


def test_there_must_be_a_candidate():
    with pytest.raises(ValueError, match='no candidates'):
        best_candidate([])


def test_a_candidate_is_scored_by_its_evaluation_summary(tmp_path):
    (tmp_path / 'summary.json').write_text(json.dumps({'successes': 17, 'total': 20, 'success_rate': 0.85}))
    assert Candidate.from_evaluation(7, tmp_path) == Candidate(7, 17, 20)


def test_the_selection_names_every_candidate_and_the_one_kept(tmp_path):
    candidates = [Candidate(0, 12, 20), Candidate(1, 15, 20)]
    path = tmp_path / 'selection.json'
    written = write_selection(candidates, candidates[1], path)
    assert (
        json.loads(path.read_text())
        == written
        == {
            'chosen_train_seed': 1,
            'candidates': [
                {'train_seed': 0, 'successes': 12, 'total': 20},
                {'train_seed': 1, 'successes': 15, 'total': 20},
            ],
        }
    )
    assert [p.name for p in tmp_path.iterdir()] == ['selection.json']  # no temporary file left
