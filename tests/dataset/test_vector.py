"""Scalar and vector signals in parquet: schema, round trip, batching and bad input."""

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from positronic.dataset.errors import CorruptSignalError, SignalValueError, TimestampOrderError, TimestampTypeError
from positronic.dataset.vector import BATCH_ROWS, VectorSignal, VectorWriter


def write(path, values, timestamps=None):
    writer = VectorWriter(path, 'sig')
    for i, value in enumerate(values):
        writer.append(value, timestamps[i] if timestamps is not None else 1000 + i)
    writer.close()
    return VectorSignal(path, 'sig')


@pytest.mark.parametrize(
    ('values', 'arrow_type'),
    [
        ([np.zeros(7, np.float32), np.ones(7, np.float32)], pa.list_(pa.float32())),
        ([np.zeros(7), np.ones(7)], pa.list_(pa.float64())),
        ([np.array([1, 2], np.int64)], pa.list_(pa.int64())),
        ([[1, 2, 3], (4, 5, 6)], pa.list_(pa.int64())),
        ([0.5, 1.5], pa.float64()),
        ([np.float64(0.5), 2.0], pa.float64()),
        ([np.float32(0.5)], pa.float32()),
        ([3, 4], pa.int64()),
        (['a', 'b'], pa.string()),
        ([True, False], pa.bool_()),
    ],
)
def test_schema_is_timestamp_then_value_typed_from_the_first_value(tmp_path, values, arrow_type):
    write(tmp_path / 's.parquet', values)
    schema = pq.read_schema(tmp_path / 's.parquet')
    assert schema.names == ['timestamp', 'value']
    assert schema.field('timestamp').type == pa.int64() and schema.field('timestamp').nullable
    assert schema.field('value').type == arrow_type
    assert schema.metadata is None or b'positronic.signal_version' not in schema.metadata


def test_vector_round_trip_keeps_dtype_values_and_timestamps(tmp_path):
    rng = np.random.default_rng(0)
    rows = rng.normal(size=(30, 7)).astype(np.float32)
    sig = write(tmp_path / 'q.parquet', list(rows), [10 * i + 5 for i in range(30)])
    assert sig.values.dtype == np.float32 and sig.values.shape == (30, 7)
    np.testing.assert_array_equal(sig.values, rows)
    np.testing.assert_array_equal(sig.timestamps, np.arange(30) * 10 + 5)
    assert sig.timestamps.dtype == np.int64
    value, ts = sig[7]
    np.testing.assert_array_equal(value, rows[7])
    assert ts == 75


def test_scalar_and_string_values_round_trip(tmp_path):
    assert write(tmp_path / 'f.parquet', [0.25, 0.5]).values.tolist() == [0.25, 0.5]
    assert write(tmp_path / 'i.parquet', [3, -4]).values.tolist() == [3, -4]
    strings = write(tmp_path / 's.parquet', ['pick', 'place'])
    assert strings[1] == ('place', 1001)
    assert write(tmp_path / 'b.parquet', [True, False]).values.tolist() == [True, False]


def test_values_are_read_only_and_appends_copy_their_input(tmp_path):
    buffer = np.zeros(3)
    writer = VectorWriter(tmp_path / 'v.parquet', 'v')
    for i in range(3):
        buffer[:] = i
        writer.append(buffer, i)
    writer.close()
    sig = VectorSignal(tmp_path / 'v.parquet', 'v')
    np.testing.assert_array_equal(sig.values[:, 0], [0, 1, 2])
    with pytest.raises(ValueError):
        sig.values[0, 0] = 5


def test_rows_are_written_in_batches_of_ten_thousand(tmp_path):
    n = 2 * BATCH_ROWS + 500
    writer = VectorWriter(tmp_path / 'big.parquet', 'big')
    for i in range(n):
        writer.append(float(i), i)
    writer.close()
    meta = pq.ParquetFile(tmp_path / 'big.parquet').metadata
    assert [meta.row_group(i).num_rows for i in range(meta.num_row_groups)] == [BATCH_ROWS, BATCH_ROWS, 500]
    sig = VectorSignal(tmp_path / 'big.parquet', 'big')
    assert sig.time[15_000] == (15_000.0, 15_000)


def test_non_increasing_timestamp_is_refused_and_leaves_the_signal_usable(tmp_path):
    writer = VectorWriter(tmp_path / 'x.parquet', 'grip')
    writer.append(0.1, 100)
    with pytest.raises(TimestampOrderError, match=r"signal 'grip': timestamp 100 ns is not after the previous one"):
        writer.append(0.2, 100)
    with pytest.raises(TimestampOrderError):
        writer.append(0.2, 50)
    writer.append(0.3, 101)
    writer.close()
    assert VectorSignal(tmp_path / 'x.parquet', 'grip').values.tolist() == [0.1, 0.3]


def test_timestamps_must_be_integers(tmp_path):
    writer = VectorWriter(tmp_path / 'x.parquet', 'grip')
    with pytest.raises(TimestampTypeError, match="signal 'grip': timestamps are int nanoseconds, got float"):
        writer.append(0.1, 1.5)
    writer.append(0.1, np.int64(7))


def test_rejected_value_does_not_advance_time(tmp_path):
    writer = VectorWriter(tmp_path / 'x.parquet', 'q')
    writer.append(np.zeros(2), 10)
    with pytest.raises(SignalValueError):
        writer.append(np.zeros(3), 20)
    writer.append(np.ones(2), 20)
    writer.close()
    assert VectorSignal(tmp_path / 'x.parquet', 'q').timestamps.tolist() == [10, 20]


@pytest.mark.parametrize(
    ('first', 'second', 'message'),
    [
        (
            np.zeros(7, np.float32),
            np.zeros(6, np.float32),
            r'expected ndarray float32 \(7,\) .* got ndarray float32 \(6,\)',
        ),
        (np.zeros(7, np.float32), np.zeros(7, np.float64), r'expected ndarray float32 \(7,\) .* got ndarray float64'),
        (np.zeros(2), 1.0, r'expected ndarray float64 \(2,\) .* got float'),
        (1.0, 2, 'expected a double scalar .* got int'),
        (1, 2.0, 'expected a int64 scalar .* got float'),
        (1.0, np.float32(2), 'expected a double scalar .* got float32'),
        ('a', 1.0, 'expected a string scalar'),
    ],
)
def test_kind_shape_or_dtype_change_is_refused(tmp_path, first, second, message):
    writer = VectorWriter(tmp_path / 'x.parquet', 'q')
    writer.append(first, 1)
    with pytest.raises(SignalValueError, match="signal 'q': " + message):
        writer.append(second, 2)


@pytest.mark.parametrize(
    ('value', 'message'),
    [
        (np.zeros((2, 3)), r'only scalars, 1-D vectors .* got ndarray float64 \(2, 3\)'),
        ({'a': 1}, 'cannot store dict'),
        (None, 'cannot store NoneType'),
        (np.array(['a', 'b']), 'vector dtype must be bool, integer or float'),
        (2**70, 'does not fit in int64'),
    ],
)
def test_unstorable_values_are_refused(tmp_path, value, message):
    with pytest.raises(SignalValueError, match=message):
        VectorWriter(tmp_path / 'x.parquet', 'q').append(value, 1)


def test_abort_deletes_the_file(tmp_path):
    writer = VectorWriter(tmp_path / 'x.parquet', 'q')
    for i in range(BATCH_ROWS + 1):
        writer.append(1.0, i)
    assert (tmp_path / 'x.parquet').exists()
    writer.abort()
    assert not (tmp_path / 'x.parquet').exists()


def test_extra_timeline_columns_of_positronic_recordings_are_ignored(tmp_path):
    table = pa.table(
        {
            'timestamp': pa.array([5, 9], pa.int64()),
            'value': pa.array([[1.0, 2.0], [3.0, 4.0]], pa.list_(pa.float64())),
            'ts_ns.message': pa.array([1, 2], pa.int64()),
            'ts_ns.system': pa.array([7, 3], pa.int64()),
        }
    )
    pq.write_table(table, tmp_path / 'pose.parquet')
    sig = VectorSignal(tmp_path / 'pose.parquet', 'pose')
    assert sig.timestamps.tolist() == [5, 9]
    np.testing.assert_array_equal(sig.time[8][0], [1.0, 2.0])


def test_version_2_files_use_the_preferred_timeline(tmp_path):
    schema = pa.schema(
        [('value', pa.float64()), ('ts.emitted.wall', pa.int64()), ('ts.harness.world', pa.int64())],
        metadata={b'positronic.signal_version': b'2'},
    )
    table = pa.table([[1.0, 2.0], [900, 950], [10, 20]], schema=schema)
    pq.write_table(table, tmp_path / 'grip.parquet')
    sig = VectorSignal(tmp_path / 'grip.parquet', 'grip')
    assert sig.timestamps.tolist() == [10, 20]
    assert sig.time[15] == (1.0, 10)


def test_version_2_file_without_preferred_timeline_uses_the_first_by_name(tmp_path):
    table = pa.table({'value': [1.0], 'ts.b': pa.array([7], pa.int64()), 'ts.a': pa.array([3], pa.int64())})
    pq.write_table(table, tmp_path / 'x.parquet')
    assert VectorSignal(tmp_path / 'x.parquet', 'x').timestamps.tolist() == [3]


def test_unequal_vector_lengths_in_foreign_files_read_as_object_array(tmp_path):
    table = pa.table({'timestamp': pa.array([1, 2], pa.int64()), 'value': [[1.0], [2.0, 3.0]]})
    pq.write_table(table, tmp_path / 'x.parquet')
    values = VectorSignal(tmp_path / 'x.parquet', 'x').values
    assert values.dtype == object and values[1].tolist() == [2.0, 3.0]


@pytest.mark.parametrize(
    ('table', 'message'),
    [
        (pa.table({'value': [1.0]}), "no timestamp column; expected 'timestamp'"),
        (pa.table({'timestamp': pa.array([1], pa.int64())}), "has no 'value' column"),
        (pa.table({'timestamp': pa.array([1.0]), 'value': [1.0]}), 'timestamps must be int64'),
        (pa.table({'timestamp': pa.array([2, 1], pa.int64()), 'value': [1.0, 2.0]}), 'not in ascending order'),
    ],
)
def test_malformed_files_raise_corrupt_signal_error(tmp_path, table, message):
    pq.write_table(table, tmp_path / 'x.parquet')
    with pytest.raises(CorruptSignalError, match=message):
        len(VectorSignal(tmp_path / 'x.parquet', 'x'))


def test_not_a_parquet_file_raises_corrupt_signal_error_on_first_access(tmp_path):
    (tmp_path / 'x.parquet').write_bytes(b'not parquet')
    sig = VectorSignal(tmp_path / 'x.parquet', 'x')
    with pytest.raises(CorruptSignalError, match="signal 'x': cannot read"):
        _ = sig.timestamps
