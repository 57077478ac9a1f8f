"""positronic.command: the runner every console script uses, on small configs of its own."""

import errno
from pathlib import Path

import configuronic as cfn
import pytest

from positronic.command import (
    DATA_ERROR_EXIT_CODE,
    INTERRUPTED_EXIT_CODE,
    USAGE_ERROR_EXIT_CODE,
    DataError,
    UsageError,
    run_command,
    writing_to,
)
from tests.command_lines import reported_error

PROG = 'demo'


class SourceMissingError(Exception):
    """A command's own data error type, declared to the runner."""


@cfn.config(size=2)
def part(size: int) -> int:
    if size < 0:
        raise UsageError(f'size must be >= 0, got {size}')
    return size


@cfn.config(part=part, mode='fast')
def job(path: str, part: int, mode: str) -> None:
    """Run the demo job on ``path``."""
    if mode == 'bug':
        raise RuntimeError('a bug, not a user error')
    if mode == 'interrupt':
        raise KeyboardInterrupt
    if not Path(path).exists():
        raise SourceMissingError(f'{path} does not exist')
    print(f'ran {path} with {part}')


def run(argv: list[str]) -> None:
    run_command(PROG, {'job': job}, argv, data_errors=(SourceMissingError,))


@pytest.mark.parametrize(
    'argv, code, line',
    [
        (
            ['job', '--path=/x', '--part.colour=1'],
            USAGE_ERROR_EXIT_CODE,
            "unknown flag --part.colour: --part has no 'colour'",
        ),
        (['job', '--part.size=1'], USAGE_ERROR_EXIT_CODE, 'job needs --path (see --help)'),
        (['jobs'], USAGE_ERROR_EXIT_CODE, "no command 'jobs'; available: job"),
        (['job', '--path=/x', '--part=@no.such.module'], USAGE_ERROR_EXIT_CODE, '--part=@no.such.module: '),
        (['job', '--path=/x', '--part.size=-1'], USAGE_ERROR_EXIT_CODE, '--part: size must be >= 0, got -1'),
        (['job', '--path=/no/such/file'], DATA_ERROR_EXIT_CODE, '/no/such/file does not exist'),
    ],
    ids=['unknown-flag', 'missing-flag', 'unknown-command', 'failed-import', 'bad-part-value', 'declared-data-error'],
)
def test_a_user_error_is_one_line_naming_the_flag_with_its_exit_code(argv, code, line):
    exit_code, message = reported_error(run, argv)
    assert exit_code == code and message.startswith(f'{PROG}: error: {line}'), message


def test_the_command_runs_with_its_flags(tmp_path, capsys):
    run(['job', f'--path={tmp_path}', '--part.size=5'])
    assert capsys.readouterr().out.splitlines()[0] == f'ran {tmp_path} with 5'


def test_help_needs_no_required_flag(capsys):
    run(['job', '--help'])
    text = capsys.readouterr().out
    assert 'Run the demo job' in text and 'path: <REQUIRED>' in text


def test_a_bug_keeps_its_traceback(tmp_path):
    with pytest.raises(RuntimeError, match='a bug, not a user error'):
        run(['job', f'--path={tmp_path}', '--mode=bug'])


def test_ctrl_c_is_one_line_and_exit_code_130(tmp_path):
    assert reported_error(run, ['job', f'--path={tmp_path}', '--mode=interrupt']) == (
        INTERRUPTED_EXIT_CODE,
        f'{PROG}: interrupted',
    )


def test_a_full_disk_names_the_output_flag_and_other_os_errors_pass_through(tmp_path):
    no_space = rf'--output_dir={tmp_path}: no space left on the device'
    with pytest.raises(DataError, match=no_space), writing_to(tmp_path, 'output_dir'):
        raise OSError(errno.ENOSPC, 'No space left on device')
    with pytest.raises(PermissionError), writing_to(tmp_path, 'output_dir'):
        raise PermissionError(errno.EACCES, 'Permission denied')
