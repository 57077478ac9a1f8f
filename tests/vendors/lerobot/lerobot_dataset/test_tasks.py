import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from positronic.vendors.lerobot.lerobot_dataset.errors import NotADatasetError
from positronic.vendors.lerobot.lerobot_dataset.tasks import read_tasks, write_tasks


def test_tasks_round_trip_in_task_index_order(tmp_path):
    path = tmp_path / 'meta' / 'tasks.parquet'
    write_tasks(path, ['stack the cubes', 'ünïcode task'])
    assert read_tasks(path) == ['stack the cubes', 'ünïcode task']


def test_tasks_file_declares_the_strings_as_the_pandas_index(tmp_path):
    path = tmp_path / 'tasks.parquet'
    write_tasks(path, ['a', 'b'])
    table = pq.read_table(path)
    assert table.schema.names == ['task_index', '__index_level_0__']
    assert table.schema.field('task_index').type == pa.int64()
    meta = json.loads(table.schema.metadata[b'pandas'])
    assert meta['index_columns'] == ['__index_level_0__']
    assert [c['field_name'] for c in meta['columns']] == ['task_index', '__index_level_0__']


def test_reads_a_named_task_index_layout(tmp_path):
    path = tmp_path / 'tasks.parquet'
    pandas_meta = {'index_columns': ['task'], 'columns': []}
    schema = pa.schema(
        [('task_index', pa.int64()), ('task', pa.large_string())], metadata={'pandas': json.dumps(pandas_meta)}
    )
    pq.write_table(pa.table({'task_index': [0, 1], 'task': ['x', 'y']}, schema=schema), path)
    assert read_tasks(path) == ['x', 'y']


def test_missing_tasks_file_is_not_a_dataset(tmp_path):
    with pytest.raises(NotADatasetError, match=r'tasks\.parquet is missing'):
        read_tasks(tmp_path / 'meta' / 'tasks.parquet')
