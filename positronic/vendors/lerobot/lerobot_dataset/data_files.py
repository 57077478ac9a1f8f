"""Per-frame data parquet files (``data/chunk-XXX/file-YYY.parquet``): writing with rollover, reading columns.

One row per frame in global ``index`` order; one row group per episode; an episode never spans two files.
"""

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from positronic.vendors.lerobot.lerobot_dataset.errors import PARQUET_FILE, InconsistentDatasetError, reading
from positronic.vendors.lerobot.lerobot_dataset.format import MB, FileIndex, data_path


class DataFileWriter:
    """Appends episodes to the current data file, or starts the next file when the estimated size
    ``size + size / rows * new_rows`` would reach ``size_limit_mb``."""

    def __init__(self, root: Path, schema: pa.Schema, first_file: FileIndex, chunks_size: int, size_limit_mb: float):
        self._root = root
        self._schema = schema
        self._file = first_file
        self._chunks_size = chunks_size
        self._limit_bytes = size_limit_mb * MB
        self._sink: pa.NativeFile | None = None
        self._writer: pq.ParquetWriter | None = None
        self._rows_in_file = 0
        self.written_paths: list[str] = []

    def write_episode(self, table: pa.Table) -> FileIndex:
        """Write one episode's rows as one row group; returns the file that holds them."""
        if self._writer is not None:
            size = self._sink.tell()
            if size + size / self._rows_in_file * table.num_rows >= self._limit_bytes:
                self._close_file()
                self._file = self._file.next(self._chunks_size)
        if self._writer is None:
            relative = data_path(self._file)
            path = self._root / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            self._sink = pa.OSFile(str(path), 'wb')
            self._writer = pq.ParquetWriter(self._sink, self._schema, compression='snappy', use_dictionary=True)
            self.written_paths.append(relative)
        self._writer.write_table(table, row_group_size=max(1, table.num_rows))
        self._rows_in_file += table.num_rows
        return self._file

    def _close_file(self) -> None:
        self._writer.close()
        self._sink.close()
        self._writer, self._sink, self._rows_in_file = None, None, 0

    def close(self) -> None:
        """Close the open file (required: the parquet footer is written here)."""
        if self._writer is not None:
            self._close_file()


def column_to_numpy(column: pa.ChunkedArray | pa.Array, path: Path | str = '', name: str = '') -> np.ndarray:
    """A parquet column as numpy: (rows,) for scalars, (rows, N) for fixed- or equal-length list columns."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    if pa.types.is_fixed_size_list(column.type):
        values = column.flatten().to_numpy(zero_copy_only=False)
        return values.reshape(len(column), column.type.list_size)
    if pa.types.is_list(column.type) or pa.types.is_large_list(column.type):
        lengths = pc.list_value_length(column).to_numpy(zero_copy_only=False)
        if len(lengths) and (lengths != lengths[0]).any():
            raise InconsistentDatasetError(f'{path}: column {name!r} has rows of different lengths')
        values = pc.list_flatten(column).to_numpy(zero_copy_only=False)
        return values.reshape(len(column), int(lengths[0]) if len(lengths) else 0)
    return column.to_numpy(zero_copy_only=False)


def read_columns(paths: Sequence[Path], names: Sequence[str]) -> dict[str, np.ndarray]:
    """Columns of several data files concatenated in the given order, as numpy arrays."""
    parts: dict[str, list[np.ndarray]] = {name: [] for name in names}
    for path in paths:
        with reading(path, PARQUET_FILE):
            table = pq.read_table(path, columns=list(names))
        for name in names:
            parts[name].append(column_to_numpy(table.column(name), path, name))
    return {name: np.concatenate(chunks) if chunks else np.empty(0) for name, chunks in parts.items()}
