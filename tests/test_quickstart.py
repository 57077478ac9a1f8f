"""positronic-quickstart: the README's main job runs every stage's real command, end to end, at a tiny scale."""

import contextlib
import json
import re
from pathlib import Path

import pytest

from positronic import quickstart
from positronic.command import DATA_ERROR_EXIT_CODE, USAGE_ERROR_EXIT_CODE
from positronic.data_collection import STATIC_BLEND, STATIC_DWELL, STATIC_MISS_RATE, STATIC_NOISE, STATIC_NOISE_FADE
from positronic.dataset import LocalDataset
from positronic.vendors.lerobot.lerobot_dataset import DatasetReader
from positronic.vendors.lerobot.training.checkpoint import list_checkpoints
from tests.command_lines import reported_error


@pytest.mark.slow
def test_the_loop_records_converts_trains_serves_and_evaluates(tmp_path, capfd):
    quickstart.main(
        [
            f'--workdir={tmp_path}',
            '--num_episodes=2',
            '--camera_size=[96,72]',
            '--command_noise_m=0.01',
            '--command_noise_fade_s=0.5',
            '--expert_blend=0.25',
            '--grasp_miss_rate=1',
            '--grasp_dwell_s=0.2',
            '--image_size=64',
            '--num_train_steps=4',
            '--curve_points=1',
            '--codec=joints_absolute',
            '--actions_per_chunk=2',
            '--batch_size=4',
            '--chunk_size=5',
            '--dim_model=32',
            '--dropout=0.0',
            '--precision=bf16',
            '--train_processes=2',
            '--eval_iterations=1',
            '--train_eval_iterations=2',
            '--simulation_time=2',
            '--candidates=2',
            '--train_seed=5',
            '--select_iterations=1',
        ]
    )
    (run_dir,) = tmp_path.iterdir()
    raw = LocalDataset(run_dir / 'raw')
    statics = [
        (
            episode[STATIC_NOISE],
            episode[STATIC_NOISE_FADE],
            episode[STATIC_BLEND],
            episode[STATIC_MISS_RATE],
            episode[STATIC_DWELL],
        )
        for episode in raw
    ]
    assert statics == [(0.01, 0.5, 0.25, 1.0, 0.2)] * 2
    assert DatasetReader(run_dir / 'lerobot').total_episodes == 2
    assert DatasetReader(run_dir / 'lerobot').info['features']['observation.state']['names'][0] == 'q0'
    experiment_dir = run_dir / 'checkpoints' / quickstart.EXPERIMENT
    assert list(list_checkpoints(experiment_dir)) == [2, 4]
    trained = json.loads((experiment_dir / 'run.json').read_text())
    assert trained['world_size'] == 2 and trained['precision'] == 'bf16' and trained['policy']['dropout'] == 0.0
    summary = json.loads((run_dir / 'evaluation' / 'summary.json').read_text())
    assert len(summary['iterations']) == 1
    assert summary['run']['settings']['actions_per_chunk'] == 2
    assert json.loads((run_dir / 'evaluation-2' / 'summary.json').read_text())['run']['policy']['server.step'] == 2
    assert len(LocalDataset(run_dir / 'evaluation')) == 1
    run = json.loads((run_dir / quickstart.RUN_SUMMARY).read_text())
    assert run['total'] == 1 and run['final_loss']['step'] == 4
    assert run['host']['cpu'] and run['host']['cpu_count'] >= 1 and run['host']['torch'].startswith('2.')
    training_seeds = json.loads((run_dir / quickstart.TRAINING_SEEDS_DIR / 'summary.json').read_text())
    assert [it['seed'] for it in training_seeds['iterations']] == [0, 1]  # the demonstration seeds
    assert run['training_seeds']['total'] == 2
    assert [c['train_seed'] for c in run['selection']['candidates']] == [5, 6]
    assert trained['seed'] == run['selection']['chosen_train_seed']  # the kept candidate is the served experiment
    assert all(
        len(json.loads((run_dir / f'validation-seed-{k}' / 'summary.json').read_text())['iterations']) == 1
        for k in (5, 6)
    )
    assert [point['step'] for point in run['curve']] == [2, 4]
    assert 0 < run['curve'][0]['train_s'] < run['curve'][1]['train_s']
    assert (run_dir / 'evaluation-2' / 'summary.json').exists() and (run_dir / 'success_curve.png').exists()
    out = capfd.readouterr().out
    assert 'success rate' in out and str(run_dir / 'evaluation') in out


def test_evaluation_seeds_must_not_overlap_the_demonstration_seeds(tmp_path):
    exit_code, line = reported_error(
        quickstart.main, [f'--workdir={tmp_path}', '--num_episodes=10', '--seed=0', '--eval_seed=5']
    )
    assert exit_code == USAGE_ERROR_EXIT_CODE and '--eval_seed=5: evaluation seeds 5..' in line
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize(
    ('flag', 'message'),
    [
        ('--codec=delta_pose', "codec='delta_pose': expected one of eepose_absolute, joints_absolute"),
        ('--actions_per_chunk=16', r'actions_per_chunk=16: expected 1..chunk_size \(15\)'),
        ('--curve_points=2', 'curve_points=2: expected >= 0 and dividing num_train_steps'),
        ('--precision=fp8', "precision='fp8': expected one of auto, fp32, bf16, fp16"),
        ('--lr_schedule=linear', "lr_schedule='linear': expected one of constant, cosine"),
        ('--train_processes=0', 'train_processes=0: expected an integer >= 1'),
        ('--train_eval_iterations=13', r'train_eval_iterations=13: expected 0..num_episodes \(12\)'),
        ('--num_train_steps=0', 'num_train_steps=0: expected an integer >= 1'),
        ('--num_episodes=-3', 'num_episodes=-3: expected an integer >= 1'),
        ('--temporal_ensemble_coeff=nan', "temporal_ensemble_coeff='nan': expected a finite number"),
        ('--temporal_ensemble_coeff=0.01 --actions_per_chunk=5', 'temporal_ensemble_coeff=0.01 queries every tick'),
        ('--seed=-1', 'seed=-1: expected an integer >= 0'),
        ('--train_seed=-2', 'train_seed=-2: expected an integer >= 0'),
        ('--eval_seed=-5', 'eval_seed=-5: expected an integer >= 0'),
        ('--eval_iterations=0', 'eval_iterations=0: expected an integer >= 1'),
        ('--fps=0', 'fps=0: expected an integer >= 1'),
        ('--simulation_time=0', 'simulation_time=0: expected a positive number of seconds'),
        ('--simulation_time=abc', "simulation_time='abc': expected a positive number of seconds"),
        ('--camera_size=[95,96]', r'camera_size must be \[width,height\] with even positive integers'),
        ('--command_noise_m=0.1', r'command_noise_m must be in \[0, 0.05\] metres, got 0.1'),
        ('--command_noise_fade_s=-1', 'command_noise_fade_s must be >= 0 seconds, got -1'),
        ('--expert_blend=0.6', r'expert_blend must be a number in \[0, 0.5\], got 0.6'),
        ('--grasp_miss_rate=-0.1', r'grasp_miss_rate must be a number in \[0, 1\]'),
        ('--grasp_dwell_s=-1', r'grasp_dwell_s must be a number of seconds in \[0, 2.0\], got -1'),
        ('--candidates=0', 'candidates=0: expected an integer >= 1'),
        ('--candidates=2 --select_iterations=0', 'select_iterations=0: expected an integer >= 1'),
        (
            '--candidates=2 --select_seed=10002',
            r'select_seed=10002: validation seeds 10002..10051 overlap the evaluation',
        ),
        (
            '--candidates=2 --select_seed=5',
            r'select_seed=5: validation seeds 5..54 overlap the demonstration seeds 0..11',
        ),
    ],
)
def test_bad_flags_are_refused_before_anything_runs(tmp_path, flag, message):
    exit_code, line = reported_error(
        quickstart.main, [f'--workdir={tmp_path}', '--num_train_steps=1000', *flag.split()]
    )
    assert exit_code == USAGE_ERROR_EXIT_CODE and re.search(f'positronic-quickstart: error: --{message}', line)
    assert not any(tmp_path.iterdir())


def test_a_stage_that_fails_stops_the_run_with_its_command(tmp_path, monkeypatch):
    monkeypatch.setattr(quickstart, 'console_script', lambda name: 'false')
    exit_code, line = reported_error(quickstart.main, [f'--workdir={tmp_path}'])
    assert exit_code == DATA_ERROR_EXIT_CODE and re.search(r'error: stage .*record.* failed with exit code 1', line)


def stage_commands(tmp_path, monkeypatch, flags: list[str], outputs=None) -> list[list[str]]:
    """The commands quickstart runs for ``flags``, in order (the stages record their argv instead of running;
    ``outputs(command, commands)``, when given, writes what a stage would)."""
    commands = []

    def run_stage(index, total, title, argv, env=None):
        commands.append([Path(argv[0]).name, *argv[1:]])
        if outputs is not None:
            outputs(commands[-1], commands)
        return 1.0

    @contextlib.contextmanager
    def running_server(argv, host, port, log_path):
        commands.append([Path(argv[0]).name, *argv[1:]])
        yield ['50', '100']

    monkeypatch.setattr(quickstart, 'run_stage', run_stage)
    monkeypatch.setattr(quickstart, 'running_server', running_server)
    monkeypatch.setattr(quickstart, 'report', lambda *args: None)
    quickstart.main([f'--workdir={tmp_path}', *flags])
    return commands


def test_the_stages_run_in_order_and_the_loop_alone_sets_the_actions_per_query(tmp_path, monkeypatch):
    flags = ['--chunk_size=10', '--actions_per_chunk=3', '--num_train_steps=100', '--curve_points=1']
    commands = stage_commands(tmp_path, monkeypatch, [*flags, '--train_eval_iterations=2'])
    names = [command[0] for command in commands]
    assert names == [
        'positronic-data-collection',
        'positronic-to-lerobot',
        'positronic-lerobot-train',
        'positronic-lerobot-server',
        *['positronic-inference'] * 3,  # final checkpoint, training seeds, success curve
    ]
    train = commands[2]
    assert '--policy.chunk_size=10' in train and '--policy.n_action_steps=10' in train  # whole chunks answered
    final, training_seeds, curve = commands[4:]
    assert all('--actions_per_chunk=3' in command for command in (final, training_seeds, curve))
    assert '--seed=10000' in final and '--policy.model_id=50' not in final
    assert '--seed=0' in training_seeds and '--driver.num_iterations=2' in training_seeds
    assert '--policy.model_id=50' in curve and '--save_freq=50' in train
    assert '--lr_schedule=constant' in train


def test_the_learning_rate_schedule_reaches_the_trainer(tmp_path, monkeypatch):
    commands = stage_commands(tmp_path, monkeypatch, ['--lr_schedule=cosine'])
    (train,) = [c for c in commands if c[0] == 'positronic-lerobot-train']
    assert '--lr_schedule=cosine' in train


def test_the_training_seed_reaches_the_trainer_and_not_the_recorder(tmp_path, monkeypatch):
    commands = stage_commands(tmp_path, monkeypatch, ['--train_seed=7'])
    (record,) = [c for c in commands if c[0] == 'positronic-data-collection']
    (train,) = [c for c in commands if c[0] == 'positronic-lerobot-train']
    assert '--seed=7' in train and '--seed=0' in record


def test_temporal_ensembling_is_passed_to_every_evaluation(tmp_path, monkeypatch):
    flags = ['--temporal_ensemble_coeff=0.01', '--num_train_steps=100', '--curve_points=1', '--train_eval_iterations=2']
    evaluations = [c for c in stage_commands(tmp_path, monkeypatch, flags) if c[0] == 'positronic-inference']
    assert len(evaluations) == 3
    assert all(
        '--temporal_ensemble_coeff=0.01' in c and not any('actions_per_chunk' in f for f in c) for c in evaluations
    )


def flag(argv: list[str], name: str) -> str:
    """The value of ``--name=`` in ``argv``."""
    return next(a.split('=', 1)[1] for a in argv if a.startswith(f'--{name}='))


def test_candidates_are_trained_with_successive_seeds_validated_and_the_best_kept(tmp_path, monkeypatch):
    scores = {3: 30, 4: 41, 5: 41}  # trainer seed -> validation successes of 50

    def outputs(command, commands):
        if command[0] == 'positronic-lerobot-train':  # an experiment that names its seed
            experiment = Path(flag(command, 'output_dir')) / flag(command, 'exp_name')
            experiment.mkdir(parents=True)
            (experiment / 'seed').write_text(flag(command, 'seed'))
        elif command[0] == 'positronic-inference' and flag(command, 'seed') == '20000':
            served = int(Path(flag(commands[-2], 'checkpoints_dir'), 'seed').read_text())
            output = Path(flag(command, 'output_dir'))
            output.mkdir(parents=True)
            (output / 'summary.json').write_text(json.dumps({'successes': scores[served], 'total': 50}))

    commands = stage_commands(tmp_path, monkeypatch, ['--candidates=3', '--train_seed=3'], outputs)

    candidate = ['positronic-lerobot-train', 'positronic-lerobot-server', 'positronic-inference']  # train, validate
    first = ['positronic-data-collection', 'positronic-to-lerobot']
    assert [c[0] for c in commands] == [*first, *candidate * 3, *candidate[1:]]  # then serve the kept one, evaluate
    (run_dir,) = tmp_path.iterdir()
    trains = [c for c in commands if c[0] == 'positronic-lerobot-train']
    assert [flag(c, 'seed') for c in trains] == ['3', '4', '5']
    assert all(flag(c, 'cache_dir') == str(run_dir / 'checkpoints' / 'frame_cache') for c in trains)
    validations = [c for c in commands if c[0] == 'positronic-inference'][:3]
    assert all(flag(c, 'seed') == '20000' and flag(c, 'driver.num_iterations') == '50' for c in validations)
    # seeds 4 and 5 tie at 41/50: the first is kept, moved to the experiment the final evaluation serves
    experiment = run_dir / 'checkpoints' / quickstart.EXPERIMENT
    assert (experiment / 'seed').read_text() == '4'
    assert flag(commands[-2], 'checkpoints_dir') == str(experiment)
    assert flag(commands[-1], 'seed') == '10000'
    selection = json.loads((run_dir / quickstart.SELECTION_JSON).read_text())
    assert selection['chosen_train_seed'] == 4
    assert [c['successes'] for c in selection['candidates']] == [30, 41, 41]
    assert sorted(p.name for p in (run_dir / 'checkpoints' / 'candidates').iterdir()) == ['seed-3', 'seed-4', 'seed-5']
    assert not (run_dir / 'checkpoints' / 'candidates' / 'seed-4' / quickstart.EXPERIMENT).exists()
