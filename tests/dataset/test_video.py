"""Image signals: H.264 mp4 plus frame index, frame-exact reads, forward decoding and bad input."""

import pickle

import av
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from positronic.dataset.errors import CorruptSignalError, SignalValueError, TimestampOrderError
from positronic.dataset.video import NOMINAL_RATE, VideoSignal, VideoWriter, frames_path, is_image

from .conftest import assert_frame, frame_image

COUNT = 70


@pytest.fixture
def video(tmp_path) -> VideoSignal:
    """70 frames ``frame_image(i)`` (48x64) at ts 5000 + 33*i."""
    writer = VideoWriter(tmp_path / 'cam.mp4', 'cam')
    for i in range(COUNT):
        writer.append(frame_image(i), 5000 + 33 * i)
    writer.close()
    return VideoSignal(tmp_path / 'cam.mp4', 'cam')


def test_routing_predicate_accepts_only_uint8_rgb_images():
    assert is_image(np.zeros((4, 6, 3), np.uint8))
    assert not is_image(np.zeros((4, 6, 4), np.uint8))
    assert not is_image(np.zeros((4, 6, 3), np.float32))
    assert not is_image(np.zeros((4, 6), np.uint8))
    assert not is_image([[[0, 0, 0]]])


def test_mp4_is_h264_yuv420p_at_nominal_rate_with_pts_equal_to_frame_index(video):
    with av.open(str(video.video_path)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == 'h264'
        assert stream.codec_context.pix_fmt == 'yuv420p'
        assert (stream.codec_context.width, stream.codec_context.height) == (64, 48)
        assert stream.average_rate == NOMINAL_RATE
        ticks = round(1 / (NOMINAL_RATE * stream.time_base))
        pts = sorted(p.pts for p in container.demux(stream) if p.pts is not None)
    assert pts == [i * ticks for i in range(COUNT)]


def test_frame_index_has_one_int64_timestamp_per_frame(video):
    table = pq.read_table(frames_path(video.video_path))
    assert table.schema.names == ['ts_ns'] and table.schema.field('ts_ns').type == pa.int64()
    assert table.column('ts_ns').to_pylist() == [5000 + 33 * i for i in range(COUNT)]


def test_frames_read_back_in_order(video):
    assert len(video) == COUNT and video.shape == (48, 64, 3) and video.dtype == np.uint8
    for i, (frame, ts) in enumerate(video):
        assert ts == 5000 + 33 * i
        assert_frame(frame, i, COUNT)
    assert video.seek_count == 0


def test_random_access_returns_the_right_frames(video):
    for i in [50, 3, 69, 31, 30, 29, 0, 64, 12]:
        frame, ts = video[i]
        assert ts == 5000 + 33 * i
        assert_frame(frame, i, COUNT)
    assert video.seek_count >= 3


def test_ascending_time_grid_decodes_forward_without_seeking(video):
    view = video.time[5000 : 5000 + 33 * COUNT : 20]
    frames = view.values
    assert len(frames) == len(view)
    for (frame, ts), expected in zip(zip(frames, view.timestamps, strict=True), range(len(view)), strict=True):
        assert_frame(frame, (ts - 5000) // 33, COUNT)
        assert ts == 5000 + 20 * expected
    assert video.seek_count == 0


def test_slices_decode_forward_and_a_jump_back_seeks_once(video):
    for i, (frame, _) in enumerate(video[40:60]):
        assert_frame(frame, 40 + i, COUNT)
    seeks_after_jump = video.seek_count
    for i, (frame, _) in enumerate(video[60:]):
        assert_frame(frame, 60 + i, COUNT)
    assert video.seek_count == seeks_after_jump
    assert_frame(video[2][0], 2, COUNT)
    assert video.seek_count == seeks_after_jump + 1


def test_repeated_access_returns_the_same_read_only_frame(video):
    first = video[10][0]
    assert video[10][0] is first
    assert not first.flags.writeable


def test_stacking_values_decodes_all_frames(video):
    stacked = np.asarray(video[:5].values)
    assert stacked.shape == (5, 48, 64, 3)
    for i in range(5):
        assert_frame(stacked[i], i, COUNT)


def test_frame_size_change_is_refused(tmp_path):
    writer = VideoWriter(tmp_path / 'cam.mp4', 'cam')
    writer.append(frame_image(0), 1)
    with pytest.raises(SignalValueError, match=r"signal 'cam': expected a uint8 \(48, 64, 3\) frame .* \(48, 66, 3\)"):
        writer.append(frame_image(1, 48, 66), 2)
    with pytest.raises(SignalValueError):
        writer.append(np.zeros((48, 64, 3), np.float32), 2)
    writer.abort()


def test_odd_frame_size_is_refused_before_any_file_is_written(tmp_path):
    writer = VideoWriter(tmp_path / 'cam.mp4', 'cam')
    with pytest.raises(SignalValueError, match='even, non-zero H and W; got ndarray uint8 \\(47, 64, 3\\)'):
        writer.append(np.zeros((47, 64, 3), np.uint8), 1)
    assert not (tmp_path / 'cam.mp4').exists()


def test_non_increasing_frame_timestamp_is_refused(tmp_path):
    writer = VideoWriter(tmp_path / 'cam.mp4', 'cam')
    writer.append(frame_image(0), 10)
    with pytest.raises(TimestampOrderError, match="signal 'cam'"):
        writer.append(frame_image(1), 10)
    writer.abort()


def test_abort_removes_video_and_frame_index(tmp_path):
    writer = VideoWriter(tmp_path / 'cam.mp4', 'cam')
    writer.append(frame_image(0), 10)
    writer.abort()
    assert list(tmp_path.iterdir()) == []


def test_frame_count_mismatch_raises_corrupt_signal_error(video):
    pq.write_table(pa.table({'ts_ns': pa.array([1, 2, 3], pa.int64())}), frames_path(video.video_path))
    reopened = VideoSignal(video.video_path, 'cam')
    assert len(reopened) == 3
    with pytest.raises(CorruptSignalError, match='has 70 frames but its frame index lists 3'):
        reopened[0]


def test_access_after_close_reopens_the_file(video):
    assert_frame(video[5][0], 5, COUNT)
    video.close()
    assert_frame(video[6][0], 6, COUNT)


def test_sparse_ascending_access_decodes_forward(video):
    for i, (frame, _) in enumerate(video[::7]):
        assert_frame(frame, 7 * i, COUNT)
    assert video.seek_count == 0


def test_jump_far_ahead_past_a_keyframe_seeks(video):
    assert_frame(video[0][0], 0, COUNT)
    assert_frame(video[COUNT - 1][0], COUNT - 1, COUNT)
    assert video.seek_count == 1


def test_signal_pickles_without_its_open_decoder(video):
    assert_frame(video[20][0], 20, COUNT)
    copy = pickle.loads(pickle.dumps(video))
    assert_frame(copy[21][0], 21, COUNT)
    assert copy.shape == (48, 64, 3)
    assert_frame(video[21][0], 21, COUNT)
