"""The runner every console script uses: configuronic command line in, one-line errors and exit codes out.

    def main(argv: Sequence[str] | None = None) -> None:
        run_command(PROG, COMMANDS, argv, usage_errors=(...), data_errors=(...))

Before anything runs, the command line is checked against the command's config: a command word that does not
exist, a flag the config does not have (each part of ``--a.b.c`` must name a parameter), a flag whose value cannot
be applied (an ``@module.path`` that does not import) and a required flag left out are usage errors. While the
command runs, an error of a type it declares (or :class:`UsageError` / :class:`DataError`), raised by the command
itself or while configuronic builds one of its parts, ends the run with ``<prog>: error: <message>`` on stderr and
the exit code below. Any other exception is a bug and keeps its traceback.

Exit codes: 0 done; 1 a data error (the command line is fine, but the files or state it names refuse it: a missing
or corrupt input, an existing output, a run that cannot resume, a full disk); 2 a usage error (the command line is
wrong on its own: an unknown or missing flag, a value out of range, a device this machine does not have);
130 interrupted (Ctrl+C).
"""

import ast
import dataclasses
import errno
import inspect
import re
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import configuronic as cfn

DATA_ERROR_EXIT_CODE = 1
USAGE_ERROR_EXIT_CODE = 2
INTERRUPTED_EXIT_CODE = 130
HELP_FLAG = '--help'
_INSTANTIATING = re.compile(r'^Error instantiating "([^"]+)": ')
"""How configuronic words an error raised while building a part of the config (the part's dotted path)."""

NO_SPACE_ERRNOS = (errno.ENOSPC, errno.EDQUOT)
"""OSError numbers of a full disk or an exhausted quota."""

Command = cfn.Config | Mapping[str, Any]
"""A config, or a ``{word: config}`` tree of them (``''`` is the default command), as ``cfn.cli`` takes."""


class UsageError(ValueError):
    """The command line is wrong on its own (exit code 2): name the flag, the value and what was expected."""


class DataError(Exception):
    """The command line is fine but the files or state it names refuse it (exit code 1): name the file or key."""


def flag_defaults(settings_type: type) -> dict[str, Any]:
    """The defaults of a settings dataclass, in field order (factories called), that a command's flags start from
    and ``--help`` shows; fields without a default are the required flags."""
    return {
        f.name: f.default_factory() if f.default is dataclasses.MISSING else f.default
        for f in dataclasses.fields(settings_type)
        if f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
    }


@contextmanager
def writing_to(path: Path, flag: str) -> Iterator[None]:
    """Turn a full disk (or quota) while writing the output ``path`` given by ``--flag`` into DataError naming it."""
    try:
        yield
    except OSError as e:
        if e.errno not in NO_SPACE_ERRNOS:
            raise
        raise DataError(f'--{flag}={path}: no space left on the device ({e.strerror}); free some and run again') from e


def parse_value(text: str) -> Any:
    """A flag value as the CLI reads it: a Python literal when it is one (30, 1e-4, True, None, [3,4]), else text."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return text


def split_flags(tokens: Sequence[str]) -> tuple[list[str], list[tuple[str, str]]]:
    """Leading command words and the ``--name=value`` / ``--name value`` / ``--name`` flags that follow them."""
    words, flags, i = [], [], 0
    while i < len(tokens) and not tokens[i].startswith('-'):
        words.append(tokens[i])
        i += 1
    while i < len(tokens):
        token = tokens[i]
        if not token.startswith('--'):
            raise UsageError(f'unexpected argument {token!r}; flags are written --name=value')
        if '=' in token:
            name, value = token[2:].split('=', 1)
        elif i + 1 < len(tokens) and not tokens[i + 1].startswith('--'):
            name, value = token[2:], tokens[i + 1]
            i += 1
        else:
            name, value = token[2:], 'True'
        flags.append((name.replace('-', '_'), value))
        i += 1
    return words, flags


def command_config(command: Command, words: Sequence[str]) -> cfn.Config:
    """The config that ``words`` select in ``command`` (a config, or a tree of them)."""
    node: Any = command
    for i, word in enumerate(words):
        if not isinstance(node, Mapping):
            raise UsageError(f'unexpected argument {word!r}; flags are written --name=value')
        if word not in node:
            where = f' under {" ".join(words[:i])!r}' if i else ''
            raise UsageError(f'no command {word!r}{where}; available: {", ".join(w for w in node if w)}')
        node = node[word]
    if isinstance(node, Mapping):
        if '' not in node:
            raise UsageError(f'a command is needed, one of: {", ".join(w for w in node if w)}')
        node = node['']
    return node


def _parameters(config: cfn.Config) -> set[str]:
    signature = inspect.signature(config.target)
    names = {p.name for p in signature.parameters.values() if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}
    if any(p.kind == p.VAR_KEYWORD for p in signature.parameters.values()):
        names |= set(config.kwargs)  # a ``**fields`` target takes the keys it was given defaults for
    return names


def check_flag(config: cfn.Config, name: str) -> None:
    """UsageError unless each part of the dotted flag ``name`` is a parameter of the config it walks into."""
    node: Any = config
    parts = name.split('.')
    for depth, part in enumerate(parts):
        if not isinstance(node, cfn.Config):
            return  # a plain value (dict, list) takes any key
        names = _parameters(node)
        if part not in names:
            owner = f'--{".".join(parts[:depth])}' if depth else 'the command'
            raise UsageError(f'unknown flag --{name}: {owner} has no {part!r}; it has {", ".join(sorted(names))}')
        node = node.kwargs.get(part)


def apply_flags(config: cfn.Config, flags: Sequence[tuple[str, str]]) -> cfn.Config:
    """``config`` with every flag checked (:func:`check_flag`) and applied in order, as the CLI applies them."""
    for name, value in flags:
        if name == HELP_FLAG[2:]:
            continue
        check_flag(config, name)
        try:
            config = config.override(**{name: parse_value(value)})
        except cfn.ConfigError as error:
            cause = error.__cause__ or error
            raise UsageError(f'--{name}={value}: {cause}') from error
    return config


def check_command_line(command: Command, argv: Sequence[str]) -> cfn.Config:
    """The config ``argv`` runs, with its flags checked and applied; UsageError for an unknown command word or flag,
    a value that cannot be applied, or a required flag left out."""
    words, flags = split_flags(argv)
    config = apply_flags(command_config(command, words), flags)
    if missing := cfn.get_required_args(config):
        what = ' '.join(words) or 'this command'
        raise UsageError(f'{what} needs {", ".join(f"--{name}" for name in missing)} (see {HELP_FLAG})')
    return config


def _reported(
    error: BaseException, usage_errors: tuple[type[BaseException], ...], data_errors: tuple[type[BaseException], ...]
) -> tuple[str, int] | None:
    """The message and exit code of a user error behind ``error`` (configuronic wraps what a part raises while it is
    built, naming the part), or None for a bug."""
    part = None
    while error is not None:
        if isinstance(error, cfn.ConfigError) and (match := _INSTANTIATING.match(str(error))):
            part = match.group(1)
        elif isinstance(error, (UsageError, *usage_errors)):
            return _with_part(str(error), part), USAGE_ERROR_EXIT_CODE
        elif isinstance(error, (DataError, *data_errors)):
            return _with_part(str(error), part), DATA_ERROR_EXIT_CODE
        error = error.__cause__
    return None


def _with_part(message: str, part: str | None) -> str:
    return message if part is None or message.startswith('--') else f'--{part}: {message}'


def run_command(
    prog: str,
    command: Command,
    argv: Sequence[str] | None = None,
    *,
    usage_errors: tuple[type[BaseException], ...] = (),
    data_errors: tuple[type[BaseException], ...] = (),
    interrupted: str = 'interrupted',
) -> None:
    """Run ``command`` (a config or a tree of them) on ``argv`` (default: the process's arguments) as ``prog``.

    User errors (see the module docstring) end the process with one line on stderr and exit code 1 or 2; Ctrl+C
    with ``<prog>: <interrupted>`` and exit code 130. ``--help`` prints the command's documentation and settings.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    saved = sys.argv
    sys.argv = [prog, *args]
    try:
        if HELP_FLAG not in args:
            check_command_line(command, args)
        cfn.cli(dict(command) if isinstance(command, Mapping) else command)
    except KeyboardInterrupt:
        _exit(f'{prog}: {interrupted}', INTERRUPTED_EXIT_CODE)
    except Exception as error:
        if (reported := _reported(error, usage_errors, data_errors)) is None:
            raise
        message, code = reported
        _exit(f'{prog}: error: {message}', code)
    finally:
        sys.argv = saved


def _exit(line: str, code: int) -> None:
    print(line, file=sys.stderr, flush=True)
    raise SystemExit(code)
