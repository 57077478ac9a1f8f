"""Checking a converted LeRobot dataset against its raw source, feature by feature and frame by frame.

Every episode of the raw dataset is projected again by the codec at the dataset's fps and compared with what the
dataset holds: numeric features (``observation.state``, ``action``) must be equal to the bit, the default columns
must be what the format prescribes (``timestamp = frame_index / fps``, contiguous indices, the task), and every
camera frame is decoded through the dataset reader (which checks each frame's time against the parquet timestamp
within the format's tolerance) and compared with the letterboxed raw frame by PSNR, since video is lossy.
"""

from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from positronic.policy.encoded_dataset import EncodedDataset
from positronic.vendors.lerobot.codec_spec import dataset_codec
from positronic.vendors.lerobot.lerobot_dataset import DatasetReader
from positronic.vendors.lerobot.lerobot_dataset.format import EPISODE_INDEX, FRAME_INDEX, TASK_INDEX, TIMESTAMP

DEFAULT_MIN_PSNR_DB = 30.0
"""Lowest PSNR (dB) accepted between a decoded camera frame and its raw letterboxed frame. Encoding at the default
settings gives ~38 dB or more on rendered scenes; a frame of another time or camera scores far lower on moving ones."""
MAX_LISTED_PROBLEMS = 10


class ConversionMismatchError(Exception):
    """A converted dataset differs from what its raw source and codec produce."""


@dataclass
class ConversionReport:
    """What a check compared: episodes, frames, and per feature the worst agreement found.

    ``worst`` holds, per numeric feature, the largest absolute difference, and per camera the lowest frame PSNR (dB;
    ``inf`` for identical frames).
    """

    episodes: int = 0
    frames: int = 0
    worst: dict[str, float] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def note_difference(self, name: str, value: float) -> None:
        self.worst[name] = max(self.worst.get(name, 0.0), value)

    def note_psnr(self, name: str, value: float) -> None:
        self.worst[name] = min(self.worst.get(name, np.inf), value)


def psnr_db(a: np.ndarray, b: np.ndarray) -> float:
    """Peak signal-to-noise ratio (dB) of two uint8 images of the same shape; ``inf`` when they are equal."""
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float('inf') if mse == 0 else float(10 * np.log10(255.0**2 / mse))


def _camera_psnrs(decoded: Iterable[np.ndarray], expected: Iterable[np.ndarray]) -> list[float]:
    return [psnr_db(got, want) for got, want in zip(decoded, expected, strict=True)]


def check_conversion(
    root: str | Path,
    dataset: EncodedDataset,
    *,
    task: str | None = None,
    first_episode: int = 0,
    min_psnr_db: float = DEFAULT_MIN_PSNR_DB,
) -> ConversionReport:
    """Compare raw episode ``i`` of ``dataset`` with episode ``first_episode + i`` of the LeRobot dataset at ``root``.

    ``task`` is the override the conversion used, if any. Returns the report; raises ConversionMismatchError listing
    the differences when anything disagrees, CodecMismatchError when the codec contradicts the dataset's codec
    record or does not produce its features (``codec_spec.resolve_codec``), and the reader's errors (e.g.
    FrameTimestampError) when the dataset itself is inconsistent.
    """
    reader = DatasetReader(root)
    codec = dataset_codec(reader.root, dataset.codec)
    report = ConversionReport()
    if first_episode < 0 or first_episode + len(dataset) > reader.total_episodes:
        report.problems.append(
            f'raw dataset has {len(dataset)} episodes, dataset episodes [{first_episode}, '
            f'{first_episode + len(dataset)}) are asked for but it has {reader.total_episodes}'
        )
    _raise_if_problems(reader, report)
    cameras = list(codec.observation.cameras)
    numeric = [name for name in codec.features() if name not in cameras]
    with ThreadPoolExecutor(max_workers=max(1, len(cameras)), thread_name_prefix='check-camera') as pool:
        for i in range(len(dataset)):
            _check_episode(reader, dataset, i, first_episode + i, task, numeric, cameras, min_psnr_db, pool, report)
    _raise_if_problems(reader, report)
    return report


def _raise_if_problems(reader: DatasetReader, report: ConversionReport) -> None:
    if not report.problems:
        return
    listed = report.problems[:MAX_LISTED_PROBLEMS]
    more = len(report.problems) - len(listed)
    raise ConversionMismatchError(
        f'{reader.root} does not match its raw source:\n  '
        + '\n  '.join(listed)
        + (f'\n  ... and {more} more' if more else '')
    )


def _check_episode(
    reader: DatasetReader,
    dataset: EncodedDataset,
    raw_index: int,
    episode_index: int,
    task: str | None,
    numeric: list[str],
    cameras: list[str],
    min_psnr_db: float,
    pool: ThreadPoolExecutor,
    report: ConversionReport,
) -> None:
    projected = dataset.project(raw_index, reader.fps, task)
    where = f'episode {episode_index} (raw episode {raw_index})'
    record = reader.episode(episode_index)
    if record.length != len(projected):
        report.problems.append(
            f'{where}: {record.length} frames, the raw episode gives {len(projected)} at {reader.fps} fps'
        )
        return
    jobs = {
        key: pool.submit(_camera_psnrs, reader.iter_frames(key, episode_index), projected.frames[key])
        for key in cameras
    }
    columns = reader.read_episode(episode_index, [*numeric, TIMESTAMP, FRAME_INDEX, EPISODE_INDEX, TASK_INDEX])
    for name in numeric:
        got, want = (
            columns[name].reshape(len(projected), -1),
            np.asarray(projected.frames[name]).reshape(len(projected), -1),
        )
        diff = float(np.max(np.abs(got.astype(np.float64) - want.astype(np.float64))))
        report.note_difference(name, diff)
        if diff != 0:
            frame = int(np.argwhere(got != want)[0, 0])
            report.problems.append(f'{where}: {name!r} differs from frame {frame} on (max abs difference {diff:g})')
    frame_index = np.arange(len(projected))
    expected_defaults = {
        TIMESTAMP: (frame_index / reader.fps).astype(np.float32),
        FRAME_INDEX: frame_index,
        EPISODE_INDEX: np.full(len(projected), episode_index),
    }
    for name, want in expected_defaults.items():
        if not np.array_equal(columns[name], want):
            report.problems.append(f'{where}: column {name!r} is not {name} of a {reader.fps} fps episode')
    tasks = {reader.tasks[int(t)] for t in np.unique(columns[TASK_INDEX])}
    if tasks != {projected.task}:
        report.problems.append(f'{where}: tasks {sorted(tasks)}, expected {projected.task!r}')
    for key, job in jobs.items():
        psnrs = job.result()
        worst = min(psnrs)
        report.note_psnr(key, worst)
        if worst < min_psnr_db:
            frame = int(np.argmin(psnrs))
            report.problems.append(
                f'{where}: {key!r} frame {frame} has PSNR {worst:.1f} dB against the raw frame (< {min_psnr_db} dB)'
            )
    report.episodes += 1
    report.frames += len(projected)
