"""Parquet files written in turn (``chunk-XXX/file-YYY.parquet``): rows go to the open file until it would reach
its size limit, then to the next file. Shared by the per-frame data files and the episode-metadata files."""

from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from positronic.vendors.lerobot.lerobot_dataset.format import MB, FileIndex


class RollingParquetWriter:
    """Appends row groups to the open file, or starts the next file (rolling over chunks after ``chunks_size``
    files) when the estimated size ``size + size / rows * new_rows`` would reach ``size_limit_mb``.

    ``path_of`` gives a file's path relative to ``root``; ``written_paths`` lists the files started, in order.
    """

    def __init__(
        self,
        root: Path,
        schema: pa.Schema,
        path_of: Callable[[FileIndex], str],
        first_file: FileIndex,
        chunks_size: int,
        size_limit_mb: float,
    ):
        self._root = root
        self._schema = schema
        self._path_of = path_of
        self._file = first_file
        self._chunks_size = chunks_size
        self._limit_bytes = size_limit_mb * MB
        self._sink: pa.NativeFile | None = None
        self._writer: pq.ParquetWriter | None = None
        self._rows_in_file = 0
        self.written_paths: list[str] = []

    def write(
        self, num_rows: int, table_in: Callable[[FileIndex], pa.Table], row_group_size: int | None = None
    ) -> FileIndex:
        """Write ``table_in(file)`` (``num_rows`` rows, for the file that takes them) as one row group; returns
        that file. ``row_group_size`` None keeps pyarrow's default."""
        if self._writer is not None:
            size = self._sink.tell()
            if size + size / self._rows_in_file * num_rows >= self._limit_bytes:
                self._close_file()
                self._file = self._file.next(self._chunks_size)
        if self._writer is None:
            relative = self._path_of(self._file)
            path = self._root / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            self._sink = pa.OSFile(str(path), 'wb')
            self._writer = pq.ParquetWriter(self._sink, self._schema, compression='snappy', use_dictionary=True)
            self.written_paths.append(relative)
        self._writer.write_table(table_in(self._file), row_group_size=row_group_size)
        self._rows_in_file += num_rows
        return self._file

    def _close_file(self) -> None:
        self._writer.close()
        self._sink.close()
        self._writer, self._sink, self._rows_in_file = None, None, 0

    def close(self) -> None:
        """Close the open file (required: the parquet footer is written here)."""
        if self._writer is not None:
            self._close_file()
