"""Which column of a signal file holds its timestamps.

Positronic's original layout (the one this library writes) has one int64 column, ``timestamp`` in signal
files and ``ts_ns`` in video frame indexes. Its later format (schema metadata
``positronic.signal_version = 2``) has one int64 column ``ts.<timeline>`` per named timeline instead. For
those, the primary timeline is the first of :data:`TIMELINE_PREFERENCE` that the file has, else the first
timeline column by name; values at a time are then looked up on that timeline.
"""

from collections.abc import Sequence
from pathlib import Path

from positronic.dataset.errors import CorruptSignalError

TIMELINE_COLUMN_PREFIX = 'ts.'
"""Prefix of the per-timeline timestamp columns of the later (version 2) format."""

TIMELINE_PREFERENCE = ('harness.world', 'received.world', 'recorded')
"""Timelines of a version 2 file tried as the primary one, in order (world clock first, as Positronic reads)."""


def primary_time_column(column_names: Sequence[str], legacy_column: str, path: Path) -> str:
    """The name of the column with the primary timestamps.

    ``legacy_column`` is the original layout's column (``timestamp`` or ``ts_ns``); it wins when present.
    Raises CorruptSignalError naming ``path`` when the file has no timestamp column at all.
    """
    if legacy_column in column_names:
        return legacy_column
    timelines = sorted(name for name in column_names if name.startswith(TIMELINE_COLUMN_PREFIX))
    for timeline in TIMELINE_PREFERENCE:
        if TIMELINE_COLUMN_PREFIX + timeline in timelines:
            return TIMELINE_COLUMN_PREFIX + timeline
    if timelines:
        return timelines[0]
    raise CorruptSignalError(
        f'{path}: no timestamp column; expected {legacy_column!r} or {TIMELINE_COLUMN_PREFIX}<timeline> columns, '
        f'found {list(column_names)}'
    )
