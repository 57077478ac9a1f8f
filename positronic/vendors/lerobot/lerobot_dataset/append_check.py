"""Whether episodes may be appended to an existing dataset, and with which video encoder settings."""

from collections.abc import Mapping
from typing import Any

from positronic.vendors.lerobot.lerobot_dataset.errors import FeatureSpecError, IncompatibleAppendError
from positronic.vendors.lerobot.lerobot_dataset.features import Feature, parse_feature
from positronic.vendors.lerobot.lerobot_dataset.format import DEFAULT_FEATURES, INFO_PATH
from positronic.vendors.lerobot.lerobot_dataset.reader import POSITRONIC_VIDEO_KEY, DatasetReader
from positronic.vendors.lerobot.lerobot_dataset.video_encode import ENCODINGS_BY_CODEC, H264, VideoEncoding


def _check_features(existing: DatasetReader, user: Mapping[str, Feature]) -> None:
    where = existing.root / INFO_PATH
    theirs = {n: f for n, f in existing.features.items() if n not in DEFAULT_FEATURES}
    if set(user) != set(theirs):
        raise IncompatibleAppendError(
            f'{where}: dataset features are {sorted(theirs)}, got {sorted(user)} '
            f'(missing {sorted(set(theirs) - set(user))}, unexpected {sorted(set(user) - set(theirs))})'
        )
    for name, feature in theirs.items():
        if user[name].declaration() != feature.declaration():
            raise IncompatibleAppendError(
                f'{where}: feature {name!r} is {feature.declaration()} in the dataset, got {user[name].declaration()}'
            )
        try:
            parse_feature(name, feature.to_json())
        except FeatureSpecError as e:
            raise IncompatibleAppendError(f'{where}: this writer cannot add to feature {name!r}: {e}') from e


def _video_encoding(existing: DatasetReader, recorded: Mapping[str, Any], video: VideoEncoding | None) -> VideoEncoding:
    where = existing.root / INFO_PATH
    stored = {
        f.name: (f.info.get('video.codec'), f.info.get('video.pix_fmt'))
        for f in existing.features.values()
        if f.is_video and f.info
    }
    if video is None:
        if recorded.get(POSITRONIC_VIDEO_KEY):
            video = VideoEncoding.from_json(recorded[POSITRONIC_VIDEO_KEY])
        elif stored:
            codec = next(iter(stored.values()))[0]
            if codec not in ENCODINGS_BY_CODEC:
                raise IncompatibleAppendError(
                    f'{where}: videos use codec {codec!r}; pass video=VideoEncoding(...) with an encoder for it'
                )
            video = ENCODINGS_BY_CODEC[codec]
        else:
            video = H264
    for name, (codec, pix_fmt) in stored.items():
        if (codec, pix_fmt) != (video.codec_name, video.pix_fmt):
            raise IncompatibleAppendError(
                f'{where}: video {name!r} is {codec}/{pix_fmt}, '
                f'got encoder {video.encoder!r} ({video.codec_name}/{video.pix_fmt})'
            )
    return video


def check_append(
    existing: DatasetReader,
    user: Mapping[str, Feature],
    fps: int,
    video: VideoEncoding | None,
    recorded: Mapping[str, Any],
) -> VideoEncoding:
    """Refuse (IncompatibleAppendError) unless fps, features and video codec match the dataset.

    ``recorded`` is the dataset's meta/positronic.json content. Returns the encoder settings to use: ``video`` if
    given, else those the dataset recorded, else LeRobot-like settings for the codec its videos use. Whether the
    positronic codec fits is the caller's question (``codec_spec.resolve_codec``), asked before appending.
    """
    if fps != existing.fps:
        raise IncompatibleAppendError(f'{existing.root / INFO_PATH}: dataset fps is {existing.fps}, got fps={fps}')
    _check_features(existing, user)
    return _video_encoding(existing, recorded, video)
