import av
import numpy as np
import pytest

from positronic.vendors.lerobot.lerobot_dataset.errors import FrameTimestampError
from positronic.vendors.lerobot.lerobot_dataset.video_concat import VideoFileAppender
from positronic.vendors.lerobot.lerobot_dataset.video_decode import decode_frames, probe_video_info
from positronic.vendors.lerobot.lerobot_dataset.video_encode import AV1_LEROBOT, H264, encode_episode

from .helpers import FPS, HEIGHT, VIDEO_TOLERANCE, WIDTH, mean_abs_diff, scene

LENGTHS = (20, 25, 15)


@pytest.fixture(scope='module', params=[H264, AV1_LEROBOT], ids=['h264', 'av1'])
def concatenated(request, tmp_path_factory):
    """Three episodes encoded separately and concatenated into one mp4; returns (path, episodes, spans)."""
    path = tmp_path_factory.mktemp('video') / 'file-000.mp4'
    episodes = [scene(n, seed=e) for e, n in enumerate(LENGTHS)]
    appender = VideoFileAppender(path, FPS)
    spans = []
    for frames in episodes:
        encoded = encode_episode(iter(frames), fps=FPS, height=HEIGHT, width=WIDTH, encoding=request.param)
        assert encoded.num_frames == len(frames)
        spans.append(appender.append(encoded))
    appender.close()
    return path, episodes, spans, request.param


def test_episode_spans_are_contiguous_in_frame_time(concatenated):
    _, _, spans, _ = concatenated
    assert spans == [(0.0, 20 / FPS), (20 / FPS, 45 / FPS), (45 / FPS, 60 / FPS)]


def test_frame_times_are_k_over_fps_and_each_episode_starts_on_a_key_frame(concatenated):
    path, _, _, _ = concatenated
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        packets = sorted((p for p in container.demux(stream) if p.size), key=lambda p: p.pts)
        times = np.array([float(p.pts * stream.time_base) for p in packets])
        np.testing.assert_allclose(times, np.arange(60) / FPS, atol=1e-9)
        keys = [p.is_keyframe for p in packets]
        assert keys[0] and keys[20] and keys[45]
        assert sum(keys) == 31  # GOP 2 restarted at each episode (20, 25 and 15 frames)


def test_probe_reports_the_info_lerobot_stores(concatenated):
    path, _, _, encoding = concatenated
    info = probe_video_info(path)
    assert info == {
        'video.height': HEIGHT,
        'video.width': WIDTH,
        'video.codec': encoding.codec_name,
        'video.pix_fmt': 'yuv420p',
        'video.is_depth_map': False,
        'video.fps': FPS,
        'video.channels': 3,
        'has_audio': False,
    }


def test_decoding_an_episode_time_range_returns_its_frames(concatenated):
    path, episodes, spans, _ = concatenated
    from_s = spans[1][0]
    decoded = np.stack(list(decode_frames(path, from_s + np.arange(25) / FPS, episode_index=1)))
    assert decoded.shape == (25, HEIGHT, WIDTH, 3) and decoded.dtype == np.uint8
    assert mean_abs_diff(decoded, episodes[1]) < VIDEO_TOLERANCE
    assert mean_abs_diff(decoded[1:], episodes[1][:-1]) > mean_abs_diff(decoded, episodes[1])


def test_decoding_can_resize(concatenated):
    path, _, spans, _ = concatenated
    frames = list(decode_frames(path, spans[2][0] + np.arange(3) / FPS, size=(24, 32)))
    assert [f.shape for f in frames] == [(24, 32, 3)] * 3


def test_a_time_between_frames_raises_naming_file_episode_and_time(concatenated):
    path, _, spans, _ = concatenated
    query = spans[1][0] + np.array([0.0, 0.5 / FPS])
    with pytest.raises(
        FrameTimestampError, match=rf'{path.name} \(episode 1\): no frame within 0.0001 s of t=0.683333'
    ):
        list(decode_frames(path, query, episode_index=1))


def test_a_time_past_the_end_raises(concatenated):
    path, _, _, _ = concatenated
    with pytest.raises(FrameTimestampError, match='ends before it'):
        list(decode_frames(path, np.array([59 / FPS, 60 / FPS])))


@pytest.mark.parametrize('fps', [7, 15, 60])
def test_concatenation_keeps_exact_frame_times_at_other_rates(tmp_path, fps):
    path = tmp_path / 'file.mp4'
    appender = VideoFileAppender(path, fps)
    for e, n in enumerate((5, 8)):
        appender.append(encode_episode(iter(scene(n, seed=e)), fps=fps, height=HEIGHT, width=WIDTH, encoding=H264))
    appender.close()
    decoded = list(decode_frames(path, np.arange(13) / fps))
    assert len(decoded) == 13
    assert probe_video_info(path)['video.fps'] == fps
