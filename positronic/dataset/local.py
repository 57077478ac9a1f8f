"""Datasets on the local disk: ``<root>/<block>/<episode>/`` directories of episodes.

Episode ``id`` lives in ``<root>/<(id // 1000) * 1000 :012d>/<id:012d>/``. Only names of exactly 12 digits
count as blocks or episodes; anything else under the root is ignored. Readers list finished episodes
(without the ``.unfinished`` marker) sorted by id; index ``i`` is the i-th finished episode, not id ``i``.
Writers take the next id after the largest existing one, finished or not. An episode whose recording was
interrupted keeps its marker forever: ``LocalDataset.unfinished_paths`` lists those, and ``discard_unfinished``
deletes them (never one a live writer holds).
"""

import fcntl
import os
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import overload

from positronic.dataset.episode import META_FILE, STATIC_FILE, UNFINISHED_MARKER, DiskEpisode
from positronic.dataset.episode_writer import EpisodeWriter
from positronic.dataset.errors import NotADatasetError

BLOCK_SIZE = 1000
"""Episodes per block directory."""
ID_DIGITS = 12
"""Digits of block and episode directory names (zero-padded)."""


def is_id_name(name: str) -> bool:
    """Whether a directory name is a block or episode id: exactly 12 ASCII digits."""
    return len(name) == ID_DIGITS and name.isascii() and name.isdigit()


def episode_dir(root: Path, episode_id: int) -> Path:
    """Directory of episode ``episode_id`` under ``root``."""
    block = (episode_id // BLOCK_SIZE) * BLOCK_SIZE
    return root / f'{block:0{ID_DIGITS}d}' / f'{episode_id:0{ID_DIGITS}d}'


def _episode_dirs(root: Path) -> list[tuple[int, Path]]:
    """All episode directories (finished or not) under ``root`` as ``(id, path)``, sorted by id."""
    found = []
    for block in sorted(root.iterdir()):
        if block.is_dir() and is_id_name(block.name):
            found.extend((int(d.name), d) for d in sorted(block.iterdir()) if d.is_dir() and is_id_name(d.name))
    return sorted(found)


def is_being_written(episode: Path) -> bool:
    """Whether a live EpisodeWriter holds the ``.unfinished`` marker of ``episode`` (False once it is gone)."""
    try:
        fd = os.open(episode / UNFINISHED_MARKER, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def interrupted_episodes(root: Path | str) -> list[Path]:
    """Episode directories under ``root`` still marked unfinished whose writer is gone, in id order."""
    return [
        path
        for _, path in _episode_dirs(Path(root))
        if (path / UNFINISHED_MARKER).exists() and not is_being_written(path)
    ]


def discard_unfinished(root: Path | str) -> list[Path]:
    """Delete the interrupted recordings under ``root`` (see ``interrupted_episodes``); returns their paths."""
    removed = interrupted_episodes(root)
    for path in removed:
        shutil.rmtree(path)
    return removed


class LocalDataset(Sequence):
    """The finished episodes under ``root``, in id order; ``dataset[i]`` opens a :class:`DiskEpisode` lazily.

    The episode list is taken when the dataset is opened. Raises NotADatasetError if ``root`` does not
    exist, is not a directory, or is an episode directory.
    """

    def __init__(self, root: Path | str):
        self.root = Path(root)
        if not self.root.is_dir():
            what = 'a file' if self.root.exists() else 'missing'
            raise NotADatasetError(f'{self.root} is not a dataset root ({what}); expected a directory of blocks')
        if any((self.root / marker).exists() for marker in (UNFINISHED_MARKER, STATIC_FILE, META_FILE)):
            raise NotADatasetError(
                f'{self.root} is an episode directory, not a dataset root; open it with DiskEpisode or pass '
                f'the directory two levels up'
            )
        self._episodes, self._unfinished = [], []
        for _, path in _episode_dirs(self.root):
            (self._unfinished if (path / UNFINISHED_MARKER).exists() else self._episodes).append(path)

    def __len__(self) -> int:
        return len(self._episodes)

    @overload
    def __getitem__(self, index: int) -> DiskEpisode: ...

    @overload
    def __getitem__(self, index: slice) -> list[DiskEpisode]: ...

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [DiskEpisode(path) for path in self._episodes[index]]
        return DiskEpisode(self._episodes[index])

    def __iter__(self) -> Iterator[DiskEpisode]:
        for path in self._episodes:
            yield DiskEpisode(path)

    @property
    def episode_paths(self) -> list[Path]:
        """Directories of the finished episodes, in dataset order."""
        return list(self._episodes)

    @property
    def unfinished_paths(self) -> list[Path]:
        """Directories still marked unfinished when the dataset was opened (being recorded, or interrupted);
        skipped by the reader."""
        return list(self._unfinished)

    def __repr__(self) -> str:
        return f'LocalDataset({str(self.root)!r}, {len(self)} episodes)'


class LocalDatasetWriter:
    """Adds episodes to the dataset at ``root`` (created if missing).

    ``new_episode()`` returns an :class:`EpisodeWriter` for the next free id; use it as a context manager.
    """

    def __init__(self, root: Path | str):
        self.root = Path(root)
        if self.root.exists() and not self.root.is_dir():
            raise NotADatasetError(f'{self.root} is a file; a dataset root must be a directory')
        self.root.mkdir(parents=True, exist_ok=True)
        existing = _episode_dirs(self.root)
        self._next_id = existing[-1][0] + 1 if existing else 0

    def new_episode(self) -> EpisodeWriter:
        """Create the next episode directory (marked unfinished) and return its writer."""
        while True:
            path = episode_dir(self.root, self._next_id)
            self._next_id += 1
            path.parent.mkdir(exist_ok=True)
            try:
                return EpisodeWriter(path)
            except FileExistsError:
                continue

    def __enter__(self) -> 'LocalDatasetWriter':
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        return None
