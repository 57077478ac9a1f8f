"""Check documented command lines against the real command configs, without running them.

A command line such as ``positronic-lerobot-train --input_path=... --policy.chunk_size=20`` is resolved to the
configuronic config its console script runs; every flag is applied as the CLI applies it (values parsed as
Python literals where they are literals, ``@module.path`` imported) and then walked down the config: each part
of a dotted flag must name a parameter of the callable it configures. A misspelled flag, a flag a command
does not have, or a ``@path`` that does not import fails the check with the flag named.
"""

import contextlib
import importlib
import io
import re
import shlex
import tomllib
from collections.abc import Callable
from pathlib import Path

import configuronic as cfn
import pytest

from positronic.command import Command, UsageError, apply_flags, command_config, split_flags

REPO = Path(__file__).resolve().parents[1]

COMMAND_TREES = {
    'positronic-data-collection': ('positronic.data_collection', 'COMMANDS'),
    'positronic-to-lerobot': ('positronic.vendors.lerobot.conversion.to_lerobot', 'COMMANDS'),
    'positronic-lerobot-train': ('positronic.vendors.lerobot.training.train', 'train'),
    'positronic-lerobot-server': ('positronic.vendors.lerobot.serving.server', 'serve_checkpoints'),
    'positronic-inference': ('positronic.inference', 'COMMANDS'),
    'positronic-quickstart': ('positronic.quickstart', 'quickstart'),
}
"""Console script -> (module, the attribute holding its config or its ``{command: config}`` tree)."""


class CommandLineError(AssertionError):
    """A documented command line does not fit the command it names."""


def console_scripts() -> dict[str, str]:
    """``[project.scripts]`` of pyproject.toml: name -> ``module:function``."""
    with open(REPO / 'pyproject.toml', 'rb') as f:
        return tomllib.load(f)['project']['scripts']


def script_command(script: str) -> Command:
    """The config, or the ``{command: config}`` tree, that ``script`` runs."""
    if script not in console_scripts():
        raise CommandLineError(f'{script!r} is not a console script of pyproject.toml')
    module_name, attribute = COMMAND_TREES[script]
    return getattr(importlib.import_module(module_name), attribute)


def check_command_line(line: str) -> cfn.Config:
    """Resolve and check one command line (``script [words] --flags``); returns the overridden config."""
    tokens = shlex.split(line, comments=True)
    script, rest = tokens[0], tokens[1:]
    try:
        words, flags = split_flags(rest)
        return apply_flags(command_config(script_command(script), words), flags)
    except UsageError as error:
        raise CommandLineError(f'{line}: {error}') from error


PROGRESS_BAR = re.compile(r'\d+%\|')
"""A tqdm progress line (the commands draw one on stderr while they work)."""


def reported_error(main: Callable[[list[str]], None], argv: list[str]) -> tuple[int, str]:
    """Run a console script's ``main(argv)`` expecting a reported error: returns its exit code and the one message it
    wrote to stderr (besides progress bars and the blanks that erase them), after checking that there is exactly one
    and no traceback. A message is one line; only a list of findings (verify's differences) continues on indented
    lines."""
    stderr = io.StringIO()
    with pytest.raises(SystemExit) as exit_info, contextlib.redirect_stderr(stderr):
        main(argv)
    text = stderr.getvalue()
    lines = [line for line in re.split(r'[\r\n]+', text) if line.strip() and not PROGRESS_BAR.search(line)]
    assert 'Traceback' not in text and sum(not line[0].isspace() for line in lines) == 1, lines
    assert lines[0] and not lines[0][0].isspace(), lines
    assert isinstance(exit_info.value.code, int), exit_info.value.code
    return exit_info.value.code, '\n'.join(lines)


def tree_state(root: Path) -> dict[str, tuple[int, int]]:
    """Every path under ``root`` with its size and modification time: equal before and after = nothing written."""
    if not root.exists():
        return {}
    return {str(p.relative_to(root)): (p.lstat().st_size, p.lstat().st_mtime_ns) for p in root.rglob('*')}
