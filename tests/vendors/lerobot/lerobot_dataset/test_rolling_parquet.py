import pyarrow as pa
import pyarrow.parquet as pq

from positronic.vendors.lerobot.lerobot_dataset.format import FileIndex, data_path
from positronic.vendors.lerobot.lerobot_dataset.rolling_parquet import RollingParquetWriter

SCHEMA = pa.schema([pa.field('value', pa.int64()), pa.field('file', pa.string())])


def rows(values: range, file: FileIndex) -> pa.Table:
    """A table whose ``file`` column says which file it was built for."""
    return pa.table({'value': list(values), 'file': [f'{file.chunk}/{file.file}'] * len(values)}, schema=SCHEMA)


def write_batches(root, size_limit_mb: float, batches: list[range], chunks_size: int = 2) -> list[FileIndex]:
    writer = RollingParquetWriter(root, SCHEMA, data_path, FileIndex(0, 0), chunks_size, size_limit_mb)
    placed = [writer.write(len(b), lambda file, b=b: rows(b, file), row_group_size=len(b)) for b in batches]
    writer.close()
    assert writer.written_paths == sorted({data_path(f) for f in placed})
    return placed


def test_rows_share_a_file_while_it_stays_under_the_size_limit(tmp_path):
    placed = write_batches(tmp_path, 100.0, [range(0, 5), range(5, 12), range(12, 13)])
    assert placed == [FileIndex(0, 0)] * 3
    table = pq.read_table(tmp_path / data_path(FileIndex(0, 0)))
    assert table.column('value').to_pylist() == list(range(13))
    assert pq.ParquetFile(tmp_path / data_path(FileIndex(0, 0))).metadata.num_row_groups == 3


def test_each_batch_that_would_reach_the_limit_starts_the_next_file_rolling_over_chunks(tmp_path):
    placed = write_batches(tmp_path, 1e-6, [range(0, 5), range(5, 12), range(12, 13)])
    assert placed == [FileIndex(0, 0), FileIndex(0, 1), FileIndex(1, 0)]
    for file, batch in zip(placed, [range(0, 5), range(5, 12), range(12, 13)], strict=True):
        assert pq.read_table(tmp_path / data_path(file)).column('value').to_pylist() == list(batch)


def test_each_table_is_built_for_the_file_that_takes_it(tmp_path):
    placed = write_batches(tmp_path, 1e-6, [range(0, 3), range(3, 6)])
    for file in placed:
        assert set(pq.read_table(tmp_path / data_path(file)).column('file').to_pylist()) == {
            f'{file.chunk}/{file.file}'
        }


def test_a_writer_closed_before_any_rows_creates_no_file(tmp_path):
    writer = RollingParquetWriter(tmp_path, SCHEMA, data_path, FileIndex(0, 0), 2, 1.0)
    writer.close()
    assert writer.written_paths == [] and not any(tmp_path.iterdir())
