"""``meta/tasks.parquet``: the task strings, one row per ``task_index``.

LeRobot reads this file with pandas and expects the task strings as the DataFrame's index. The file therefore has
an int64 column ``task_index`` and a string column ``__index_level_0__`` plus the ``pandas`` schema metadata that
declares that column as the index. The metadata is written here with pyarrow alone, so pandas is not needed.
"""

import json
from collections.abc import Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from positronic.vendors.lerobot.lerobot_dataset.errors import (
    PARQUET_FILE,
    InconsistentDatasetError,
    NotADatasetError,
    reading,
)
from positronic.vendors.lerobot.lerobot_dataset.format import TASK_INDEX, TASKS_INDEX_COLUMN

PANDAS_METADATA_KEY = b'pandas'
PANDAS_METADATA_FORMAT_VERSION = '2.2.3'
"""The pandas release whose metadata layout the file follows (object-dtype string index, as pandas 2 writes it)."""
TASK_COLUMN = 'task'
"""Name of the string column in files whose task index is named (an alternative LeRobot also reads)."""


def _pandas_metadata() -> bytes:
    string_type = {'pandas_type': 'unicode', 'numpy_type': 'object'}
    content = {
        'index_columns': [TASKS_INDEX_COLUMN],
        'column_indexes': [{'name': None, 'field_name': None, **string_type, 'metadata': {'encoding': 'UTF-8'}}],
        'columns': [
            {
                'name': TASK_INDEX,
                'field_name': TASK_INDEX,
                'pandas_type': 'int64',
                'numpy_type': 'int64',
                'metadata': None,
            },
            {'name': None, 'field_name': TASKS_INDEX_COLUMN, **string_type, 'metadata': None},
        ],
        'attributes': {},
        'creator': {'library': 'pyarrow', 'version': pa.__version__},
        'pandas_version': PANDAS_METADATA_FORMAT_VERSION,
    }
    return json.dumps(content).encode()


def write_tasks(path: Path, tasks: Sequence[str]) -> None:
    """Write the tasks in ``task_index`` order (task ``i`` is row ``i``)."""
    schema = pa.schema(
        [pa.field(TASK_INDEX, pa.int64()), pa.field(TASKS_INDEX_COLUMN, pa.string())],
        metadata={PANDAS_METADATA_KEY: _pandas_metadata()},
    )
    table = pa.table({TASK_INDEX: list(range(len(tasks))), TASKS_INDEX_COLUMN: list(tasks)}, schema=schema)
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path, compression='snappy')


def _task_column_name(table: pa.Table) -> str:
    metadata = table.schema.metadata or {}
    if PANDAS_METADATA_KEY in metadata:
        index_columns = json.loads(metadata[PANDAS_METADATA_KEY]).get('index_columns', [])
        named = [c for c in index_columns if isinstance(c, str)]
        if named:
            return named[0]
    for candidate in (TASKS_INDEX_COLUMN, TASK_COLUMN):
        if candidate in table.column_names:
            return candidate
    raise NotADatasetError(f'tasks file has no task string column (index or {TASK_COLUMN!r}): {table.column_names}')


def read_tasks(path: Path) -> list[str]:
    """Task strings in ``task_index`` order; checks that row ``i`` has ``task_index == i``."""
    if not path.exists():
        raise NotADatasetError(f'{path} is missing: not a LeRobot v3.0 dataset')
    with reading(path, PARQUET_FILE):
        table = pq.read_table(path)
    column = _task_column_name(table)
    tasks = [str(t) for t in table.column(column).to_pylist()]
    if TASK_INDEX in table.column_names:
        indices = table.column(TASK_INDEX).to_pylist()
        if indices != list(range(len(tasks))):
            raise InconsistentDatasetError(f'{path}: rows must be ordered by task_index 0..{len(tasks) - 1}')
    return tasks
