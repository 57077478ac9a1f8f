"""Atomic dataset writes: every file is built in a staging directory next to the dataset, then committed.

The staging directory of ``<parent>/<name>`` is ``<parent>/.<name>.partial/`` and holds:

- ``lock``: held with ``flock`` by the live writer; a staging directory whose lock is free was left by a dead
  process and is removed by the next writer;
- ``dataset/``: the files being written (a whole new dataset, or only the new files of an append);
- ``previous/``: copies of the dataset files an append's commit replaces (metadata such as ``info.json``), made
  before the journal, so an interrupted commit can also be rolled back;
- ``commit.json``: written (atomically) once an append's files are complete: the ordered list of moves into the
  dataset. Moves are idempotent renames, so an interrupted commit is completed by the next writer, or by
  ``recover_pending_commit`` (``positronic-to-lerobot recover``), which can also roll it back.

Create commits with one ``rename`` of ``dataset/`` onto the target (an absent path or an empty directory): the
target is a dataset only when complete. Append moves new files in an order that keeps the dataset loadable at every
step for LeRobot 0.4.4 (videos, tasks, episode metadata, data, then stats and info).
"""

import contextlib
import fcntl
import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

from positronic.vendors.lerobot.lerobot_dataset.errors import OutputExistsError, WriterLockedError
from positronic.vendors.lerobot.lerobot_dataset.format import write_json_atomic

LOCK_FILE = 'lock'
BUILD_DIR = 'dataset'
PREVIOUS_DIR = 'previous'
JOURNAL_FILE = 'commit.json'
JOURNAL_MOVES = 'moves'


def staging_path(root: Path) -> Path:
    """The staging directory of a dataset root: a hidden sibling ``.<name>.partial``."""
    return root.parent / f'.{root.name}.partial'


def has_pending_commit(root: Path) -> bool:
    """True when an append was interrupted while moving its files into ``root`` (the next writer completes it)."""
    return (staging_path(root) / JOURNAL_FILE).exists()


def _read_moves(staging: Path) -> list[tuple[str, str]]:
    with open(staging / JOURNAL_FILE, encoding='utf-8') as f:
        return [(source, target) for source, target in json.load(f)[JOURNAL_MOVES]]


def _move(source: Path, target: Path) -> None:
    """One rename of a commit (its own function: the point where tests interrupt a commit)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(source, target)


def _replay_journal(staging: Path, root: Path) -> None:
    for source, target in _read_moves(staging):
        if (staging / BUILD_DIR / source).exists():
            _move(staging / BUILD_DIR / source, root / target)
    (staging / JOURNAL_FILE).unlink()


def _roll_back_journal(staging: Path, root: Path) -> None:
    """Undo the moves done so far: restore the files they replaced (copies: a repeated roll-back restores them
    again), remove the files they added."""
    for source, target in reversed(_read_moves(staging)):
        previous = staging / PREVIOUS_DIR / target
        if previous.exists():
            shutil.copy2(previous, root / target)
        elif not (staging / BUILD_DIR / source).exists():
            (root / target).unlink(missing_ok=True)
    (staging / JOURNAL_FILE).unlink()


def recover_pending_commit(root: Path, *, rollback: bool = False) -> bool:
    """Complete (or with ``rollback`` undo) an append interrupted while committing into ``root``, and remove what a
    dead writer left in its staging directory. Returns whether a commit was pending. Raises WriterLockedError while
    a live process writes ``root``."""
    pending = has_pending_commit(root)
    if not pending and not staging_path(root).exists():
        return False
    staging = Staging.acquire(root, complete_pending_commit=None if rollback else True)
    if pending and rollback:
        try:
            _roll_back_journal(staging.path, root)
        except BaseException:
            staging._unlock()  # the journal stays: the roll-back can be repeated
            raise
    staging.release()
    return pending


class Staging:
    """A locked staging directory for one writer of ``root``; ``build`` is where files are written."""

    def __init__(self, root: Path, lock_fd: int):
        self.root = root
        self.path = staging_path(root)
        self.build = self.path / BUILD_DIR
        self._lock_fd: int | None = lock_fd

    @classmethod
    def acquire(cls, root: Path, *, complete_pending_commit: bool | None) -> 'Staging':
        """Lock the staging directory of ``root``, clearing what a dead writer left behind.

        A pending append commit is completed first when ``complete_pending_commit`` (append), discarded when False
        (create), and left as it is when None (to roll it back). Raises WriterLockedError when a live process holds
        the lock.
        """
        path = staging_path(root)
        path.mkdir(parents=True, exist_ok=True)
        fd = os.open(path / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise WriterLockedError(
                f'{root}: another process is writing this dataset (lock {path / LOCK_FILE})'
            ) from None
        staging = cls(root, fd)
        if (path / JOURNAL_FILE).exists():
            if complete_pending_commit is None:
                return staging
            if complete_pending_commit:
                _replay_journal(path, root)
            else:
                (path / JOURNAL_FILE).unlink()
        for leftover in (staging.build, path / PREVIOUS_DIR):
            if leftover.exists():
                shutil.rmtree(leftover)
        staging.build.mkdir()
        return staging

    def commit_new_dataset(self) -> None:
        """Rename the complete build onto ``root`` (absent or an empty directory), then release."""
        try:
            os.rename(self.build, self.root)
        except OSError as e:
            raise OutputExistsError(f'{self.root}: cannot place the dataset there ({e.strerror})') from e
        self.release()

    def commit_moves(self, moves: Sequence[tuple[str, str]]) -> None:
        """Copy the files the moves replace, record then perform the moves ``build/<source> -> root/<target>`` in
        order, then release."""
        for _, target in moves:
            if (self.root / target).exists():
                (self.path / PREVIOUS_DIR / target).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(self.root / target, self.path / PREVIOUS_DIR / target)
        write_json_atomic(self.path / JOURNAL_FILE, {JOURNAL_MOVES: [list(m) for m in moves]})
        try:
            _replay_journal(self.path, self.root)
        except BaseException:
            self._unlock()  # the journal stays: the next writer completes the commit
            raise
        self.release()

    def release(self) -> None:
        """Remove the staging directory and unlock (also what an abort does)."""
        if self._lock_fd is None:
            return
        shutil.rmtree(self.build, ignore_errors=True)
        shutil.rmtree(self.path / PREVIOUS_DIR, ignore_errors=True)
        for name in (JOURNAL_FILE, LOCK_FILE):
            (self.path / name).unlink(missing_ok=True)
        with contextlib.suppress(OSError):  # another writer may be about to use it
            self.path.rmdir()
        self._unlock()

    def _unlock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None
