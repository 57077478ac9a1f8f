"""Checking a converted LeRobot dataset against its raw source, feature by feature and frame by frame.

Every episode of the raw dataset is projected again by the codec at the dataset's fps and compared with what the
dataset holds: numeric features (``observation.state``, ``action``) must be equal to the bit, the default columns
must be what the format prescribes (``timestamp = frame_index / fps``, contiguous indices, the task), and every
camera frame is decoded through the dataset reader (which checks each frame's time against the parquet timestamp
within the format's tolerance) and compared with the letterboxed raw frame by PSNR, since video is lossy.

The PSNR bar: a camera's frames in an episode pass when they all reach ``min_psnr_db``, or else when they are close
to what the codec itself costs them, measured by encoding the raw frames again with the dataset's own settings and
decoding them: the mean PSNR within ``CODEC_MARGIN_DB`` of the re-encode's, every frame within ``FRAME_MARGIN_DB``
of its own. A fixed bar alone cannot serve every image size: the codec's loss grows as frames shrink (a 32 px
frame is mostly edges; 4:2:0 chroma keeps one colour sample per 2x2 pixels, and a CRF spends fewer bits per pixel
on small frames). Measured on simulator scenes letterboxed to 32 px: 25.7-29.0 dB per camera and episode at CRF
23, of which the 4:2:0 conversion alone (no compression) costs frames down to 29.5 dB. The re-encode runs only for
a camera of an episode with a frame under ``min_psnr_db``. A wrong frame (another time or camera, a corrupted
video) scores far below its re-encode and still fails.
"""

import io
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import av
import numpy as np

from positronic.vendors.lerobot.codec_spec import dataset_codec
from positronic.vendors.lerobot.conversion.encoded_dataset import EncodedDataset
from positronic.vendors.lerobot.lerobot_dataset import H264, DatasetReader, VideoEncoding
from positronic.vendors.lerobot.lerobot_dataset.format import EPISODE_INDEX, FRAME_INDEX, TASK_INDEX, TIMESTAMP
from positronic.vendors.lerobot.lerobot_dataset.video_encode import ENCODINGS_BY_CODEC, RGB24, encode_episode

DEFAULT_MIN_PSNR_DB = 30.0
"""Lowest PSNR (dB) accepted between a decoded camera frame and its raw letterboxed frame. Encoding at the default
settings gives ~38 dB or more on rendered scenes at 480 px; a frame of another time or camera scores far lower on
moving ones. Smaller frames may pass below it by matching the codec's own cost (``CODEC_MARGIN_DB``)."""
CODEC_MARGIN_DB = 1.0
"""How far the mean PSNR of a camera's frames in an episode may fall below the mean PSNR of the same raw frames
encoded again with the dataset's settings, when some frame is under ``min_psnr_db``."""
FRAME_MARGIN_DB = 6.0
"""How far one such frame may fall below its own re-encode. libx264 does not repeat itself exactly in one process:
measured at 32 px, 1 re-encode in 15 came out up to 3.0 dB better on single frames and 0.23 dB on the mean."""
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
        report.note_psnr(key, min(psnrs))
        if min(psnrs) < min_psnr_db:
            reference = _codec_psnrs(reader, key, projected.frames[key])  # its decoding job is done: read again
            _check_against_codec(f'{where}: {key!r}', psnrs, reference, min_psnr_db, report)
    report.episodes += 1
    report.frames += len(projected)


def dataset_encoding(reader: DatasetReader, key: str) -> VideoEncoding:
    """The encoder settings camera ``key`` was written with: as recorded, else the defaults for its codec."""
    recorded = reader.video_encoding
    if recorded is not None:
        return recorded
    codec = (reader.features[key].info or {}).get('video.codec')
    return ENCODINGS_BY_CODEC.get(codec, H264)


def _codec_psnrs(reader: DatasetReader, key: str, raw_frames: Iterable[np.ndarray]) -> list[float]:
    """Per frame, the PSNR of the raw frame after an encode and decode with the dataset's settings: what the codec
    itself costs it."""
    expected = [np.asarray(frame) for frame in raw_frames]
    height, width = reader.features[key].shape[:2]
    video = encode_episode(expected, fps=reader.fps, height=height, width=width, encoding=dataset_encoding(reader, key))
    with av.open(io.BytesIO(video.data), 'r') as container:
        decoded = [frame.to_ndarray(format=RGB24) for frame in container.decode(video=0)]
    return _camera_psnrs(decoded, expected)


def _check_against_codec(
    where: str, psnrs: Sequence[float], reference: Sequence[float], min_psnr_db: float, report: ConversionReport
) -> None:
    """Note a camera whose frames are under ``min_psnr_db`` and, on average or one by one, further below their
    re-encode (``reference``) than ``CODEC_MARGIN_DB`` / ``FRAME_MARGIN_DB``."""
    got_db, codec_db = float(np.mean(psnrs)), float(np.mean(reference))
    if got_db < codec_db - CODEC_MARGIN_DB:
        frame = int(np.argmin(psnrs))
        report.problems.append(
            f'{where} frame {frame} has PSNR {psnrs[frame]:.1f} dB against the raw frame (< {min_psnr_db} dB), and '
            f'the episode {got_db:.1f} dB on average where the codec alone gives {codec_db:.1f} dB with the '
            "dataset's settings"
        )
        return
    for frame, (got, codec) in enumerate(zip(psnrs, reference, strict=True)):
        if got < min_psnr_db and got < codec - FRAME_MARGIN_DB:
            report.problems.append(
                f'{where} frame {frame} has PSNR {got:.1f} dB against the raw frame (< {min_psnr_db} dB), where the '
                f"codec alone gives {codec:.1f} dB with the dataset's settings"
            )
            return
