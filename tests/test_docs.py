"""Every command the README and the guides show resolves to a real command with flags it has.

Command lines are taken from the fenced code blocks of README.md and docs/*.md (continuation lines joined):
console scripts of the package, ``python -m positronic...`` and ``docker compose run`` of the compose services.
"""

import re
import shlex
from pathlib import Path

import pytest
import yaml

from tests.command_lines import COMMAND_TREES, check_command_line, console_scripts

REPO = Path(__file__).resolve().parents[1]
DOCS = [REPO / 'README.md', *sorted((REPO / 'docs').glob('*.md'))]
FENCE = re.compile(r'^```[a-z]*\n(.*?)^```', re.MULTILINE | re.DOTALL)


def module_scripts() -> dict[str, str]:
    """``python -m`` module -> the console script it equals."""
    return {target.split(':')[0]: name for name, target in console_scripts().items()}


def compose_entrypoints() -> dict[str, list[str]]:
    compose = yaml.safe_load((REPO / 'docker' / 'docker-compose.yml').read_text())
    return {name: service['entrypoint'] for name, service in compose['services'].items()}


def shell_lines(text: str) -> list[str]:
    """Lines of the fenced code blocks, with backslash continuations joined and prompts removed."""
    lines = []
    for block in FENCE.findall(text):
        for line in block.replace('\\\n', ' ').splitlines():
            line = line.strip().removeprefix('$ ')
            if line and not line.startswith('#'):
                lines.append(line)
    return lines


def as_command_line(line: str) -> str | None:
    """The package command a shell line runs (``script words --flags``), or None when it runs none."""
    try:
        tokens = shlex.split(line, comments=True)
    except ValueError:
        return None
    # ``[--flag=value]`` shows an optional flag and ``...`` elides the required ones
    tokens = [t[1:-1] if t.startswith('[--') and t.endswith(']') else t for t in tokens if t != '...']
    if tokens[:1] == ['cd'] and '&&' in tokens:
        tokens = tokens[tokens.index('&&') + 1 :]
    if not tokens:
        return None
    if tokens[0] in COMMAND_TREES:
        return shlex.join(tokens)
    if tokens[0].startswith('python') and tokens[1:2] == ['-m'] and tokens[2] in module_scripts():
        return shlex.join([module_scripts()[tokens[2]], *tokens[3:]])
    if tokens[:2] == ['docker', 'compose'] and 'run' in tokens:
        rest = tokens[tokens.index('run') + 1 :]
        while rest and rest[0].startswith('--'):
            rest = rest[1:]
        service, *args = rest
        return shlex.join([*compose_entrypoints()[service], *args])
    return None


def documented_commands() -> list[tuple[str, str]]:
    found = []
    for doc in DOCS:
        for line in shell_lines(doc.read_text()):
            command = as_command_line(line)
            if command is not None:
                found.append((f'{doc.relative_to(REPO)}: {line[:70]}', command))
    return found


COMMANDS = documented_commands()


def test_the_readme_shows_both_commands_and_every_stage():
    scripts = {command.split()[0] for _, command in COMMANDS}
    assert set(COMMAND_TREES) - {'positronic-quickstart'} <= scripts
    readme = (REPO / 'README.md').read_text()
    assert 'bash scripts/quickstart.sh' in readme and 'bash scripts/test.sh' in readme


@pytest.mark.parametrize(('where', 'command'), COMMANDS, ids=[where for where, _ in COMMANDS])
def test_documented_command_has_the_flags_it_shows(where, command):
    check_command_line(command)


def test_a_misspelled_flag_is_caught():
    with pytest.raises(AssertionError, match='num_train_step'):
        check_command_line('positronic-lerobot-train --input_path=x --num_train_step=5')
