"""Benchmark of the LeRobot v3.0 dataset writer, side by side with LeRobot 0.4.4's recording path: the encoding
table of docs/codecs.md (``--video`` settings).

    .venv/bin/python benchmarks/bench_lerobot_dataset.py [--episodes 3] [--frames 300]
        [--lerobot-python /tmp/venv-lerobot/bin/python]

Frames: two cameras at 480x480, 30 fps, made like the converter makes them: a 320x240 scene (a textured table,
three shaded cubes moving, mild sensor noise; one camera pans like a wrist camera, the other is static) scaled to
480x360 and letterboxed to 480x480 with black bars. For the default H.264 settings and LeRobot's AV1 settings:

1. the encoder alone (one camera, one stream): images/s, MiB per 300 frames, PSNR against the source;
2. our writer (``DatasetWriter``: stats, parquet, both cameras encoded in parallel): frames/s, one frame = both
   cameras;
3. LeRobot 0.4.4 (``LeRobotDataset.create`` + ``add_frame`` + ``save_episode``) on the same frames, run in the
   side interpreter when given.
"""

import argparse
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np
from harness import (
    LEROBOT_MISSING,
    add_lerobot_python,
    format_value,
    lerobot_python,
    machine_lines,
    print_table,
    record,
)

from positronic.vendors.lerobot.lerobot_dataset import AV1_LEROBOT, H264, DatasetWriter, VideoEncoding
from positronic.vendors.lerobot.lerobot_dataset.video_encode import encode_episode

FPS = 30
SIZE = 480
SOURCE_H, SOURCE_W = 240, 320
CAMERAS = ('observation.images.left', 'observation.images.side')
LEROBOT_SCRIPT = Path(__file__).with_name('lerobot_record.py')
ENCODINGS = {'H.264 (default)': H264, "AV1 (LeRobot's default)": AV1_LEROBOT}


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


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0**2 / mse))


def bench_encoder(frames: np.ndarray, encoding: VideoEncoding) -> tuple[float, float, float]:
    """(images/s, MiB per 300 frames, PSNR dB) of encoding ``frames`` as one stream."""
    start = time.perf_counter()
    encoded = encode_episode(iter(frames), fps=FPS, height=SIZE, width=SIZE, encoding=encoding)
    elapsed = time.perf_counter() - start
    with av.open(io.BytesIO(encoded.data)) as container:
        decoded = np.stack([f.to_ndarray(format='rgb24') for f in container.decode(video=0)])
    return len(frames) / elapsed, len(encoded.data) / 2**20 * 300 / len(frames), psnr(decoded, frames)


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


def bench_writer(root: Path, cams: dict[str, np.ndarray], episodes: int, encoding: VideoEncoding) -> float:
    num_frames = len(next(iter(cams.values())))
    start = time.perf_counter()
    with DatasetWriter.create(root, FEATURES, FPS, robot_type='bench', video=encoding) as writer:
        for e in range(episodes):
            state, action = episode_state(num_frames, e)
            episode = {'observation.state': state, 'action': action, **{k: iter(v) for k, v in cams.items()}}
            writer.add_episode(episode, 'stack the cubes')
    return episodes * num_frames / (time.perf_counter() - start)


def bench_lerobot(python: Path, frames_file: Path, root: Path, episodes: int) -> dict | None:
    env = {**os.environ, 'HF_HUB_OFFLINE': '1', 'HF_LEROBOT_HOME': str(root.parent / 'hf_lerobot')}
    command = [str(python), str(LEROBOT_SCRIPT), str(frames_file), str(root), str(episodes)]
    result = subprocess.run(command, capture_output=True, text=True, env=env)
    if result.returncode != 0:
        print(f'LeRobot run failed:\n{result.stderr[-3000:]}', file=sys.stderr)
        return None
    return json.loads(result.stdout.strip().splitlines()[-1])


def parse_arguments(doc: str) -> tuple[argparse.Namespace, Path | None]:
    """``--episodes``, ``--frames`` and LeRobot's python, for this benchmark and ``bench_to_lerobot.py``."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--episodes', type=int, default=3)
    parser.add_argument('--frames', type=int, default=300, help='frames per episode')
    add_lerobot_python(parser)
    args = parser.parse_args()
    return args, lerobot_python(parser, args.lerobot_python)


def main() -> None:
    args, python = parse_arguments(__doc__)

    print('\n'.join(machine_lines('av', 'numpy', 'pyarrow')))
    print(
        f'data: {args.episodes} episodes x {args.frames} frames, '
        f'2 cameras {SIZE}x{SIZE} (letterboxed 320x240), {FPS} fps'
    )
    cams = {
        CAMERAS[0]: scene_frames(args.frames, seed=1, panning=True),
        CAMERAS[1]: scene_frames(args.frames, seed=2, panning=False),
    }
    rows = []
    with tempfile.TemporaryDirectory(prefix='bench_lerobot_dataset_') as tmp:
        work = Path(tmp)
        lerobot = None
        if python:
            frames_file = work / 'frames.npz'
            state, action = episode_state(args.frames, 0)
            np.savez(frames_file, left=cams[CAMERAS[0]], side=cams[CAMERAS[1]], state=state, action=action)
            lerobot = bench_lerobot(python, frames_file, work / 'lerobot', args.episodes)
        if lerobot:
            rows.append(('LeRobot 0.4.4 add_frame + save_episode (AV1)', '', f'{lerobot["frames_per_s"]:.1f}', '1.0'))
            record(
                'lerobot_dataset',
                'LeRobot 0.4.4 add_frame + save_episode (AV1)',
                lerobot['frames_per_s'],
                unit='frames/s',
            )
        for i, (label, encoding) in enumerate(ENCODINGS.items()):
            images_s, mib, quality = bench_encoder(cams[CAMERAS[0]], encoding)
            frames_s = bench_writer(work / f'ours_{i}', cams, args.episodes, encoding)
            ratio = format_value(frames_s / lerobot['frames_per_s'], 'x') if lerobot else 'n/a'
            rows.append((f'ours, {label}', f'{images_s:.0f}', f'{frames_s:.1f}', ratio, f'{quality:.1f}', f'{mib:.2f}'))
            record('lerobot_dataset', f'write, ours, {label}', frames_s, unit='frames/s')
            if lerobot:
                record(
                    'lerobot_dataset', f'write, ours, {label}, x LeRobot', frames_s / lerobot['frames_per_s'], unit='x'
                )
    header = (
        'encoding',
        'encode images/s, 1 camera',
        'writer frames/s, 2 cameras',
        'x LeRobot',
        'PSNR dB',
        'MiB / 300 frames',
    )
    print_table(header, rows)
    if not lerobot:
        print(f'(LeRobot not measured: {LEROBOT_MISSING})')


if __name__ == '__main__':
    main()
