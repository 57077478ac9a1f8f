"""docker/docker-compose.yml: the documented services run the project's console scripts with valid flags.

No Docker engine runs here, so the file is parsed and each service is checked against the package itself.
"""

import shlex
from pathlib import Path

import pytest
import yaml

from tests.command_lines import check_command_line, console_scripts

COMPOSE = Path(__file__).resolve().parents[2] / 'docker' / 'docker-compose.yml'
SERVICES = {'positronic-to-lerobot', 'lerobot-train', 'lerobot-server'}

DOCUMENTED_RUNS = [
    'positronic-to-lerobot convert --dataset.dataset.path=~/datasets/my_task_raw '
    '--dataset.codec=@positronic.vendors.lerobot.codecs.eepose_absolute '
    '--output_dir=~/datasets/lerobot/my_task --fps=30',
    'lerobot-train --input_path=~/datasets/lerobot/my_task --exp_name=my_task_v1 --output_dir=~/checkpoints/lerobot/ '
    '--num_train_steps=50000 --save_freq=10000',
    'lerobot-server --checkpoints_dir=~/checkpoints/lerobot/my_task_v1/ '
    '--codec=@positronic.vendors.lerobot.codecs.eepose_absolute',
]
"""Arguments after ``docker compose run --rm [--service-ports]`` as the docs give them."""


@pytest.fixture(scope='module')
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def test_the_documented_services_exist(compose):
    assert set(compose['services']) >= SERVICES


@pytest.mark.parametrize('service', sorted(SERVICES))
def test_each_service_runs_a_console_script_of_the_package(compose, service):
    assert compose['services'][service]['entrypoint'][0] in console_scripts()


@pytest.mark.parametrize('service', sorted(SERVICES))
def test_datasets_and_checkpoints_are_mounted_at_the_same_paths(compose, service):
    spec = compose['services'][service]
    mounts = {tuple(v.split(':')[:2]) for v in spec['volumes']}
    assert ('${HOME}/datasets', '${HOME}/datasets') in mounts
    assert ('${HOME}/checkpoints', '${HOME}/checkpoints') in mounts
    assert spec['environment']['HOME'] == '${HOME}'


def test_wandb_key_comes_from_an_optional_env_file(compose):
    for service in SERVICES:
        env_files = compose['services'][service]['env_file']
        assert {'path': '.env.wandb', 'required': False} in env_files


def test_the_server_publishes_port_8000_on_all_interfaces(compose):
    server = compose['services']['lerobot-server']
    assert '8000:8000' in server['ports']
    entry = server['entrypoint']
    assert '--port=8000' in entry and '--host=0.0.0.0' in entry


def test_the_image_is_built_from_the_repository_dockerfile(compose):
    for service in SERVICES:
        build = compose['services'][service]['build']
        assert (COMPOSE.parent / build['context'] / build['dockerfile']).is_file()


@pytest.mark.parametrize('run', DOCUMENTED_RUNS, ids=lambda r: r.split()[0])
def test_documented_compose_runs_resolve_to_valid_commands(compose, run):
    service, *args = shlex.split(run)
    entrypoint = compose['services'][service]['entrypoint']
    check_command_line(shlex.join([*entrypoint, *args]))
