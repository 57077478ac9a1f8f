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
from positronic.vendors.lerobot.lerobot_dataset.format import FileIndex, data_path
from positronic.vendors.lerobot.lerobot_dataset.rolling_parquet import RollingParquetWriter


class DataFileWriter(RollingParquetWriter):
    """Appends episodes to the current data file, one row group each, or starts the next file when the estimated
    size ``size + size / rows * new_rows`` would reach ``size_limit_mb``."""

    def __init__(self, root: Path, schema: pa.Schema, first_file: FileIndex, chunks_size: int, size_limit_mb: float):
        super().__init__(root, schema, data_path, first_file, chunks_size, size_limit_mb)

    def write_episode(self, table: pa.Table) -> FileIndex:
        """Write one episode's rows as one row group; returns the file that holds them."""
        return self.write(table.num_rows, lambda _file: table, row_group_size=max(1, table.num_rows))


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
