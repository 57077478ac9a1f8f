"""Lazy transforms: letterbox, resample, concat and select."""

import numpy as np
import pytest
from PIL import Image

from positronic.dataset import EpisodeView
from positronic.dataset.errors import TimeOutOfRangeError
from positronic.dataset.transforms import concat, letterbox, letterboxed, resample, resample_episode, select
from positronic.dataset.vector import VectorSignal, VectorWriter

from .conftest import assert_frame


def vector_signal(path, name, timestamps, values):
    writer = VectorWriter(path / f'{name}.parquet', name)
    for ts, value in zip(timestamps, values, strict=True):
        writer.append(value, ts)
    writer.close()
    return VectorSignal(path / f'{name}.parquet', name)


def noise_image(height, width, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def test_letterbox_of_sim_camera_to_224_matches_the_reference_arithmetic():
    image = noise_image(240, 320)
    out = letterbox(image, 224, 224)
    assert out.shape == (224, 224, 3) and out.dtype == np.uint8
    expected = np.asarray(Image.fromarray(image).resize((224, 168), Image.Resampling.BILINEAR))
    np.testing.assert_array_equal(out[28:196], expected)
    assert not out[:28].any() and not out[196:].any()


def test_letterbox_pads_left_and_right_for_portrait_images():
    image = noise_image(480, 240)
    out = letterbox(image, 480, 480)
    expected = np.asarray(Image.fromarray(image).resize((240, 480), Image.Resampling.BILINEAR))
    np.testing.assert_array_equal(out[:, 120:360], expected)
    assert not out[:, :120].any() and not out[:, 360:].any()


def test_letterbox_to_a_non_square_target_uses_truncated_size_and_offsets():
    image = noise_image(100, 300)
    out = letterbox(image, 250, 120)
    # ratio = max(300/250, 100/120) = 1.2 -> new size (250, 83), top offset int((120 - 83) / 2) = 18
    assert out.shape == (120, 250, 3)
    expected = np.asarray(Image.fromarray(image).resize((250, 83), Image.Resampling.BILINEAR))
    np.testing.assert_array_equal(out[18:101], expected)
    assert not out[:18].any() and not out[101:].any()


def test_letterbox_upscales_small_images():
    image = noise_image(10, 20)
    out = letterbox(image, 40, 40)
    expected = np.asarray(Image.fromarray(image).resize((40, 20), Image.Resampling.BILINEAR))
    np.testing.assert_array_equal(out[10:30], expected)


def test_letterbox_returns_images_of_the_target_size_unchanged():
    image = noise_image(48, 64)
    assert letterbox(image, 64, 48) is image


def test_letterbox_rejects_non_images_and_bad_targets():
    with pytest.raises(ValueError, match=r'uint8 \(H, W, 3\)'):
        letterbox(np.zeros((4, 4), np.uint8), 2, 2)
    with pytest.raises(ValueError, match='positive'):
        letterbox(noise_image(4, 4), 0, 2)


def test_letterboxed_signal_gives_letterbox_of_each_decoded_frame(episode):
    camera = episode['cam']
    boxed = letterboxed(camera, 32, 32)
    assert boxed.timestamps.tolist() == camera.timestamps.tolist()
    frame, ts = boxed[3]
    np.testing.assert_array_equal(frame, letterbox(camera[3][0], 32, 32))
    assert ts == camera[3][1] and frame.shape == (32, 32, 3)
    values = boxed.time[1000:1100:40].values
    assert len(values) == 3
    np.testing.assert_array_equal(values[2], letterbox(camera[4][0], 32, 32))


def test_letterboxed_signal_decodes_nothing_until_accessed(episode):
    camera = episode['cam']
    boxed = letterboxed(camera, 16, 24)
    assert boxed.shape == (24, 16, 3) and boxed.dtype == np.uint8
    sampled = boxed.time[1000:1180:20].values
    assert len(sampled) == 9 and camera.seek_count == 0
    for i, frame in enumerate(sampled):
        assert frame.shape == (24, 16, 3)
        np.testing.assert_array_equal(frame, letterbox(camera[i][0], 16, 24))
    assert camera.seek_count == 0


def test_resample_takes_values_at_or_before_each_time(tmp_path):
    sig = vector_signal(tmp_path, 'g', [10, 20, 30], [1.0, 2.0, 3.0])
    view = resample(sig, np.array([10, 15, 29, 30, 100]))
    assert view.values.tolist() == [1.0, 1.0, 2.0, 3.0, 3.0]
    assert view.timestamps.tolist() == [10, 15, 29, 30, 100]
    with pytest.raises(TimeOutOfRangeError):
        resample(sig, [5])


def test_resample_episode_keeps_statics_and_resamples_every_signal(episode):
    grid = np.arange(1005, 1200, 50)
    resampled = resample_episode(episode, grid)
    assert resampled['task'] == 'task 0'
    assert all(resampled[name].timestamps.tolist() == grid.tolist() for name in resampled.signals)
    np.testing.assert_array_equal(resampled['q'].values[:, 0], [0, 5, 10, 15])
    assert_frame(resampled['cam'][1][0], 2, 20)
    assert resampled.time[1060]['grip'] == pytest.approx(0.25)


def test_concat_aligns_on_the_union_of_timestamps_from_the_latest_start(tmp_path):
    pose = vector_signal(tmp_path, 'pose', [0, 10, 20, 30], [np.array([i, i + 0.5]) for i in range(4)])
    grip = vector_signal(tmp_path, 'grip', [5, 25], [0.1, 0.9])
    state = concat(pose, grip)
    assert state.timestamps.tolist() == [5, 10, 20, 25, 30]
    np.testing.assert_array_equal(
        state.values,
        [[0, 0.5, 0.1], [1, 1.5, 0.1], [2, 2.5, 0.1], [2, 2.5, 0.9], [3, 3.5, 0.9]],
    )
    np.testing.assert_array_equal(state[3][0], [2, 2.5, 0.9])
    value, ts = state.time[27]
    assert ts == 25
    np.testing.assert_array_equal(value, [2, 2.5, 0.9])
    assert state.shape == (3,) and state.dtype == np.float64


def test_concat_promotes_or_casts_dtypes(tmp_path):
    q = vector_signal(tmp_path, 'q', [0, 1], [np.zeros(2, np.float32), np.ones(2, np.float32)])
    grip = vector_signal(tmp_path, 'grip', [0], [0.25])
    assert concat(q, grip).values.dtype == np.float64
    cast = concat(q, grip, dtype=np.float32)
    assert cast.values.dtype == np.float32 and cast[1][0].dtype == np.float32
    np.testing.assert_array_equal(cast[1][0], np.array([1, 1, 0.25], np.float32))


def test_concat_of_episode_signals_samples_on_a_grid(episode):
    state = concat(episode['q'], episode['grip'], dtype=np.float32)
    rows = EpisodeView({'state': state}, episode.static).time[1005:1030:10]
    np.testing.assert_allclose(rows['state'][:, [0, 7]], [[0, 0.0], [1, 0.05], [2, 0.1]])


def test_concat_needs_a_signal():
    with pytest.raises(ValueError, match='at least one'):
        concat()


def test_select_takes_part_of_each_vector(tmp_path):
    pose = vector_signal(tmp_path, 'pose', [0, 10], [np.arange(7.0), np.arange(7.0) + 10])
    xyz = select(pose, slice(0, 3))
    np.testing.assert_array_equal(xyz.values, [[0, 1, 2], [10, 11, 12]])
    np.testing.assert_array_equal(xyz[1][0], [10, 11, 12])
    assert select(pose, [6, 0]).time[5][0].tolist() == [6.0, 0.0]
    assert select(pose, 3).values.tolist() == [3.0, 13.0]
    assert select(pose, slice(3, 7)).shape == (4,)


def test_transforms_read_nothing_until_accessed(tmp_path):
    (tmp_path / 'broken.parquet').write_bytes(b'not parquet')
    broken = VectorSignal(tmp_path / 'broken.parquet', 'broken')
    state = concat(select(broken, slice(0, 3)), broken)
    with pytest.raises(ValueError, match="signal 'broken': cannot read"):
        len(state)
