"""``positronic-to-lerobot``: raw datasets to LeRobot v3.0 datasets, through a codec.

    positronic-to-lerobot convert --dataset.dataset.path=~/datasets/my_task_raw \\
        --dataset.codec=@positronic.vendors.lerobot.codecs.eepose_absolute \\
        --output_dir=~/datasets/lerobot/my_task --fps=30 [--task="..."] [--dataset.codec.image_size=96]
    positronic-to-lerobot append  (same arguments; --output_dir is an existing dataset to add episodes to)
    positronic-to-lerobot verify  (same arguments but --fps; re-reads every feature and frame against the raw data)
    positronic-to-lerobot recover --output_dir=~/datasets/lerobot/my_task [--rollback=True]

Each raw episode is sampled by the codec on a uniform grid at ``--fps`` (values at or before each grid time, from
the latest first sample of the signals the codec reads) and written as one LeRobot episode. ``--task`` replaces
every episode's static ``task``. The output is written next to ``--output_dir`` and appears there only once
complete; an append adds its files in an order that keeps the dataset loadable at every step (see the writer).
Every episode records the raw episode directory it came from (meta/positronic.json), so re-running an append adds
only the raw episodes not yet in the dataset.
"""

import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import av
import configuronic as cfn
from tqdm import tqdm

from positronic.command import UsageError, run_command, writing_to
from positronic.dataset import CorruptSignalError, MissingFrameIndexError
from positronic.dataset import NotADatasetError as RawNotADatasetError
from positronic.dataset.local import interrupted_episodes
from positronic.vendors.lerobot.codec import CodecMismatchError, MissingSignalError
from positronic.vendors.lerobot.codec_spec import CodecSpec, dataset_codec
from positronic.vendors.lerobot.conversion.conversion_check import (
    DEFAULT_MIN_PSNR_DB,
    ConversionMismatchError,
    ConversionReport,
    check_conversion,
)
from positronic.vendors.lerobot.conversion.encoded_dataset import EncodedDataset, MissingTaskError
from positronic.vendors.lerobot.conversion.read_ahead import (
    DEFAULT_DEPTH,
    ReadAhead,
    ReadAheadDepthError,
    checked_depth,
)
from positronic.vendors.lerobot.conversion.to_lerobot_presets import encoded
from positronic.vendors.lerobot.lerobot_dataset import (
    H264,
    DatasetReader,
    DatasetWriter,
    EmptyDatasetError,
    InvalidFpsError,
    InvalidVideoEncodingError,
    LeRobotDatasetError,
    VideoEncoding,
    recover_pending_commit,
)

PROG = 'positronic-to-lerobot'
USAGE_ERRORS = (InvalidFpsError, InvalidVideoEncodingError, ReadAheadDepthError)
"""Flag values that cannot work, whatever the data: exit code 2."""
DATA_ERRORS = (
    LeRobotDatasetError,
    RawNotADatasetError,
    CorruptSignalError,
    MissingFrameIndexError,
    av.error.FFmpegError,
    MissingSignalError,
    MissingTaskError,
    CodecMismatchError,
    ConversionMismatchError,
)
"""Bad or unreadable input, an output in the way, or a failed check: exit code 1."""


def _expanded(path: str | Path) -> Path:
    return Path(str(path)).expanduser().absolute()


def _task_override(task: object) -> str | None:
    if task is None:
        return None
    if not str(task).strip():
        raise UsageError(f'--task must be a non-empty string, got {task!r}')
    return str(task)


def _source_label(dataset: EncodedDataset) -> str:
    root = getattr(dataset.dataset, 'root', None)
    return str(root) if root is not None else 'the raw dataset'


def _warn_interrupted(dataset: EncodedDataset) -> None:
    """One line on stderr naming raw episodes left unfinished by an interrupted recording (skipped here)."""
    root = getattr(dataset.dataset, 'root', None)
    interrupted = [str(path) for path in interrupted_episodes(root)] if root is not None else []
    if interrupted:
        print(
            f'warning: skipping {len(interrupted)} interrupted recording(s) still marked unfinished: '
            f'{", ".join(interrupted)}; delete them with '
            f'`positronic-data-collection discard_unfinished --output_dir={_source_label(dataset)}`',
            file=sys.stderr,
        )


def _check_not_empty(dataset: EncodedDataset) -> None:
    if len(dataset) == 0:
        raise EmptyDatasetError(f'{_source_label(dataset)} has no finished episodes; nothing to convert')


def _writing_inputs(
    output_dir: str, dataset: EncodedDataset, task: object, read_ahead: object
) -> tuple[Path, str | None, int]:
    """The checks convert and append make before writing: the output path, --task and --read_ahead as used; warns
    of interrupted recordings and refuses a dataset with no finished episode."""
    root, task, read_ahead = _expanded(output_dir), _task_override(task), checked_depth(read_ahead)
    _warn_interrupted(dataset)
    _check_not_empty(dataset)
    return root, task, read_ahead


def episode_sources(dataset: EncodedDataset) -> list[str | None]:
    """Per raw episode, what the output records as its source: its directory, resolved (None when in memory)."""
    paths = getattr(dataset.dataset, 'episode_paths', None)
    if paths is None:
        return [None] * len(dataset)
    return [str(Path(path).resolve()) for path in paths]


class _EpisodeInFlight:
    """One projected episode whose cameras are being read ahead."""

    def __init__(self, dataset: EncodedDataset, index: int, fps: int, task: str | None, read_ahead: int):
        projected = dataset.project(index, fps, task)
        self.task = projected.task
        self.length = len(projected)
        self.frames = dict(projected.frames)
        self._readers: list[ReadAhead] = []
        if read_ahead > 0:
            for key in dataset.codec.observation.cameras:
                reader = ReadAhead(projected.frames[key], read_ahead, name=f'read-ahead {key}')
                self._readers.append(reader)
                self.frames[key] = reader

    def close(self) -> None:
        for reader in self._readers:
            reader.close()


def write_episodes(
    writer: DatasetWriter,
    dataset: EncodedDataset,
    fps: int,
    task: str | None,
    desc: str,
    read_ahead: int = DEFAULT_DEPTH,
    indices: Sequence[int] | None = None,
) -> int:
    """Project the episodes ``indices`` (default: all) of ``dataset`` at ``fps`` and add them to ``writer`` with
    their sources, showing progress; returns the number of frames written.

    The writer encodes an episode's cameras in parallel threads; with ``read_ahead`` > 0 each camera's frames are
    decoded and letterboxed by another thread up to that many frames ahead, and the next episode starts reading
    while the current one is written.
    """
    indices = list(range(len(dataset))) if indices is None else list(indices)
    if not indices:
        return 0
    sources = episode_sources(dataset)
    frames = 0
    start = time.perf_counter()
    upcoming = _EpisodeInFlight(dataset, indices[0], fps, task, read_ahead)
    in_flight = [upcoming]
    try:
        with tqdm(total=len(indices), unit='episode', desc=desc, dynamic_ncols=True) as bar:
            for position, index in enumerate(indices):
                current = upcoming
                if position + 1 < len(indices):
                    upcoming = _EpisodeInFlight(dataset, indices[position + 1], fps, task, read_ahead)
                    in_flight.append(upcoming)
                writer.add_episode(current.frames, current.task, source=sources[index])
                frames += current.length
                bar.set_postfix_str(f'{frames} frames, {frames / (time.perf_counter() - start):.0f} frames/s')
                bar.update(1)
    finally:
        for episode in in_flight:
            episode.close()
    return frames


def _summary(action: str, root: Path, episodes: int, frames: int, elapsed_s: float) -> str:
    rate = frames / elapsed_s
    return f'{action} {episodes} episodes ({frames} frames) to {root} in {elapsed_s:.1f} s, {rate:.0f} frames/s'


@cfn.config(dataset=encoded, task=None, video=cfn.Config(VideoEncoding), read_ahead=DEFAULT_DEPTH)
def convert(
    output_dir: str,
    fps: int,
    dataset: EncodedDataset,
    task: str | None = None,
    video: VideoEncoding = H264,
    read_ahead: int = DEFAULT_DEPTH,
) -> None:
    """Convert a raw dataset into a new LeRobot v3.0 dataset at --output_dir (absent or an empty directory).

    --fps: frames per second of the output (positive int).
    --task: instruction for every episode (default: each episode's static task).
    --video: encoder settings (default H.264, e.g. --video.crf=28, in [0, 51] for libx264 and [0, 63] for
    libsvtav1; LeRobot's AV1 default is --video=@positronic.vendors.lerobot.lerobot_dataset.AV1_LEROBOT).
    --read_ahead: camera frames decoded ahead of the encoder, per camera, >= 0 (0: decode in the encoding thread).
    """
    root, task, read_ahead = _writing_inputs(output_dir, dataset, task, read_ahead)
    start = time.perf_counter()
    with (
        writing_to(root, 'output_dir'),
        DatasetWriter.create(root, dataset.features(), fps, video=video, positronic_codec=_record(dataset)) as writer,
    ):
        dataset.check(task)
        frames = write_episodes(writer, dataset, writer.fps, task, f'convert -> {root.name}', read_ahead)
    print(_summary('wrote', root, len(dataset), frames, time.perf_counter() - start))


@cfn.config(dataset=encoded, task=None, read_ahead=DEFAULT_DEPTH)
def append(
    output_dir: str, fps: int, dataset: EncodedDataset, task: str | None = None, read_ahead: int = DEFAULT_DEPTH
) -> None:
    """Add the episodes of a raw dataset to the existing LeRobot dataset at --output_dir.

    Refuses (nothing written) unless --fps, the codec (the one the dataset records: name and image size) and its
    features match the dataset's. Videos are encoded with the settings the dataset was written with. Raw episodes
    already in the dataset (by their directory) are skipped, so re-running an interrupted or finished append adds
    each episode once; an append interrupted while committing is finished first.
    """
    root, task, read_ahead = _writing_inputs(output_dir, dataset, task, read_ahead)
    dataset_codec(root, dataset.codec)
    start = time.perf_counter()
    with (
        writing_to(root, 'output_dir'),
        DatasetWriter.append(root, dataset.features(), fps, positronic_codec=_record(dataset)) as writer,
    ):
        dataset.check(task)
        first = writer.num_episodes
        known = {source for source in writer.source_episodes if source is not None}
        new = [i for i, source in enumerate(episode_sources(dataset)) if source is None or source not in known]
        if len(new) < len(dataset):
            print(f'{len(dataset) - len(new)} of {len(dataset)} raw episodes are already in {root}; skipping them')
        frames = write_episodes(writer, dataset, writer.fps, task, f'append -> {root.name}', read_ahead, new)
    if not new:
        print(f'nothing to append: every episode of {_source_label(dataset)} is already in {root}')
        return
    print(
        _summary(
            f'appended as episodes {first}..{writer.num_episodes - 1}:',
            root,
            len(new),
            frames,
            time.perf_counter() - start,
        )
    )


@cfn.config(rollback=False)
def recover(output_dir: str, rollback: bool = False) -> None:
    """Finish the append into the LeRobot dataset at --output_dir that was interrupted while committing its files
    (the dataset refuses to load until then), or undo it with --rollback=True. Also removes what an interrupted
    convert or append left in the hidden staging directory next to it.
    """
    root = _expanded(output_dir)
    if not recover_pending_commit(root, rollback=rollback):
        print(f'{root}: no interrupted append to recover')
        return
    action = 'rolled back' if rollback else 'finished'
    print(f'{root}: {action} the interrupted append; the dataset has {DatasetReader(root).total_episodes} episodes')


def _record(dataset: EncodedDataset) -> dict[str, Any]:
    """The codec record meta/positronic.json keeps (see ``codec_spec``)."""
    return CodecSpec.of(dataset.codec).to_record()


def format_report(root: Path, dataset: EncodedDataset, report: ConversionReport) -> str:
    """The table ``verify`` prints: the worst agreement per feature."""
    lines = [
        f'{root}: {report.episodes} episodes, {report.frames} frames match {_source_label(dataset)} '
        f'through codec {dataset.codec.name!r}',
        '| feature | compared by | worst |',
        '|---|---|---:|',
    ]
    cameras = set(dataset.codec.observation.cameras)
    for name, value in report.worst.items():
        how = 'frame PSNR (dB), lowest' if name in cameras else 'absolute difference, largest'
        lines.append(f'| {name} | {how} | {value:.4g} |')
    return '\n'.join(lines)


@cfn.config(dataset=encoded, task=None, first_episode=0, min_psnr_db=DEFAULT_MIN_PSNR_DB)
def verify(
    output_dir: str,
    dataset: EncodedDataset,
    task: str | None = None,
    first_episode: int = 0,
    min_psnr_db: float = DEFAULT_MIN_PSNR_DB,
) -> None:
    """Re-read every feature and frame of the LeRobot dataset at --output_dir and compare it with the raw dataset.

    The codec must be the one the dataset records (name and image size; any codec of its features when it records
    none). Raw episode i is compared with dataset episode --first_episode + i (use it after an append). Numeric features
    must be equal; camera frames must reach --min_psnr_db against the letterboxed raw frames, or come close to the raw
    frames encoded again with the dataset's settings (small images lose more to the codec). Exits with status 1
    and the list of differences when anything disagrees.
    """
    root = _expanded(output_dir)
    _warn_interrupted(dataset)
    report = check_conversion(
        root, dataset, task=_task_override(task), first_episode=first_episode, min_psnr_db=min_psnr_db
    )
    print(format_report(root, dataset, report))


COMMANDS = {'convert': convert, 'append': append, 'verify': verify, 'recover': recover}


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of ``positronic-to-lerobot``; ``argv`` replaces the command line (for tests)."""
    run_command(
        PROG,
        COMMANDS,
        argv,
        usage_errors=USAGE_ERRORS,
        data_errors=DATA_ERRORS,
        interrupted='interrupted; the output is as it was before this command',
    )


if __name__ == '__main__':
    main()
