"""``positronic-to-lerobot``: raw datasets to LeRobot v3.0 datasets, through a codec.

    positronic-to-lerobot convert --dataset.dataset.path=~/datasets/my_task_raw \\
        --dataset.codec=@positronic.vendors.lerobot.codecs.eepose_absolute \\
        --output_dir=~/datasets/lerobot/my_task --fps=30 [--task="..."] [--dataset.codec.image_size=96]
    positronic-to-lerobot append  (same arguments; --output_dir is an existing dataset to add episodes to)
    positronic-to-lerobot verify  (same arguments but --fps; re-reads every feature and frame against the raw data)

Each raw episode is sampled by the codec on a uniform grid at ``--fps`` (values at or before each grid time, from
the latest first sample of the signals the codec reads) and written as one LeRobot episode. ``--task`` replaces
every episode's static ``task``. The output is written next to ``--output_dir`` and appears there only once
complete; an append adds its files in an order that keeps the dataset loadable at every step (see the writer).
"""

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import av
import configuronic as cfn
from tqdm import tqdm

from positronic.cfg.dataset import encoded
from positronic.command import UsageError, run_command, writing_to
from positronic.dataset import CorruptSignalError, MissingFrameIndexError
from positronic.dataset import NotADatasetError as RawNotADatasetError
from positronic.policy.codec import CodecMismatchError, MissingSignalError
from positronic.policy.encoded_dataset import EncodedDataset, MissingTaskError
from positronic.vendors.lerobot.codec_spec import CodecSpec, dataset_codec
from positronic.vendors.lerobot.conversion_check import (
    DEFAULT_MIN_PSNR_DB,
    ConversionMismatchError,
    ConversionReport,
    check_conversion,
)
from positronic.vendors.lerobot.lerobot_dataset import (
    H264,
    DatasetWriter,
    EmptyDatasetError,
    InvalidFpsError,
    LeRobotDatasetError,
    VideoEncoding,
)
from positronic.vendors.lerobot.read_ahead import DEFAULT_DEPTH, ReadAhead

PROG = 'positronic-to-lerobot'
USAGE_ERRORS = (InvalidFpsError,)
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


def _check_not_empty(dataset: EncodedDataset) -> None:
    if len(dataset) == 0:
        raise EmptyDatasetError(f'{_source_label(dataset)} has no finished episodes; nothing to convert')


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
) -> int:
    """Project every episode of ``dataset`` at ``fps`` and add it to ``writer``, showing progress; returns the number
    of frames written.

    The writer encodes an episode's cameras in parallel threads; with ``read_ahead`` > 0 each camera's frames are
    decoded and letterboxed by another thread up to that many frames ahead, and the next episode starts reading
    while the current one is written.
    """
    frames = 0
    start = time.perf_counter()
    upcoming = _EpisodeInFlight(dataset, 0, fps, task, read_ahead)
    in_flight = [upcoming]
    try:
        with tqdm(total=len(dataset), unit='episode', desc=desc, dynamic_ncols=True) as bar:
            for index in range(len(dataset)):
                current = upcoming
                if index + 1 < len(dataset):
                    upcoming = _EpisodeInFlight(dataset, index + 1, fps, task, read_ahead)
                    in_flight.append(upcoming)
                writer.add_episode(current.frames, current.task)
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
    --video: encoder settings (default H.264, e.g. --video.crf=28; LeRobot's AV1 default is
    --video=@positronic.vendors.lerobot.lerobot_dataset.AV1_LEROBOT).
    --read_ahead: camera frames decoded ahead of the encoder, per camera (0: decode in the encoding thread).
    """
    root, task = _expanded(output_dir), _task_override(task)
    _check_not_empty(dataset)
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
    features match the dataset's.
    Videos are encoded with the settings the dataset was written with.
    """
    root, task = _expanded(output_dir), _task_override(task)
    _check_not_empty(dataset)
    dataset_codec(root, dataset.codec)
    start = time.perf_counter()
    with (
        writing_to(root, 'output_dir'),
        DatasetWriter.append(root, dataset.features(), fps, positronic_codec=_record(dataset)) as writer,
    ):
        dataset.check(task)
        first = writer.num_episodes
        frames = write_episodes(writer, dataset, writer.fps, task, f'append -> {root.name}', read_ahead)
    print(
        _summary(
            f'appended as episodes {first}..{writer.num_episodes - 1}:',
            root,
            len(dataset),
            frames,
            time.perf_counter() - start,
        )
    )


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
    must be equal; camera frames must reach --min_psnr_db against the letterboxed raw frames. Exits with status 1
    and the list of differences when anything disagrees.
    """
    root = _expanded(output_dir)
    report = check_conversion(
        root, dataset, task=_task_override(task), first_episode=first_episode, min_psnr_db=min_psnr_db
    )
    print(format_report(root, dataset, report))


COMMANDS = {'convert': convert, 'append': append, 'verify': verify}


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
