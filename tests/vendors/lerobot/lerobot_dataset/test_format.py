from pathlib import Path

from positronic.vendors.lerobot.lerobot_dataset.format import (
    FileIndex,
    data_path,
    episodes_path,
    major_version,
    next_free_file,
    parse_file_index,
    video_path,
)


def test_paths_follow_the_v30_templates():
    assert data_path(FileIndex(0, 7)) == 'data/chunk-000/file-007.parquet'
    assert video_path('observation.images.left', FileIndex(2, 0)) == (
        'videos/observation.images.left/chunk-002/file-000.mp4'
    )
    assert episodes_path(FileIndex(1, 12)) == 'meta/episodes/chunk-001/file-012.parquet'
    assert data_path(FileIndex(0, 1234)) == 'data/chunk-000/file-1234.parquet'


def test_file_index_rolls_over_to_the_next_chunk_after_chunks_size_files():
    assert FileIndex(0, 0).next(1000) == FileIndex(0, 1)
    assert FileIndex(0, 999).next(1000) == FileIndex(1, 0)
    assert FileIndex(3, 1).next(2) == FileIndex(4, 0)


def test_next_free_file_comes_after_the_last_existing_file():
    paths = [Path('data/chunk-000/file-000.parquet'), Path('data/chunk-001/file-001.parquet'), Path('junk.parquet')]
    assert next_free_file(paths, 2) == FileIndex(2, 0)
    assert next_free_file(paths[:1], 1000) == FileIndex(0, 1)
    assert next_free_file([], 1000) == FileIndex(0, 0)
    assert parse_file_index(Path('x/file-001.parquet')) is None


def test_major_version_parses_v_major_minor():
    assert major_version('v3.0') == 3
    assert major_version('v2.1') == 2
    assert major_version('3.0') is None
