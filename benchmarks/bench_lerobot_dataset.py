"""Benchmark of the LeRobot v3.0 dataset writer and reader, side by side with LeRobot 0.4.4's recording path.

    .venv/bin/python benchmarks/bench_lerobot_dataset.py [--episodes 3] [--frames 300]
        [--lerobot-python /tmp/venv-lerobot/bin/python]

Frames: two cameras at 480x480, 30 fps, made like the converter makes them: a 320x240 scene (a textured table,
three shaded cubes moving, mild sensor noise; one camera pans like a wrist camera, the other is static) scaled to
480x360 and letterboxed to 480x480 with black bars. Measured:

1. video encoders alone (one camera, one stream): images/s, MiB per 300 frames, PSNR against the source;
2. our writer (``DatasetWriter``: stats, parquet, both cameras encoded in parallel): frames/s, one frame = both
   cameras, for the default H.264 settings and for LeRobot's AV1 settings;
3. LeRobot 0.4.4 (``LeRobotDataset.create`` + ``add_frame`` + ``save_episode``) on the same frames, run in the
   side interpreter when given;
4. our reader: sequential decode of whole episodes, frames/s per camera, at full size and resized.
"""

import argparse
import io
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np
import pyarrow
from machine import cpu_model
from results import record

from positronic.vendors.lerobot.lerobot_dataset import AV1_LEROBOT, H264, DatasetReader, DatasetWriter, VideoEncoding
from positronic.vendors.lerobot.lerobot_dataset.camera_encoding import CameraEncoder
from positronic.vendors.lerobot.lerobot_dataset.features import parse_user_features
from positronic.vendors.lerobot.lerobot_dataset.video_encode import encode_episode

FPS = 30
SIZE = 480
SOURCE_H, SOURCE_W = 240, 320
CAMERAS = ('observation.images.left', 'observation.images.side')
LEROBOT_SCRIPT = Path(__file__).with_name('lerobot_record.py')


def _value_noise(rng: np.random.Generator, h: int, w: int, cells: tuple[int, ...] = (8, 32, 128)) -> np.ndarray:
    out = np.zeros((h, w), np.float32)
    for s in cells:
        grid = rng.random((h // s + 2, w // s + 2)).astype(np.float32)
        yi, xi = np.arange(h) / s, np.arange(w) / s
        y0, x0 = yi.astype(int), xi.astype(int)
        fy, fx = (yi - y0)[:, None], (xi - x0)[None]
        top = grid[y0][:, x0] * (1 - fx) + grid[y0][:, x0 + 1] * fx
        bottom = grid[y0 + 1][:, x0] * (1 - fx) + grid[y0 + 1][:, x0 + 1] * fx
        out += top * (1 - fy) + bottom * fy
    return out / len(cells)


def source_frames(num_frames: int, *, seed: int, panning: bool) -> np.ndarray:
    """uint8 (T, 240, 320, 3): a rendered-like table with three moving cubes, as a 320x240 camera sees it."""
    rng = np.random.default_rng(seed)
    texture = _value_noise(rng, 2 * SOURCE_H, 2 * SOURCE_W)
    table = np.stack([0.35 + 0.4 * texture, 0.28 + 0.3 * texture, 0.2 + 0.2 * texture], -1)
    yy, xx = np.mgrid[0:SOURCE_H, 0:SOURCE_W].astype(np.float32)
    out = np.empty((num_frames, SOURCE_H, SOURCE_W, 3), np.uint8)
    for t in range(num_frames):
        phase = t / FPS + seed
        oy = int(SOURCE_H / 2 * (1 + np.sin(phase * 0.4))) if panning else SOURCE_H // 2
        ox = int(SOURCE_W / 2 * (1 + np.cos(phase * 0.3))) if panning else SOURCE_W // 2
        img = table[oy : oy + SOURCE_H, ox : ox + SOURCE_W].copy()
        for i, color in enumerate([(0.9, 0.15, 0.1), (0.1, 0.75, 0.2), (0.2, 0.3, 0.9)]):
            cx = SOURCE_W / 2 + 90 * np.sin(phase * 0.7 + i * 2)
            cy = SOURCE_H / 2 + 60 * np.cos(phase * 0.5 + i)
            r = 22 - 4 * i
            mask = (np.abs(xx - cx) < r) & (np.abs(yy - cy) < r)
            shade = (0.6 + 0.4 * (yy[mask] - cy + r) / (2 * r))[:, None]
            img[mask] = np.asarray(color, np.float32) * shade
        img += rng.normal(0, 0.006, img.shape).astype(np.float32)
        out[t] = (np.clip(img, 0, 1) * 255).astype(np.uint8)
    return out


def scene_frames(num_frames: int, *, seed: int, panning: bool) -> np.ndarray:
    """uint8 (T, 480, 480, 3): ``source_frames`` scaled to 480x360 (nearest) and letterboxed."""
    scaled_h = SOURCE_H * SIZE // SOURCE_W
    top = (SIZE - scaled_h) // 2
    rows = (np.arange(scaled_h) * SOURCE_H / scaled_h).astype(int)
    cols = (np.arange(SIZE) * SOURCE_W / SIZE).astype(int)
    out = np.zeros((num_frames, SIZE, SIZE, 3), np.uint8)
    out[:, top : top + scaled_h] = source_frames(num_frames, seed=seed, panning=panning)[:, rows][:, :, cols]
    return out


def machine_info() -> str:
    cpu = cpu_model()
    return (
        f'{cpu}, {os.cpu_count()} cores; Python {platform.python_version()}, PyAV {av.__version__} '
        f'(FFmpeg {av.library_versions["libavcodec"]}), numpy {np.__version__}, pyarrow {pyarrow.__version__}'
    )


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0**2 / mse))


def bench_encoders(frames: np.ndarray, encodings: dict[str, VideoEncoding]) -> list[tuple]:
    rows = []
    for label, encoding in encodings.items():
        start = time.perf_counter()
        encoded = encode_episode(iter(frames), fps=FPS, height=SIZE, width=SIZE, encoding=encoding)
        elapsed = time.perf_counter() - start
        with av.open(io.BytesIO(encoded.data)) as container:
            decoded = np.stack([f.to_ndarray(format='rgb24') for f in container.decode(video=0)])
        mib_per_300 = len(encoded.data) / 2**20 * 300 / len(frames)
        rows.append((label, len(frames) / elapsed, mib_per_300, psnr(decoded, frames)))
    return rows


def episode_state(num_frames: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    t = np.arange(num_frames)[:, None] / FPS
    phases = np.random.default_rng(seed).random(8)
    state = np.sin(t * (1 + np.arange(8)) * 0.5 + phases).astype(np.float32)
    return state, np.roll(state, -1, axis=0)


FEATURES = {
    'observation.state': {'dtype': 'float32', 'shape': [8], 'names': [f's{i}' for i in range(8)]},
    'action': {'dtype': 'float32', 'shape': [8], 'names': [f'a{i}' for i in range(8)]},
    **{key: {'dtype': 'video', 'shape': [SIZE, SIZE, 3], 'names': ['height', 'width', 'channels']} for key in CAMERAS},
}


def bench_camera_threads(cams: dict[str, np.ndarray], encoding: VideoEncoding, workers: int) -> float:
    """Frames/s (both cameras) of encoding one episode per camera with ``workers`` camera threads."""
    video = {k: f for k, f in parse_user_features(FEATURES).items() if f.is_video}
    encoder = CameraEncoder(workers, FPS, encoding)
    num_frames = len(next(iter(cams.values())))
    start = time.perf_counter()
    encoder.start(video, {k: iter(v) for k, v in cams.items()}, num_frames).wait()
    elapsed = time.perf_counter() - start
    encoder.shutdown()
    return num_frames / elapsed


def bench_writer(root: Path, cams: dict[str, np.ndarray], episodes: int, encoding: VideoEncoding) -> float:
    num_frames = len(next(iter(cams.values())))
    start = time.perf_counter()
    with DatasetWriter.create(root, FEATURES, FPS, robot_type='bench', video=encoding) as writer:
        for e in range(episodes):
            state, action = episode_state(num_frames, e)
            episode = {'observation.state': state, 'action': action, **{k: iter(v) for k, v in cams.items()}}
            writer.add_episode(episode, 'stack the cubes')
    return episodes * num_frames / (time.perf_counter() - start)


def bench_reader(root: Path, size: tuple[int, int] | None) -> float:
    reader = DatasetReader(root)
    start = time.perf_counter()
    count = 0
    for key in reader.video_keys:
        for ep in reader.episodes:
            count += len(reader.decode_episode(key, ep.episode_index, size=size))
    return count / (time.perf_counter() - start)


def bench_lerobot(python: str, frames_file: Path, root: Path, episodes: int) -> dict | None:
    env = {**os.environ, 'HF_HUB_OFFLINE': '1', 'HF_LEROBOT_HOME': str(root.parent / 'hf_lerobot')}
    command = [python, str(LEROBOT_SCRIPT), str(frames_file), str(root), str(episodes)]
    result = subprocess.run(command, capture_output=True, text=True, env=env)
    if result.returncode != 0:
        print(f'LeRobot run failed:\n{result.stderr[-3000:]}', file=sys.stderr)
        return None
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--episodes', type=int, default=3)
    parser.add_argument('--frames', type=int, default=300)
    parser.add_argument('--lerobot-python', default=os.environ.get('LEROBOT_PYTHON'))
    args = parser.parse_args()

    print(f'machine: {machine_info()}')
    print(
        f'data: {args.episodes} episodes x {args.frames} frames, '
        f'2 cameras {SIZE}x{SIZE} (letterboxed 320x240), {FPS} fps'
    )
    cams = {
        CAMERAS[0]: scene_frames(args.frames, seed=1, panning=True),
        CAMERAS[1]: scene_frames(args.frames, seed=2, panning=False),
    }

    encodings = {
        'AV1 libsvtav1 preset 12 crf 30 (LeRobot)': AV1_LEROBOT,
        'H.264 libx264 ultrafast crf 30': VideoEncoding(preset='ultrafast', crf=30),
        'H.264 libx264 ultrafast crf 23': VideoEncoding(preset='ultrafast', crf=23),
        'H.264 libx264 veryfast crf 30': VideoEncoding(preset='veryfast', crf=30),
        'H.264 libx264 veryfast crf 23': VideoEncoding(preset='veryfast', crf=23),
        'H.264 libx264 faster crf 23': VideoEncoding(preset='faster', crf=23),
    }
    print('\n## Encoders alone (one camera, GOP 2, yuv420p)\n')
    print('| encoder | encode images/s | MiB / 300 frames | PSNR dB |')
    print('|---|---:|---:|---:|')
    for label, speed, mib, quality in bench_encoders(cams[CAMERAS[0]], encodings):
        print(f'| {label} | {speed:.0f} | {mib:.2f} | {quality:.2f} |')

    print('\n## Camera parallelism: one episode of both cameras, frames/s\n')
    print('| encoder | 1 camera thread | 2 camera threads |')
    print('|---|---:|---:|')
    single_threaded_x264 = VideoEncoding(options={'bframes': '0', 'threads': '1'})
    for label, encoding in (
        ('H.264 default', H264),
        ('H.264, x264 threads=1', single_threaded_x264),
        ('AV1', AV1_LEROBOT),
    ):
        speeds = [bench_camera_threads(cams, encoding, workers) for workers in (1, 2)]
        print(f'| {label} | {speeds[0]:.0f} | {speeds[1]:.0f} |')

    with tempfile.TemporaryDirectory(prefix='bench_lerobot_dataset_') as tmp:
        tmp_path = Path(tmp)
        rows = []
        for label, encoding in (('ours, H.264 default', H264), ('ours, AV1 (LeRobot settings)', AV1_LEROBOT)):
            root = tmp_path / label.split(',')[1].strip().split()[0]
            fps = bench_writer(root, cams, args.episodes, encoding)
            rows.append((label, fps, sum(p.stat().st_size for p in (root / 'videos').rglob('*.mp4')) / 2**20, root))
        lerobot = None
        if args.lerobot_python:
            frames_file = tmp_path / 'frames.npz'
            state, action = episode_state(args.frames, 0)
            np.savez(frames_file, left=cams[CAMERAS[0]], side=cams[CAMERAS[1]], state=state, action=action)
            lerobot = bench_lerobot(args.lerobot_python, frames_file, tmp_path / 'lerobot', args.episodes)
        print('\n## Writing (frames/s; one frame = both cameras + state + action)\n')
        print('| writer | frames/s | x LeRobot | video MiB |')
        print('|---|---:|---:|---:|')
        base = lerobot['frames_per_s'] if lerobot else None
        if lerobot:
            print(f'| LeRobot 0.4.4 add_frame + save_episode (AV1) | {base:.1f} | 1.0 | {lerobot["video_mib"]:.2f} |')
        if lerobot:
            record('lerobot_dataset', 'LeRobot 0.4.4 add_frame + save_episode (AV1)', base, unit='frames/s')
        for label, fps, mib, _ in rows:
            ratio = f'{fps / base:.1f}' if base else 'n/a'
            print(f'| {label} | {fps:.1f} | {ratio} | {mib:.2f} |')
            record('lerobot_dataset', f'write, {label}', fps, unit='frames/s')
            if base:
                record('lerobot_dataset', f'write, {label}, x LeRobot', fps / base, unit='x')
        if not lerobot:
            print('\n(LeRobot not measured: pass --lerobot-python or set LEROBOT_PYTHON)')

        print('\n## Reading: sequential decode of whole episodes (frames/s, one camera at a time)\n')
        print('| dataset | 480x480 | 224x224 | 96x96 |')
        print('|---|---:|---:|---:|')
        for label, _, _, root in rows:
            speeds = [bench_reader(root, size) for size in (None, (224, 224), (96, 96))]
            print(f'| {label} | ' + ' | '.join(f'{s:.0f}' for s in speeds) + ' |')
            record('lerobot_dataset', f'read {SIZE}x{SIZE}, {label}', speeds[0], unit='frames/s')
        shutil.rmtree(tmp_path, ignore_errors=True)


if __name__ == '__main__':
    main()
