"""Choosing the primary timestamp column of a signal file."""

from pathlib import Path

import pytest

from positronic.dataset.errors import CorruptSignalError
from positronic.dataset.timeline import primary_time_column

PATH = Path('x.parquet')


def test_original_layout_column_wins():
    assert primary_time_column(['timestamp', 'value', 'ts.harness.world'], 'timestamp', PATH) == 'timestamp'
    assert primary_time_column(['ts_ns', 'ts_ns.system'], 'ts_ns', PATH) == 'ts_ns'


def test_version_2_prefers_world_timelines_then_recorded():
    names = ['ts.emitted.wall', 'ts.recorded', 'ts.received.world', 'value']
    assert primary_time_column(names, 'timestamp', PATH) == 'ts.received.world'
    assert primary_time_column([*names, 'ts.harness.world'], 'timestamp', PATH) == 'ts.harness.world'
    assert primary_time_column(['ts.emitted.wall', 'ts.recorded'], 'ts_ns', PATH) == 'ts.recorded'


def test_version_2_without_a_preferred_timeline_takes_the_first_by_name():
    assert primary_time_column(['value', 'ts.z', 'ts.emitted.wall'], 'timestamp', PATH) == 'ts.emitted.wall'


def test_file_without_timestamps_is_corrupt():
    with pytest.raises(CorruptSignalError, match=r"x.parquet: no timestamp column; expected 'ts_ns'"):
        primary_time_column(['value'], 'ts_ns', PATH)
