import sys

import pytest

from positronic.vendors.lerobot.codec import CodecMismatchError, UnknownCodecError, image_size_of
from positronic.vendors.lerobot.codecs import (
    DEFAULT_CODEC,
    LEGACY_NAMES,
    REGISTRY,
    eepose_absolute,
    joints_absolute,
    registered_codec,
)

EEPOSE = 'eepose_absolute'
JOINTS = 'joints_absolute'
OLD_EEPOSE = 'positronic.vendors.lerobot.codecs.eepose_absolute'
OLD_JOINTS = 'positronic.vendors.lerobot.codecs.joints_absolute'


def test_the_registry_maps_short_stable_names_to_the_built_in_codecs():
    assert list(REGISTRY.items()) == [(EEPOSE, eepose_absolute), (JOINTS, joints_absolute)]
    assert DEFAULT_CODEC == EEPOSE
    for name in REGISTRY:
        assert registered_codec(name, None, 'meta/positronic.json').name == name


def test_the_import_paths_older_files_record_build_the_same_registered_codecs():
    assert LEGACY_NAMES == {OLD_EEPOSE: EEPOSE, OLD_JOINTS: JOINTS}
    assert registered_codec(OLD_JOINTS, [96, 64], 'run.json') == registered_codec(JOINTS, [96, 64], 'run.json')
    assert registered_codec(OLD_EEPOSE, None, 'meta/positronic.json').name == EEPOSE


def test_a_registered_codec_is_rebuilt_at_the_recorded_image_size():
    codec = registered_codec(JOINTS, [96, 64], 'positronic_codec.json')
    assert codec.name == 'joints_absolute'
    assert image_size_of(codec.features()) == (96, 64)
    assert registered_codec(EEPOSE, (32, 32), 'positronic_codec.json').observation.image_size == (32, 32)


@pytest.mark.parametrize('name', ['this.nothing', 'zen_marker.codec', 'positronic.vendors.lerobot.codecs', 42, ['a']])
def test_an_unregistered_name_is_refused_naming_the_file_and_the_registered_names_without_importing_it(
    name, tmp_path, monkeypatch, capsys
):
    marker = tmp_path / 'imported'
    (tmp_path / 'zen_marker.py').write_text(f'open({str(marker)!r}, "w").close()\ncodec = None\n')
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(UnknownCodecError) as info:
        registered_codec(name, [32, 32], '/data/ckpt/positronic_codec.json')
    message = str(info.value)
    assert message.startswith(f'/data/ckpt/positronic_codec.json records codec {name!r}, which is not a registered')
    assert '(registered: eepose_absolute, joints_absolute)' in message and '--codec=@' in message
    assert not marker.exists() and 'zen_marker' not in sys.modules
    assert 'this' not in sys.modules and capsys.readouterr().out == ''


@pytest.mark.parametrize('size', [[31, 32], [0, 0], 'big', [32, None], {'w': 32}])
def test_a_bad_recorded_image_size_is_refused_naming_the_file(size):
    with pytest.raises(CodecMismatchError, match=r'^run/positronic_codec\.json: image_size must be'):
        registered_codec(EEPOSE, size, 'run/positronic_codec.json')
