from pathlib import Path

import pytest

from .helpers import write_dataset


@pytest.fixture(scope='module')
def written(tmp_path_factory) -> tuple[Path, list[dict]]:
    """A 3-episode dataset (12, 20, 9 frames; two 48x64 cameras; 2 tasks) written once per test module."""
    root = tmp_path_factory.mktemp('written') / 'dataset'
    return root, write_dataset(root)
