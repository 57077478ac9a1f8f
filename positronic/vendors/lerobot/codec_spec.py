"""The codec spec: which codec, at which image size, made a dataset, a training run or a checkpoint.

One value, :class:`CodecSpec` (a registered name and an image size), written as one record in three places:

- a LeRobot dataset's ``meta/positronic.json``, under ``"codec"``;
- an experiment's ``run.json``, under ``"codec"``;
- a checkpoint's ``pretrained_model/positronic_codec.json``, the whole file.

The record is ``{"version": 1, "name": "eepose_absolute", "image_size": [width, height]}``. Records written
before it still load (``from_record``) and equal the new record of the same codec and size: a bare import path in
``meta/positronic.json`` (the size is the dataset's camera size), and ``{"codec": <import path>, "image_size":
[width, height]}`` in ``positronic_codec.json`` and ``run.json``. LeRobot never reads these files.

Which codec a command runs with is decided by one rule, :func:`resolve_codec`, for append, verify, train, serve and
``--policy=.act``.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from positronic.vendors.lerobot.codec import (
    Codec,
    CodecMismatchError,
    check_features_match,
    image_size_of,
    image_size_pair,
)
from positronic.vendors.lerobot.codecs import DEFAULT_CODEC, REGISTRY, registered_codec, registered_name
from positronic.vendors.lerobot.lerobot_dataset.features import features_from_info
from positronic.vendors.lerobot.lerobot_dataset.format import POSITRONIC_META_PATH
from positronic.vendors.lerobot.lerobot_dataset.reader import POSITRONIC_CODEC_KEY, read_info, read_positronic_meta

RECORD_VERSION = 1
"""The format version new records carry; a record of a later version is refused (written by a newer release)."""
VERSION_KEY = 'version'
NAME_KEY = 'name'
IMAGE_SIZE_KEY = 'image_size'
LEGACY_NAME_KEY = 'codec'
"""The name's key in records written before the format version (``{"codec": <import path>, "image_size": ...}``)."""
RECORD_FORM = '{"version": 1, "name": "<codec>", "image_size": [width, height]}'


class CodecRecordError(CodecMismatchError):
    """A codec record that is not one of the record forms (the message names the file, the key and the value)."""


@dataclass(frozen=True)
class CodecSpec:
    """Which codec: ``name``, registered (``eepose_absolute``) or, for a codec of your own, its import path; and
    ``image_size`` = (width, height) in pixels of every camera feature."""

    name: str
    image_size: tuple[int, int]

    def __str__(self) -> str:
        return f'{self.name!r} at {self.image_size[0]}x{self.image_size[1]}'

    @classmethod
    def of(cls, codec: Codec) -> 'CodecSpec':
        """The spec of ``codec``. Raises CodecMismatchError when it takes a registered name but is not that
        registered codec (a record of it would be read back as the other one)."""
        name = registered_name(codec.name)
        if name in REGISTRY and registered_codec(name, codec.observation.image_size, 'the codec') != codec:
            raise CodecMismatchError(
                f'codec {codec.name!r} is not the registered codec of that name; give a codec of your own its own '
                'name (its import path)'
            )
        return cls(name, tuple(codec.observation.image_size))

    def to_record(self) -> dict[str, Any]:
        """The JSON record of this spec (see the module docstring)."""
        return {VERSION_KEY: RECORD_VERSION, NAME_KEY: self.name, IMAGE_SIZE_KEY: list(self.image_size)}

    @classmethod
    def from_record(
        cls, record: Any, source: str | Path, features: Mapping[str, Mapping[str, Any]] | None = None
    ) -> 'CodecSpec | None':
        """The spec a record read from the file ``source`` describes; None when it records none (``None``).

        ``features`` (the dataset's or checkpoint's feature declarations) give the image size of a record that has
        none (a bare import path). Raises CodecRecordError naming ``source``, the key and the value otherwise.
        """
        if record is None:
            return None
        if isinstance(record, str):
            return cls(_checked_name(record, source, LEGACY_NAME_KEY), _size_from_features(features, source))
        if not isinstance(record, Mapping):
            raise CodecRecordError(f'{source}: codec record must be {RECORD_FORM}, got {record!r}')
        if VERSION_KEY not in record and LEGACY_NAME_KEY in record:
            name = _checked_name(record[LEGACY_NAME_KEY], source, LEGACY_NAME_KEY)
            if IMAGE_SIZE_KEY not in record:
                return cls(name, _size_from_features(features, source))
            return cls(name, _checked_size(record[IMAGE_SIZE_KEY], source))
        missing = [key for key in (VERSION_KEY, NAME_KEY, IMAGE_SIZE_KEY) if key not in record]
        if missing:
            raise CodecRecordError(f'{source}: codec record lacks {missing}; expected {RECORD_FORM}, got {record!r}')
        version = record[VERSION_KEY]
        if isinstance(version, bool) or not isinstance(version, int) or not 1 <= version <= RECORD_VERSION:
            raise CodecRecordError(
                f'{source}: codec record {VERSION_KEY!r} is {version!r}; this release reads versions 1 to '
                f'{RECORD_VERSION} (a later version was written by a newer positronic-act)'
            )
        return cls(_checked_name(record[NAME_KEY], source, NAME_KEY), _checked_size(record[IMAGE_SIZE_KEY], source))


def _checked_name(name: Any, source: str | Path, key: str) -> str:
    if not isinstance(name, str) or not name:
        raise CodecRecordError(f'{source}: codec {key!r} must be a non-empty string, got {name!r}')
    return registered_name(name)


def _checked_size(size: Any, source: str | Path) -> tuple[int, int]:
    try:
        return image_size_pair(size)
    except ValueError as e:
        raise CodecRecordError(f'{source}: codec {IMAGE_SIZE_KEY!r}: {e}') from None


def _size_from_features(features: Mapping[str, Mapping[str, Any]] | None, source: str | Path) -> tuple[int, int]:
    size = image_size_of(features or {})
    if size is None:
        raise CodecRecordError(
            f'{source}: the codec record has no {IMAGE_SIZE_KEY!r} and the features beside it declare no camera '
            'to take it from'
        )
    return size


def resolve_codec(
    requested: Codec | None,
    recorded: CodecSpec | None,
    features: Mapping[str, Mapping[str, Any]],
    where: str | Path,
) -> Codec:
    """The codec to run with, by one rule: the ``requested`` one (from the command line), which must have the
    ``recorded`` spec when there is one; else the recorded codec, built from the registry; else, when nothing is
    recorded, ``eepose_absolute`` at the image size of ``features``. The codec must then declare exactly the keys
    and shapes of ``features`` (the dataset's or checkpoint's feature declarations, channel-last or policy-style).

    ``where`` is the file that holds (or would hold) the record. Raises CodecMismatchError naming ``where`` and both
    values; UnknownCodecError when the recorded name is not registered (nothing is imported).
    """
    if recorded is None:
        codec = requested if requested is not None else registered_codec(DEFAULT_CODEC, image_size_of(features), where)
    elif requested is None:
        codec = registered_codec(recorded.name, recorded.image_size, where)
    else:
        asked = CodecSpec.of(requested)
        if asked != recorded:
            raise CodecMismatchError(
                f'{where} records codec {recorded}, but codec {asked} was asked for; ask for the recorded codec '
                'and image size, or leave the codec out to use the recorded one'
            )
        codec = requested
    try:
        check_features_match(codec, features, f'the features beside {where}')
    except CodecMismatchError as e:
        size = image_size_of(features)
        if size is None or size == tuple(codec.observation.image_size):
            raise
        raise CodecMismatchError(
            f'{e} (its cameras are {size[0]}x{size[1]}: set the codec image_size to {list(size)})'
        ) from None
    return codec


def dataset_codec(root: str | Path, requested: Codec | None) -> Codec:
    """:func:`resolve_codec` for the LeRobot dataset at ``root``: its ``meta/positronic.json`` record and its
    ``meta/info.json`` features (read directly, so a dataset with an interrupted append can be checked too)."""
    root = Path(root).expanduser().absolute()
    where = root / POSITRONIC_META_PATH
    features = {name: f.declaration() for name, f in features_from_info(read_info(root)['features']).items()}
    record = read_positronic_meta(root).get(POSITRONIC_CODEC_KEY)
    return resolve_codec(requested, CodecSpec.from_record(record, where, features), features, where)
