"""Check documented command lines against the real command configs, without running them.

A command line such as ``positronic-lerobot-train --input_path=... --policy.chunk_size=20`` is resolved to the
configuronic config its console script runs; every flag is applied as the CLI applies it (values parsed as
Python literals where they are literals, ``@module.path`` imported) and then walked down the config: each part
of a dotted flag must name a parameter of the callable it configures. A misspelled flag, a flag a command
does not have, or a ``@path`` that does not import fails the check with the flag named.
"""

import ast
import importlib
import inspect
import shlex
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import configuronic as cfn

REPO = Path(__file__).resolve().parents[1]

COMMAND_TREES = {
    'positronic-data-collection': ('positronic.data_collection', 'COMMANDS'),
    'positronic-to-lerobot': ('positronic.vendors.lerobot.to_lerobot', 'COMMANDS'),
    'positronic-lerobot-train': ('positronic.vendors.lerobot.train', 'train'),
    'positronic-lerobot-server': ('positronic.vendors.lerobot.server', 'serve_checkpoints'),
    'positronic-inference': ('positronic.inference', {'sim': 'sim'}),
    'positronic-quickstart': ('positronic.quickstart', 'quickstart'),
}
"""Console script -> (module, the attribute holding its config or its ``{command: config}`` tree, or a
``{command: attribute}`` map where the module builds its tree inside ``main``)."""


class CommandLineError(AssertionError):
    """A documented command line does not fit the command it names."""


def console_scripts() -> dict[str, str]:
    """``[project.scripts]`` of pyproject.toml: name -> ``module:function``."""
    with open(REPO / 'pyproject.toml', 'rb') as f:
        return tomllib.load(f)['project']['scripts']


def parse_value(text: str) -> Any:
    """A flag value as the CLI reads it: a Python literal when it is one (30, 1e-4, True, None, [3,4]), else text."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def split_flags(tokens: list[str]) -> tuple[list[str], list[tuple[str, str]]]:
    """Leading command words and the ``--name=value`` / ``--name value`` flags that follow them."""
    words, flags, i = [], [], 0
    while i < len(tokens) and not tokens[i].startswith('-'):
        words.append(tokens[i])
        i += 1
    while i < len(tokens):
        token = tokens[i]
        if not token.startswith('--'):
            raise CommandLineError(f'unexpected argument {token!r} in {shlex.join(tokens)}')
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


def command_config(script: str, words: list[str]) -> cfn.Config:
    """The config that ``script words...`` runs."""
    if script not in console_scripts():
        raise CommandLineError(f'{script!r} is not a console script of pyproject.toml')
    module_name, attribute = COMMAND_TREES[script]
    module = importlib.import_module(module_name)
    if isinstance(attribute, Mapping):
        tree: Any = {word: getattr(module, name) for word, name in attribute.items()}
    else:
        tree = getattr(module, attribute)
    for word in words:
        if not isinstance(tree, Mapping) or word not in tree:
            raise CommandLineError(
                f'{script}: no command {word!r}; available: {list(tree) if isinstance(tree, Mapping) else []}'
            )
        tree = tree[word]
    if isinstance(tree, Mapping):
        if '' not in tree:
            raise CommandLineError(f'{script} {" ".join(words)}: a command is needed, one of {list(tree)}')
        tree = tree['']
    return tree


def _parameters(target: Any) -> tuple[set[str], bool]:
    signature = inspect.signature(target)
    names = {p.name for p in signature.parameters.values() if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}
    return names, any(p.kind == p.VAR_KEYWORD for p in signature.parameters.values())


def check_flag(config: cfn.Config, name: str, where: str) -> None:
    """Raise CommandLineError unless each part of the dotted ``name`` is a parameter of the config it walks into."""
    node: Any = config
    for depth, part in enumerate(name.split('.')):
        if not isinstance(node, cfn.Config):
            return  # a plain value (dict, list) takes any key
        names, takes_any = _parameters(node.target)
        if takes_any:  # a ``**fields`` config takes the keys it was given defaults for
            names |= set(node.kwargs)
        if part not in names:
            prefix = '.'.join(name.split('.')[:depth]) or '<command>'
            raise CommandLineError(f'{where}: --{name}: {prefix} has no parameter {part!r}; it has {sorted(names)}')
        node = node.kwargs.get(part)


def check_command_line(line: str) -> cfn.Config:
    """Resolve and check one command line (``script [words] --flags``); returns the overridden config."""
    tokens = shlex.split(line, comments=True)
    script, rest = tokens[0], tokens[1:]
    words, flags = split_flags(rest)
    config = command_config(script, words)
    for name, value in flags:
        if name == 'help':
            continue
        check_flag(config, name, line)
        try:
            config = config.override(**{name: parse_value(value)})
        except Exception as error:
            raise CommandLineError(f'{line}: --{name}={value}: {error}') from error
    return config
