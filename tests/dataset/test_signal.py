"""Index and time access of signals (Positronic's step-function semantics)."""

from pathlib import Path

import numpy as np
import pytest

from positronic.dataset.errors import TimeOutOfRangeError, TimestampTypeError
from positronic.dataset.signal import LazySequence, Signal, time_grid
from positronic.dataset.vector import VectorSignal, VectorWriter

TS = [100, 200, 300, 400, 500]
VALUES = [10.0, 20.0, 30.0, 40.0, 50.0]


def write_signal(path: Path, timestamps, values) -> VectorSignal:
    writer = VectorWriter(path, 'x')
    for ts, value in zip(timestamps, values, strict=True):
        writer.append(value, ts)
    writer.close()
    return VectorSignal(path, 'x')


@pytest.fixture
def sig(tmp_path) -> Signal:
    """Scalar double signal: 10.0 at 100, 20.0 at 200, ..., 50.0 at 500."""
    return write_signal(tmp_path / 'x.parquet', TS, VALUES)


def values_and_ts(signal: Signal) -> tuple[list, list]:
    return [float(v) for v in signal.values], [int(t) for t in signal.timestamps]


def test_index_returns_value_and_python_int_timestamp(sig):
    value, ts = sig[1]
    assert value == 20.0 and ts == 200 and type(ts) is int
    assert sig[-1] == (50.0, 500)
    assert sig[np.int64(2)] == (30.0, 300)
    assert len(sig) == 5


def test_index_out_of_range_raises_index_error(sig):
    with pytest.raises(IndexError):
        sig[5]
    with pytest.raises(IndexError):
        sig[-6]


def test_slices_and_index_arrays_give_views(sig):
    assert values_and_ts(sig[1:4]) == ([20.0, 30.0, 40.0], [200, 300, 400])
    assert values_and_ts(sig[::2]) == ([10.0, 30.0, 50.0], [100, 300, 500])
    assert values_and_ts(sig[[4, 0, -2]]) == ([50.0, 10.0, 40.0], [500, 100, 400])
    assert values_and_ts(sig[1:][1:][::2]) == ([30.0, 50.0], [300, 500])
    assert len(sig[[]]) == 0


def test_boolean_masks_are_refused(sig):
    with pytest.raises(TypeError, match='boolean masks'):
        sig[np.array([True, False, True, False, True])]


def test_index_array_out_of_range_raises(sig):
    with pytest.raises(IndexError):
        sig[[0, 5]]


def test_iteration_yields_value_timestamp_pairs(sig):
    assert [(float(v), t) for v, t in sig] == list(zip(VALUES, TS, strict=True))


def test_time_lookup_is_at_or_before(sig):
    assert sig.time[300] == (30.0, 300)
    assert sig.time[399] == (30.0, 300)
    assert sig.time[10**12] == (50.0, 500)
    assert sig.time[250.7] == (20.0, 200)
    assert sig.time[np.float64(400.0)] == (40.0, 400)


def test_time_lookup_before_first_raises_key_error_naming_signal(sig):
    with pytest.raises(KeyError, match=r"signal 'x' has no value at t=99 ns: its first record is at 100 ns"):
        sig.time[99]


def test_time_lookup_rejects_numpy_integers_and_bools(sig):
    with pytest.raises(TimestampTypeError, match='not int64'):
        sig.time[np.int64(300)]
    with pytest.raises(TypeError):
        sig.time[True]
    with pytest.raises(TypeError):
        sig.time['300']


def test_window_on_a_record_starts_there(sig):
    assert values_and_ts(sig.time[200:400]) == ([20.0, 30.0], [200, 300])


def test_window_between_records_carries_the_earlier_record_to_its_start(sig):
    assert values_and_ts(sig.time[250:450]) == ([20.0, 30.0, 40.0], [250, 300, 400])


def test_window_before_first_record_is_clipped(sig):
    assert values_and_ts(sig.time[0:250]) == ([10.0, 20.0], [100, 200])


def test_window_with_missing_bounds(sig):
    assert values_and_ts(sig.time[:300]) == ([10.0, 20.0], [100, 200])
    assert values_and_ts(sig.time[450:]) == ([40.0, 50.0], [450, 500])
    assert values_and_ts(sig.time[:]) == (VALUES, TS)


def test_window_after_last_record_carries_the_last_value(sig):
    assert values_and_ts(sig.time[600:700]) == ([50.0], [600])


def test_empty_window_when_stop_is_not_after_start(sig):
    assert len(sig.time[300:300]) == 0
    assert len(sig.time[350:320]) == 0


def test_stepped_window_samples_on_the_grid(sig):
    view = sig.time[150:460:100]
    assert values_and_ts(view) == ([10.0, 20.0, 30.0, 40.0], [150, 250, 350, 450])


def test_stepped_window_without_stop_ends_at_last_plus_one(sig):
    assert values_and_ts(sig.time[100::200]) == ([10.0, 30.0, 50.0], [100, 300, 500])


def test_stepped_window_before_first_raises_key_error(sig):
    with pytest.raises(TimeOutOfRangeError, match='t=50 ns'):
        sig.time[50:300:50]


def test_stepped_window_needs_start_and_positive_step(sig):
    with pytest.raises(ValueError, match='needs a start'):
        sig.time[:300:50]
    with pytest.raises(ValueError, match='positive'):
        sig.time[100:300:0]
    with pytest.raises(ValueError, match='positive'):
        sig.time[300:100:-50]


def test_stepped_window_with_float_step_rounds_times_down(sig):
    assert values_and_ts(sig.time[100:200:33.4]) == ([10.0] * 3, [100, 133, 166])


def test_time_array_gives_values_at_requested_times_in_given_order(sig):
    view = sig.time[[450, 100, 199, 200]]
    assert values_and_ts(view) == ([40.0, 10.0, 10.0, 20.0], [450, 100, 199, 200])
    assert values_and_ts(sig.time[np.array([300.9])]) == ([30.0], [300])


def test_time_array_is_not_modified_or_frozen(sig):
    grid = np.array([150, 250], dtype=np.int64)
    view = sig.time[grid]
    grid[0] = 500
    assert grid.flags.writeable
    assert view.timestamps.tolist() == [150, 250]


def test_time_array_edge_cases(sig):
    assert len(sig.time[[]]) == 0
    with pytest.raises(TypeError):
        sig.time[['a', 'b']]
    with pytest.raises(KeyError):
        sig.time[[300, 99]]


def test_time_access_on_a_view_uses_the_view_timestamps(sig):
    window = sig.time[250:]
    assert window.time[260] == (20.0, 250)
    assert values_and_ts(window.time[260:401:70]) == ([20.0, 30.0, 40.0], [260, 330, 400])


def test_time_access_on_an_unsorted_view_is_refused(sig):
    with pytest.raises(ValueError, match='ascending'):
        sig[[3, 1]].time[300]


def test_vector_values_of_views_are_stacked_arrays(tmp_path):
    vectors = [np.arange(3, dtype=np.float32) + i for i in range(4)]
    sig = write_signal(tmp_path / 'v.parquet', [10, 20, 30, 40], vectors)
    values = sig.time[[15, 40]].values
    assert values.dtype == np.float32
    np.testing.assert_array_equal(values, [[0, 1, 2], [3, 4, 5]])
    assert sig.shape == (3,) and sig.dtype == np.float32


def test_time_grid_keeps_nanosecond_precision_for_large_starts():
    start = 1_700_000_000_123_456_789
    grid = time_grid(start, start + 100_000_000, 1e9 / 30)
    np.testing.assert_array_equal(grid - start, [0, 33_333_333, 66_666_666])
    np.testing.assert_array_equal(time_grid(0, 10, 3), [0, 3, 6, 9])


def test_lazy_sequence_computes_items_on_access():
    calls = []

    def item(i):
        calls.append(i)
        return np.full(2, i)

    seq = LazySequence(5, item)
    assert calls == []
    assert seq[-1].tolist() == [4, 4]
    assert [int(v[0]) for v in seq[1:4:2]] == [1, 3]
    assert calls == [4, 1, 3]
    np.testing.assert_array_equal(np.asarray(seq[:2]), [[0, 0], [1, 1]])
