"""The codec spec: its record (new and old forms) and the one rule every command resolves its codec by."""

import contextlib
import dataclasses
import io
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from positronic.vendors.lerobot.codec import Codec, CodecMismatchError, UnknownCodecError
from positronic.vendors.lerobot.codec_spec import CodecRecordError, CodecSpec, resolve_codec
from positronic.vendors.lerobot.codecs import REGISTRY
from positronic.vendors.lerobot.conversion.to_lerobot import main as to_lerobot
from positronic.vendors.lerobot.lerobot_dataset import DatasetReader
from positronic.vendors.lerobot.serving.policy import LocalACTPolicy
from positronic.vendors.lerobot.serving.server import CheckpointSource
from positronic.vendors.lerobot.training.checkpoint import list_checkpoints, read_codec_record
from positronic.vendors.lerobot.training.train import train
from tests.raw_episodes import write_dataset

from .tiny_act import write_tiny_experiment
from .training.test_train import TINY_ACT

SIDE = 32
NEW_RECORD = '{"version": 1, "name": "eepose_absolute", "image_size": [32, 32]}'
OLD_DATASET_RECORD = '"positronic.vendors.lerobot.codecs.eepose_absolute"'
"""``meta/positronic.json``'s ``codec`` as datasets written before the spec record it: the config's import path."""
OLD_CHECKPOINT_RECORD = '{"codec": "positronic.vendors.lerobot.codecs.eepose_absolute", "image_size": [32, 32]}'
"""``positronic_codec.json`` (and ``run.json``'s ``codec``) as written before the spec."""


def codec(name: str, size: int | list[int]) -> Codec:
    return REGISTRY[name].override(image_size=size).instantiate()


def dataset_features(width: int, height: int) -> dict:
    camera = {'dtype': 'video', 'shape': [height, width, 3], 'names': ['height', 'width', 'channels']}
    return {
        'observation.state': {'dtype': 'float32', 'shape': [8], 'names': None},
        'observation.images.left': camera,
        'observation.images.side': camera,
        'action': {'dtype': 'float32', 'shape': [8], 'names': None},
    }


def policy_features(width: int, height: int) -> dict:
    camera = {'type': 'VISUAL', 'shape': [3, height, width]}
    return {
        'observation.state': {'type': 'STATE', 'shape': [8]},
        'observation.images.left': camera,
        'observation.images.side': camera,
        'action': {'type': 'ACTION', 'shape': [8]},
    }


# ------------------------------------------------------------------------------------------------------ the record


@pytest.mark.parametrize(
    'spec',
    [CodecSpec('eepose_absolute', (480, 480)), CodecSpec('joints_absolute', (96, 64)), CodecSpec('my.ee', (2, 4))],
)
def test_a_spec_round_trips_through_its_json_record(spec):
    assert CodecSpec.from_record(json.loads(json.dumps(spec.to_record())), 'positronic_codec.json') == spec


def test_the_record_is_the_registered_name_the_image_size_and_the_format_version():
    spec = CodecSpec.of(codec('joints_absolute', [96, 64]))
    assert spec == CodecSpec('joints_absolute', (96, 64)) and str(spec) == "'joints_absolute' at 96x64"
    assert spec.to_record() == {'version': 1, 'name': 'joints_absolute', 'image_size': [96, 64]}
    assert CodecSpec.from_record(json.loads(NEW_RECORD), 'meta/positronic.json') == CodecSpec.of(
        codec('eepose_absolute', 32)
    )


@pytest.mark.parametrize(
    'old, features',
    [
        (OLD_DATASET_RECORD, dataset_features(32, 32)),
        (OLD_CHECKPOINT_RECORD, None),
        ('{"codec": "positronic.vendors.lerobot.codecs.eepose_absolute"}', policy_features(32, 32)),
    ],
    ids=['dataset-bare-path', 'checkpoint-and-run-json', 'checkpoint-without-size'],
)
def test_old_records_load_and_equal_the_new_record_of_the_same_codec_and_size(old, features):
    spec = CodecSpec.from_record(json.loads(old), 'old.json', features)
    assert spec == CodecSpec.from_record(json.loads(NEW_RECORD), 'new.json') == CodecSpec('eepose_absolute', (32, 32))
    assert spec.to_record() == json.loads(NEW_RECORD)


def test_an_old_bare_path_takes_its_image_size_from_the_dataset_cameras():
    old = json.loads('"positronic.vendors.lerobot.codecs.joints_absolute"')
    assert CodecSpec.from_record(old, 'meta/positronic.json', dataset_features(96, 64)) == CodecSpec(
        'joints_absolute', (96, 64)
    )
    with pytest.raises(CodecRecordError, match=r"^meta/positronic\.json: the codec record has no 'image_size'"):
        CodecSpec.from_record(old, 'meta/positronic.json', {'action': {'shape': [8]}})


def test_an_old_record_of_your_own_codec_keeps_its_name():
    old = json.loads('{"codec": "my_robot.codecs.joints_wrist", "image_size": [224, 224]}')
    assert CodecSpec.from_record(old, 'positronic_codec.json') == CodecSpec('my_robot.codecs.joints_wrist', (224, 224))


def test_nothing_recorded_is_none():
    assert CodecSpec.from_record(None, 'meta/positronic.json') is None


def test_a_record_of_a_later_format_version_is_refused_naming_the_file():
    record = {'version': 2, 'name': 'eepose_absolute', 'image_size': [32, 32]}
    with pytest.raises(CodecRecordError, match=r"^ckpt/positronic_codec\.json: codec record 'version' is 2; .*newer"):
        CodecSpec.from_record(record, 'ckpt/positronic_codec.json')


@pytest.mark.parametrize(
    'record, named',
    [
        (42, 'codec record must be {"version": 1, "name": "<codec>", "image_size": [width, height]}, got 42'),
        ({'version': 1, 'name': 'eepose_absolute'}, "codec record lacks ['image_size']"),
        ({'version': 1, 'name': '', 'image_size': [32, 32]}, "codec 'name' must be a non-empty string, got ''"),
        ({'version': 1, 'name': 'eepose_absolute', 'image_size': [31, 32]}, "codec 'image_size': image_size must be"),
        ({'version': '1', 'name': 'eepose_absolute', 'image_size': [32, 32]}, "'version' is '1'"),
        ({'codec': 7, 'image_size': [32, 32]}, "codec 'codec' must be a non-empty string, got 7"),
        ({}, "codec record lacks ['version', 'name', 'image_size']"),
    ],
)
def test_a_malformed_record_is_refused_naming_the_file_the_key_and_the_value(record, named):
    with pytest.raises(CodecRecordError) as info:
        CodecSpec.from_record(record, '/runs/exp/run.json')
    assert str(info.value).startswith('/runs/exp/run.json: ') and named in str(info.value)
    assert isinstance(info.value, CodecMismatchError)


def test_a_codec_of_your_own_may_not_take_a_registered_name():
    mine = dataclasses.replace(
        codec('eepose_absolute', 32),
        action=dataclasses.replace(codec('eepose_absolute', 32).action, grip_key='my_grip'),
    )
    with pytest.raises(CodecMismatchError, match="codec 'eepose_absolute' is not the registered codec of that name"):
        CodecSpec.of(mine)
    assert CodecSpec.of(dataclasses.replace(mine, name='my_robot.codecs.ee')) == CodecSpec(
        'my_robot.codecs.ee', (32, 32)
    )


# -------------------------------------------------------------------------------------------------------- the rule


def test_without_a_record_or_a_request_eepose_absolute_runs_at_the_features_image_size():
    chosen = resolve_codec(None, None, dataset_features(96, 64), 'ds/meta/positronic.json')
    assert chosen == codec('eepose_absolute', [96, 64])


def test_without_a_record_the_requested_codec_runs_when_it_gives_the_features():
    asked = codec('joints_absolute', 32)
    assert resolve_codec(asked, None, policy_features(32, 32), 'ckpt/positronic_codec.json') is asked
    with pytest.raises(CodecMismatchError, match=r'cameras are 32x32: set the codec image_size to \[32, 32\]'):
        resolve_codec(codec('joints_absolute', 64), None, policy_features(32, 32), 'ckpt/positronic_codec.json')


def test_the_recorded_codec_runs_when_none_is_requested_and_a_requested_one_must_equal_it():
    recorded = CodecSpec('joints_absolute', (32, 32))
    assert resolve_codec(None, recorded, dataset_features(32, 32), 'm.json') == codec('joints_absolute', 32)
    asked = codec('joints_absolute', 32)
    assert resolve_codec(asked, recorded, dataset_features(32, 32), 'm.json') is asked
    with pytest.raises(CodecMismatchError) as info:
        resolve_codec(codec('eepose_absolute', 32), recorded, dataset_features(32, 32), 'ds/meta/positronic.json')
    assert str(info.value).startswith(
        "ds/meta/positronic.json records codec 'joints_absolute' at 32x32, but codec 'eepose_absolute' at 32x32 was "
        'asked for; '
    )


def test_a_recorded_codec_that_does_not_give_the_features_is_refused():
    with pytest.raises(
        CodecMismatchError, match=r"^codec 'eepose_absolute' does not match the features beside m\.json"
    ):
        resolve_codec(None, CodecSpec('eepose_absolute', (64, 64)), dataset_features(32, 32), 'm.json')


def test_an_unregistered_recorded_name_needs_that_codec_requested():
    recorded = CodecSpec('my_robot.codecs.ee', (32, 32))
    with pytest.raises(UnknownCodecError, match=r"^m\.json records codec 'my_robot\.codecs\.ee', which is not"):
        resolve_codec(None, recorded, dataset_features(32, 32), 'm.json')
    mine = dataclasses.replace(codec('eepose_absolute', 32), name='my_robot.codecs.ee')
    assert resolve_codec(mine, recorded, dataset_features(32, 32), 'm.json') is mine


# ------------------------------------------------------------------------------------------ every caller, one rule


@pytest.fixture(scope='module')
def converted(tmp_path_factory) -> tuple[Path, Path]:
    """A raw dataset (one 1 s episode) and its LeRobot conversion at 32x32, 15 fps, recording eepose_absolute."""
    root = tmp_path_factory.mktemp('spec')
    raw = write_dataset(root / 'raw', num_episodes=1)
    to_lerobot(['convert', f'--dataset.dataset.path={raw}', f'--output_dir={root / "lerobot"}', '--fps=15',
                f'--dataset.codec.image_size={SIDE}'])  # fmt: skip
    return raw, root / 'lerobot'


@pytest.fixture(scope='module')
def experiment(tmp_path_factory) -> Path:
    return write_tiny_experiment(tmp_path_factory.mktemp('spec_exp') / 'exp', steps=(10,), image_side=SIDE)


def _dataset_record(target: Path, record: str | None) -> Path:
    meta = target / 'meta' / 'positronic.json'
    if record is None:
        meta.unlink()  # as LeRobot writes datasets
    else:
        meta.write_text(json.dumps({**json.loads(meta.read_text()), 'codec': json.loads(record)}))
    return meta


def _checkpoint_record(target: Path, record: str | None) -> Path:
    path = list_checkpoints(target)[10] / 'positronic_codec.json'
    if record is None:
        path.unlink()  # as LeRobot's trainer writes checkpoints
    else:
        path.write_text(record)
    return path


def _cli(argv: list[str]) -> str | None:
    """Run ``positronic-to-lerobot``: None when it succeeds, else its one-line error."""
    stderr = io.StringIO()
    try:
        with contextlib.redirect_stderr(stderr):
            to_lerobot(argv)
    except SystemExit:
        return stderr.getvalue().strip().splitlines()[-1]
    return None


def _codec_flags(prefix: str, asked: tuple[str, int] | None) -> list[str]:
    if asked is None:
        return []
    name, size = asked
    return [f'--{prefix}=@positronic.vendors.lerobot.codecs.{name}', f'--{prefix}.image_size={size}']


def run_append(work: Path, raw: Path, target: Path, asked: tuple[str, int] | None) -> str:
    raw = write_dataset(work / 'new_raw', num_episodes=1)  # episodes not in the dataset yet: append skips known ones
    before = DatasetReader(target).total_episodes
    error = _cli(['append', f'--dataset.dataset.path={raw}', f'--output_dir={target}', '--fps=15',
                  *_codec_flags('dataset.codec', asked)])  # fmt: skip
    if error is None:
        assert DatasetReader(target).total_episodes == before + 1
    return error or f'ran with {CodecSpec.of(codec(*asked))}'


def run_verify(work: Path, raw: Path, target: Path, asked: tuple[str, int] | None) -> str:
    error = _cli(['verify', f'--dataset.dataset.path={raw}', f'--output_dir={target}',
                  *_codec_flags('dataset.codec', asked)])  # fmt: skip
    return error or f'ran with {CodecSpec.of(codec(*asked))}'


def run_train(work: Path, raw: Path, target: Path, asked: tuple[str, int] | None) -> str:
    settings = {**TINY_ACT, 'num_train_steps': 1, 'save_freq': 1, 'batch_size': 2, 'num_workers': 0}
    try:
        experiment = train(
            input_path=str(target),
            exp_name='exp',
            output_dir=str(work / 'runs'),
            codec=asked and codec(*asked),
            **settings,
        )
    except CodecMismatchError as e:
        return str(e)
    return f'ran with {CodecSpec.from_record(read_codec_record(list_checkpoints(experiment)[1]), "checkpoint")}'


def run_serve(work: Path, raw: Path, target: Path, asked: tuple[str, int] | None) -> str:
    source = CheckpointSource(target, codec=asked and codec(*asked), device='cpu')
    try:
        source.check()
        model = source.load(source.resolve(None))
    except CodecMismatchError as e:
        return str(e)
    model.unload()
    return f'ran with {CodecSpec.of(model.runner.codec)}'


def run_act_policy(work: Path, raw: Path, target: Path, asked: tuple[str, int] | None) -> str:
    try:
        policy = LocalACTPolicy.load(target, None, asked and codec(*asked), device='cpu')
    except CodecMismatchError as e:
        return str(e)
    policy.close()
    return f'ran with {CodecSpec.of(policy.runner.codec)}'


CALLERS: dict[str, tuple[Callable, Callable, str]] = {
    'append': (run_append, _dataset_record, OLD_DATASET_RECORD),
    'verify': (run_verify, _dataset_record, OLD_DATASET_RECORD),
    'train': (run_train, _dataset_record, OLD_DATASET_RECORD),
    'serve': (run_serve, _checkpoint_record, OLD_CHECKPOINT_RECORD),
    '--policy=.act': (run_act_policy, _checkpoint_record, OLD_CHECKPOINT_RECORD),
}
"""Caller -> (run it with a requested codec, set the record its input holds, the old record form of that file)."""
CASES = {
    'other name': ('new', ('joints_absolute', SIDE), "but codec 'joints_absolute' at 32x32 was asked for"),
    'other size': ('new', ('eepose_absolute', 64), "but codec 'eepose_absolute' at 64x64 was asked for"),
    'old record, other name': ('old', ('joints_absolute', SIDE), "but codec 'joints_absolute' at 32x32 was asked for"),
    'old record, same codec': ('old', ('eepose_absolute', SIDE), "ran with 'eepose_absolute' at 32x32"),
    'nothing recorded': (None, ('eepose_absolute', SIDE), "ran with 'eepose_absolute' at 32x32"),
    'nothing recorded or asked': (None, None, "ran with 'eepose_absolute' at 32x32"),
}
"""Case -> (the record: new form, old form or none; the codec asked for: (name, image side) or none; the outcome)."""


@pytest.fixture(autouse=True)
def one_torch_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


ASK_ALWAYS = ('append', 'verify')
"""Callers whose codec flag has a default (--dataset.codec), so they always ask for a codec."""


@pytest.mark.parametrize(
    'caller, case',
    [(caller, case) for caller in CALLERS for case in CASES if CASES[case][1] or caller not in ASK_ALWAYS],
)
def test_every_caller_resolves_its_codec_by_the_same_rule(caller, case, converted, experiment, tmp_path):
    run, set_record, old_record = CALLERS[caller]
    form, asked, outcome = CASES[case]
    raw, dataset = converted
    target = tmp_path / 'target'
    shutil.copytree(dataset if set_record is _dataset_record else experiment, target, symlinks=True)
    record_file = set_record(target, {'new': NEW_RECORD, 'old': old_record, None: None}[form])
    result = run(tmp_path, raw, target, asked)
    assert outcome in result, result
    if 'asked for' in outcome:
        assert f"{record_file} records codec 'eepose_absolute' at 32x32, but codec " in result
