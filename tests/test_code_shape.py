"""The shape of the `positronic/` code: no long functions, no copied blocks.

Two rules, checked over every `.py` file under `positronic/`:

* **No function or method longer than 80 lines**: `end_lineno - lineno + 1` from `ast` (the `def` line to the
  last line of the body, docstring included, decorators not). A nested function is measured on its own and also
  counts towards the function that holds it.
* **No block of 6 or more consecutive normalized lines appears twice**, in one file or in two. Normalization
  keeps what a copy carries and drops what any two modules share by form alone:

  - a line is its Python tokens joined by one space, without a trailing comma: indentation, spacing, line
    comments and a trailing comma added or dropped do not hide a copy;
  - lines without tokens (blank, comment-only), docstrings (module, class, function), and `import` /
    `from ... import` statements (all their lines) are skipped;
  - lines made only of closing brackets (`)`, `]:`, `}),`) or of one bare keyword (`else:`, `try:`,
    `finally:`, `return`, `pass`, `break`, `continue`) are skipped, not counted: they carry no logic and
    would join unrelated code into a match, and because they are skipped rather than breaking a run, a
    closing bracket moved to its own line does not hide a copy either.

  Names and literals stay as written. Renaming every variable of a copy would pass this test, but that
  disguise is plain in review, while treating names as equal would match short common shapes (a few
  assignments, fields of the same types) across unrelated modules and make the rule noise. A repeat is
  reported once, as its longest run, naming both places (file:line) and its first line. Lines are physical
  lines, so a parameter or field wall counts line by line; a copy joined onto fewer lines is a different text
  (ruff format wraps by length, so a copy at the same depth wraps the same way).

Allowances name offenders that other work owns now; the test requires each still to offend, so an allowance is
removed in the change that fixes it. The scan (~100 files, each parsed and tokenized once) takes about 1 s.
"""

from __future__ import annotations

import ast
import functools
import io
import itertools
import re
import tokenize
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / 'positronic'
MAX_FUNCTION_LINES = 80
MIN_REPEAT_LINES = 6

TRIVIAL_LINE = re.compile(r'[)\]}]+[:,]?|else:|try:|finally:|return|pass|break|continue')
"""Lines with no logic of their own (matched with the spaces between tokens removed)."""
NO_TEXT_TOKENS = (tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT, tokenize.ENDMARKER)

# `_train` and the parameter wall it shares with `train` (two runs, split where `train` has `device`) go with the
# rewrite of vendors/lerobot/training/train.py around a settings dataclass on another branch. (`train` is 77 lines now.)
KNOWN_UNTIL_TRAIN_SETTINGS_FUNCTIONS = {('vendors/lerobot/training/train.py', '_train')}
KNOWN_UNTIL_TRAIN_SETTINGS_REPEATS = {
    ('vendors/lerobot/training/train.py', 'vendors/lerobot/training/train.py', 'input_path: str,'),
    ('vendors/lerobot/training/train.py', 'vendors/lerobot/training/train.py', 'precision: str,'),
}


@dataclass(frozen=True)
class Line:
    """One source line: where it is (1-based), its normalized text (compared) and as written (reported)."""

    lineno: int
    text: str
    written: str


@dataclass(frozen=True)
class Repeat:
    """A run of ``length`` normalized lines at ``path_a:line_a`` that appears again at ``path_b:line_b``."""

    path_a: str
    line_a: int
    path_b: str
    line_b: int
    length: int
    first: str

    @property
    def key(self) -> tuple[str, str, str]:
        """How an allowance names it: both files and the run's first line as written."""
        return (self.path_a, self.path_b, self.first)

    def __str__(self) -> str:
        return (
            f'{self.path_a}:{self.line_a} and {self.path_b}:{self.line_b}: {self.length} normalized lines, '
            f'starting {self.first!r}'
        )


@functools.cache
def _parsed(source: str) -> ast.Module:
    return ast.parse(source)


def _skipped_lines(tree: ast.Module) -> set[int]:
    """Line numbers of docstrings and import statements (every line they span)."""
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            skipped.update(range(node.lineno, node.end_lineno + 1))
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and node.body:
            first = node.body[0]
            if (
                isinstance(first, ast.Expr)
                and isinstance(first.value, ast.Constant)
                and isinstance(first.value.value, str)
            ):
                skipped.update(range(first.lineno, first.end_lineno + 1))
    return skipped


def normalized_lines(source: str) -> list[Line]:
    """The lines of ``source`` that count towards a repeat, normalized as the module docstring says."""
    skipped = _skipped_lines(_parsed(source))
    tokens: dict[int, list[str]] = defaultdict(list)
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type not in NO_TEXT_TOKENS and token.start[0] not in skipped:
            tokens[token.start[0]].append(token.string)
    lines = []
    written = source.splitlines()
    for lineno, strings in sorted(tokens.items()):
        text = ' '.join(strings).removesuffix(' ,')
        if not TRIVIAL_LINE.fullmatch(text.replace(' ', '')):
            lines.append(Line(lineno, text, written[lineno - 1].strip()))
    return lines


def long_functions(sources: dict[str, str]) -> dict[tuple[str, str], str]:
    """(file, function name) -> 'file:line name: N lines' for every function over MAX_FUNCTION_LINES."""
    found = {}
    for path, source in sources.items():
        for node in ast.walk(_parsed(source)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    found[(path, node.name)] = f'{path}:{node.lineno} {node.name}: {length} lines'
    return found


def _window_pairs(files: dict[str, list[Line]]) -> list[tuple[str, int, str, int]]:
    """Every two places (file, index into its lines) where the same MIN_REPEAT_LINES lines start, sorted."""
    places: dict[tuple[str, ...], list[tuple[str, int]]] = defaultdict(list)
    for path, lines in files.items():
        for i in range(len(lines) - MIN_REPEAT_LINES + 1):
            places[tuple(line.text for line in lines[i : i + MIN_REPEAT_LINES])].append((path, i))
    return sorted((*a, *b) for spots in places.values() for a, b in itertools.pairwise(spots))


def repeated_blocks(sources: dict[str, str]) -> list[Repeat]:
    """Each block of MIN_REPEAT_LINES or more normalized lines seen twice, as its longest run."""
    files = {path: normalized_lines(source) for path, source in sources.items()}
    covered: set[tuple[str, int, str, int]] = set()
    found = []
    for path_a, i, path_b, j in _window_pairs(files):
        if (path_a, i, path_b, j) in covered:
            continue
        lines_a, lines_b = files[path_a], files[path_b]
        n = 0
        while i + n < len(lines_a) and j + n < len(lines_b) and lines_a[i + n].text == lines_b[j + n].text:
            if path_a == path_b and i + n == j:
                break
            covered.add((path_a, i + n, path_b, j + n))
            n += 1
        found.append(Repeat(path_a, lines_a[i].lineno, path_b, lines_b[j].lineno, n, lines_a[i].written))
    return found


@functools.cache
def _package_sources() -> dict[str, str]:
    return {path.relative_to(PACKAGE).as_posix(): path.read_text() for path in sorted(PACKAGE.rglob('*.py'))}


@functools.cache
def _package_long_functions() -> dict[tuple[str, str], str]:
    return long_functions(_package_sources())


@functools.cache
def _package_repeats() -> tuple[Repeat, ...]:
    return tuple(repeated_blocks(_package_sources()))


def _report(offenders: list[str]) -> str:
    return '\n  ' + '\n  '.join(sorted(offenders))


def test_no_function_in_positronic_is_longer_than_80_lines():
    found = _package_long_functions()
    offenders = [text for key, text in found.items() if key not in KNOWN_UNTIL_TRAIN_SETTINGS_FUNCTIONS]
    assert not offenders, f'functions over {MAX_FUNCTION_LINES} lines (split them):{_report(offenders)}'


def test_no_block_of_6_normalized_lines_appears_twice_in_positronic():
    offenders = [str(r) for r in _package_repeats() if r.key not in KNOWN_UNTIL_TRAIN_SETTINGS_REPEATS]
    assert not offenders, f'blocks of {MIN_REPEAT_LINES}+ lines repeated (share them):{_report(offenders)}'


def test_every_allowance_still_offends():
    """An allowance that no longer matches anything is removed in the change that fixes it."""
    fixed_functions = KNOWN_UNTIL_TRAIN_SETTINGS_FUNCTIONS - set(_package_long_functions())
    fixed_repeats = KNOWN_UNTIL_TRAIN_SETTINGS_REPEATS - {r.key for r in _package_repeats()}
    assert not fixed_functions, f'fixed, remove from KNOWN_UNTIL_TRAIN_SETTINGS_FUNCTIONS: {fixed_functions}'
    assert not fixed_repeats, f'fixed, remove from KNOWN_UNTIL_TRAIN_SETTINGS_REPEATS: {fixed_repeats}'


ORIGINAL = '''
def load(path):
    """Read the table."""
    table = read(path)
    if table is None:
        raise ValueError(
            path
        )
    rows = table.rows
    names = [r.name for r in rows]
    sizes = [r.size for r in rows]
    return dict(zip(names, sizes))
'''

DISGUISED_COPY = """
import os


class Loader:
    def load_again(self, path):
        table = read(path)  # the same, re-indented and commented
        if table is None:
            raise ValueError(
                path,
            )

        rows = table.rows
        names = [r.name for r in rows]
        sizes = [r.size  for r in rows]
        return dict(zip(names, sizes))
"""


def test_a_copy_is_found_through_indentation_comments_spacing_and_trailing_commas():
    (repeat,) = repeated_blocks({'a.py': ORIGINAL, 'b.py': DISGUISED_COPY})
    assert (repeat.path_a, repeat.line_a, repeat.path_b, repeat.line_b) == ('a.py', 4, 'b.py', 7)
    assert repeat.length == 8


def test_one_changed_line_in_six_is_not_a_repeat():
    changed = ORIGINAL.replace('rows = table.rows', 'rows = table.all_rows')
    assert repeated_blocks({'a.py': ORIGINAL, 'b.py': changed}) == []


def test_imports_docstrings_and_closing_brackets_alone_make_no_repeat():
    boilerplate = '"""Module."""\n\nfrom x import (\n    a,\n    b,\n    c,\n    d,\n    e,\n)\n\n\ndef f():\n'
    boilerplate += '    """Doc\n    on\n    lines\n    here\n    and\n    more."""\n    try:\n        g(\n        )\n'
    boilerplate += '    finally:\n        pass\n'
    assert repeated_blocks({'a.py': boilerplate, 'b.py': boilerplate}) == []


def test_a_block_repeated_in_one_file_names_both_places():
    (repeat,) = repeated_blocks({'a.py': ORIGINAL + ORIGINAL.replace('def load', 'def load_twice')})
    assert (repeat.path_a, repeat.line_a, repeat.path_b, repeat.line_b) == ('a.py', 4, 'a.py', 16)


def test_a_function_of_81_lines_is_too_long_and_one_of_80_is_not():
    body = ''.join(f'    x{i} = {i}\n' for i in range(79))
    found = long_functions({'m.py': f'def ok():\n{body}\n\ndef too_long():\n{body}    y = 0\n'})
    assert found == {('m.py', 'too_long'): 'm.py:83 too_long: 81 lines'}
