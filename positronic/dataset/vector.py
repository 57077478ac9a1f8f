"""Scalar and vector signals stored in ``<name>.parquet``.

File schema (Positronic's original layout): column ``timestamp`` int64 (ns, strictly increasing), then column
``value`` whose arrow type follows the first appended value:

- 1-D ndarray (or a list/tuple, converted with ``np.array``) -> ``list<T>`` keeping the dtype
  (float32 -> float, float64 -> double, int64 -> int64, bool -> bool, ...);
- Python ``float`` / ``np.float64`` -> double, ``np.float32`` -> float, ``int`` -> int64, ``str`` -> string,
  ``bool`` -> bool, other numpy scalars -> their dtype.

Shape and dtype are stored nowhere else: the writer keeps them fixed for the whole signal, the reader takes
them from the data. Rows are written in record batches of at most :data:`BATCH_ROWS`, one row group each.
"""

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from positronic.dataset.errors import CorruptSignalError, SignalValueError
from positronic.dataset.signal import Signal, SignalWriter
from positronic.dataset.timeline import primary_time_column

PARQUET_SUFFIX = '.parquet'
"""File name suffix of a scalar/vector signal: ``<name>.parquet``."""
TIMESTAMP_COLUMN = 'timestamp'
"""Column of the record timestamps, int64 ns."""
VALUE_COLUMN = 'value'
"""Column of the record values."""
BATCH_ROWS = 10_000
"""Rows buffered before a record batch (one parquet row group) is written."""

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_SCALAR_TYPES = {bool: pa.bool_(), int: pa.int64(), float: pa.float64(), str: pa.string()}


def _describe(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return f'ndarray {value.dtype} {value.shape}'
    return type(value).__name__


class VectorWriter(SignalWriter):
    """Writes one scalar or vector signal to ``path`` (a ``.parquet`` file), buffering rows in memory."""

    def __init__(self, path: Path, name: str):
        super().__init__(name)
        self.path = path
        self._writer: pq.ParquetWriter | None = None
        self._timestamps: list[int] = []
        self._values: list[Any] = []
        self._arrow_type: pa.DataType | None = None
        self._vector_dtype: np.dtype | None = None
        self._vector_shape: tuple[int, ...] = ()

    def append(self, value: Any, ts_ns: int) -> None:
        """Add one record: a scalar or 1-D vector (see the module docstring) at ``ts_ns`` (int ns)."""
        ts = self._checked_ts(ts_ns)
        if isinstance(value, list | tuple):
            value = np.array(value)
        elif isinstance(value, np.ndarray) and value.ndim == 0:
            value = value[()]
        if self._arrow_type is None:
            self._set_kind(value)
        if self._vector_dtype is not None:
            if type(value) is not np.ndarray or value.dtype != self._vector_dtype or value.shape != self._vector_shape:
                raise SignalValueError(
                    f'signal {self.name!r}: expected ndarray {self._vector_dtype} {self._vector_shape} like its '
                    f'first value, got {_describe(value)}'
                )
            self._values.append(value.copy())
        else:
            if _scalar_arrow_type(value) != self._arrow_type:
                raise SignalValueError(
                    f'signal {self.name!r}: expected a {self._arrow_type} scalar like its first value, '
                    f'got {_describe(value)} {value!r}'
                )
            if type(value) is int and not _INT64_MIN <= value <= _INT64_MAX:
                raise SignalValueError(f'signal {self.name!r}: int {value} does not fit in int64')
            self._values.append(value)
        self._timestamps.append(ts)
        self._last_ts = ts
        if len(self._timestamps) >= BATCH_ROWS:
            self._flush()

    def _set_kind(self, value: Any) -> None:
        if isinstance(value, np.ndarray) and value.ndim > 0:
            if value.ndim != 1:
                raise SignalValueError(
                    f'signal {self.name!r}: only scalars, 1-D vectors and uint8 (H, W, 3) images can be stored; '
                    f'got ndarray {value.dtype} {value.shape}'
                )
            if value.dtype.kind not in 'biuf':
                raise SignalValueError(
                    f'signal {self.name!r}: vector dtype must be bool, integer or float, got {value.dtype}'
                )
            self._vector_dtype = value.dtype
            self._vector_shape = value.shape
            self._arrow_type = pa.list_(pa.from_numpy_dtype(value.dtype))
            return
        arrow_type = _scalar_arrow_type(value)
        if arrow_type is None:
            raise SignalValueError(
                f'signal {self.name!r}: cannot store {_describe(value)}; expected a number, bool, str, '
                f'1-D ndarray/list or uint8 (H, W, 3) image'
            )
        self._arrow_type = arrow_type

    def _flush(self) -> None:
        if not self._timestamps:
            return
        timestamps = pa.array(np.array(self._timestamps, dtype=np.int64))
        if self._vector_dtype is not None:
            flat = np.stack(self._values).reshape(-1)
            width = self._vector_shape[0]
            offsets = np.arange(0, (len(self._values) + 1) * width, width, dtype=np.int32)
            values = pa.ListArray.from_arrays(pa.array(offsets), pa.array(flat, type=self._arrow_type.value_type))
        else:
            values = pa.array(self._values, type=self._arrow_type)
        schema = pa.schema([(TIMESTAMP_COLUMN, pa.int64()), (VALUE_COLUMN, self._arrow_type)])
        if self._writer is None:
            self._writer = pq.ParquetWriter(self.path, schema)
        self._writer.write_table(pa.Table.from_arrays([timestamps, values], schema=schema), row_group_size=BATCH_ROWS)
        self._timestamps = []
        self._values = []

    def close(self) -> None:
        self._flush()
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def abort(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        self._timestamps = []
        self._values = []
        self.path.unlink(missing_ok=True)


def _scalar_arrow_type(value: Any) -> pa.DataType | None:
    arrow_type = _SCALAR_TYPES.get(type(value))
    if arrow_type is not None:
        return arrow_type
    if isinstance(value, np.generic) and value.dtype.kind in 'biufU':
        return pa.string() if value.dtype.kind == 'U' else pa.from_numpy_dtype(value.dtype)
    if isinstance(value, float):
        return pa.float64()
    return None


class VectorSignal(Signal):
    """A scalar or vector signal read lazily from ``path``: nothing is read until the first access.

    Values are a read-only ndarray: (N, D) of the stored dtype for vectors, (N,) for scalars (object dtype
    holding str for strings). One value is a row view, a numpy scalar or a str.
    """

    def __init__(self, path: Path, name: str):
        self.path = path
        self.name = name
        self._timestamps: np.ndarray | None = None
        self._values: np.ndarray | None = None

    def _load(self) -> None:
        try:
            parquet = pq.ParquetFile(self.path)
        except (OSError, pa.ArrowInvalid) as e:
            raise CorruptSignalError(f'signal {self.name!r}: cannot read {self.path}: {e}') from e
        names = parquet.schema_arrow.names
        ts_column = primary_time_column(names, TIMESTAMP_COLUMN, self.path)
        if VALUE_COLUMN not in names:
            raise CorruptSignalError(f'signal {self.name!r}: {self.path} has no {VALUE_COLUMN!r} column ({names})')
        table = parquet.read(columns=[ts_column, VALUE_COLUMN])
        self._timestamps = _timestamps_of(table.column(ts_column), self.path)
        self._values = _values_of(table.column(VALUE_COLUMN), self.path)

    @property
    def timestamps(self) -> np.ndarray:
        if self._timestamps is None:
            self._load()
        return self._timestamps

    @property
    def values(self) -> np.ndarray:
        if self._values is None:
            self._load()
        return self._values

    def _value_at(self, index: int) -> Any:
        if self._values is None:
            self._load()
        return self._values[index]

    def _values_at(self, indices: np.ndarray) -> np.ndarray:
        if self._values is None:
            self._load()
        values = self._values[indices]
        values.flags.writeable = False
        return values


def _timestamps_of(column: pa.ChunkedArray, path: Path) -> np.ndarray:
    if column.type != pa.int64() or column.null_count:
        raise CorruptSignalError(f'{path}: timestamps must be int64 without nulls, got {column.type}')
    timestamps = column.to_numpy()
    if len(timestamps) > 1 and not np.all(timestamps[1:] >= timestamps[:-1]):
        raise CorruptSignalError(f'{path}: timestamps are not in ascending order')
    timestamps.flags.writeable = False
    return timestamps


def _values_of(column: pa.ChunkedArray, path: Path) -> np.ndarray:
    if column.null_count:
        raise CorruptSignalError(f'{path}: the value column has {column.null_count} nulls')
    kind = column.type
    if pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_fixed_size_list(kind):
        array = column.combine_chunks()
        lengths = array.value_lengths().to_numpy(zero_copy_only=False) if len(array) else np.empty(0)
        flat = array.flatten().to_numpy(zero_copy_only=False)
        if len(lengths) and np.all(lengths == lengths[0]):
            values = flat.reshape(len(array), int(lengths[0]))
        else:
            values = np.empty(len(array), dtype=object)
            for i, row in enumerate(np.split(flat, np.cumsum(lengths)[:-1]) if len(array) else []):
                values[i] = row
    else:
        values = column.to_numpy(zero_copy_only=False)
    values.flags.writeable = False
    return values
