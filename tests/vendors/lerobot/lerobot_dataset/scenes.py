"""Deterministic synthetic camera frames (numpy only, so the side-environment fixture script can use them too)."""

import numpy as np

FPS = 30
HEIGHT, WIDTH = 48, 64
STATE_DIM = 4
CAMERAS = ('observation.images.left', 'observation.images.side')


def scene(num_frames: int, seed: int, height: int = HEIGHT, width: int = WIDTH) -> np.ndarray:
    """uint8 (T, H, W, 3): a colour gradient with a bright square moving across it."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    out = np.empty((num_frames, height, width, 3), np.uint8)
    for t in range(num_frames):
        phase = t / 10 + seed
        base = np.stack(
            [96 + 64 * np.sin(xx / 17 + phase), 128 + 48 * np.cos(yy / 13 - phase), 80 + 40 * np.sin((xx + yy) / 23)],
            -1,
        )
        cx, cy = (width / 2) * (1 + 0.6 * np.sin(phase)), (height / 2) * (1 + 0.6 * np.cos(phase))
        base[(np.abs(xx - cx) < 6) & (np.abs(yy - cy) < 6)] = (230, 210, 40)
        out[t] = np.clip(base, 0, 255).astype(np.uint8)
    return out
