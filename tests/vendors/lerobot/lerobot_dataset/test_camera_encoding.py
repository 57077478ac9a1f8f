import io
import threading

import av
import numpy as np
import pytest

from positronic.vendors.lerobot.lerobot_dataset.camera_encoding import CameraEncoder
from positronic.vendors.lerobot.lerobot_dataset.features import parse_user_features
from positronic.vendors.lerobot.lerobot_dataset.video_encode import H264, encode_episode

from .helpers import CAMERAS, FPS, HEIGHT, WIDTH, features, scene

CAMERA_FEATURES = {k: f for k, f in parse_user_features(features()).items() if f.is_video}


def decoded(data: bytes) -> np.ndarray:
    with av.open(io.BytesIO(data)) as container:
        return np.stack([f.to_ndarray(format='rgb24') for f in container.decode(video=0)]).astype(np.int16)


def test_cameras_encode_in_worker_threads_to_the_same_frames_as_alone():
    encoder = CameraEncoder(2, FPS, H264)
    frames = {cam: scene(10, seed=i) for i, cam in enumerate(CAMERAS)}
    consumers = {}

    def recording(cam):
        consumers[cam] = threading.current_thread().name
        yield from frames[cam]

    result = encoder.start(CAMERA_FEATURES, {cam: recording(cam) for cam in CAMERAS}, 10).wait()
    encoder.shutdown()
    for cam in CAMERAS:
        alone = encode_episode(iter(frames[cam]), fps=FPS, height=HEIGHT, width=WIDTH, encoding=H264)
        # x264's floating-point analysis may differ by thread, so compare pictures rather than bytes.
        threaded, single = decoded(result[cam].video.data), decoded(alone.data)
        assert threaded.shape == single.shape == (10, HEIGHT, WIDTH, 3)
        assert np.abs(threaded - single).mean() < 0.5
        assert result[cam].stats['count'].tolist() == [10]
    assert all(name.startswith('lerobot-camera') for name in consumers.values())
    assert consumers[CAMERAS[0]] != consumers[CAMERAS[1]]


def test_a_failing_camera_stops_the_other_and_its_error_is_raised():
    encoder = CameraEncoder(2, FPS, H264)
    first_failed = threading.Event()
    consumed = []

    def failing():
        yield from scene(3, seed=0)
        first_failed.set()
        raise ConnectionError('camera lost')

    def endless():
        frame = scene(1, seed=1)[0]
        while True:
            first_failed.wait(5)
            consumed.append(1)
            yield frame

    with pytest.raises(ConnectionError, match='camera lost'):
        encoder.start(CAMERA_FEATURES, {CAMERAS[0]: failing(), CAMERAS[1]: endless()}, 10_000).wait()
    encoder.shutdown()
    assert len(consumed) < 100
