"""`depfix.codegen` gives exactly what libcst's own code generation and `PositionProvider` give.

Checked on every Python file of this repository, on line-ending variants, and on hypothesmith's
grammar-based programs; and libcst's public paths are taken when its code generation hooks change.
"""

from __future__ import annotations

import re
from pathlib import Path

import libcst as cst
import pytest
from libcst._nodes.internal import CodegenState
from libcst.metadata import MetadataWrapper, PositionProvider

from depfix import codegen
from tests.conftest import SOURCES, generated_programs


def _libcst_positions(module: cst.Module) -> dict[cst.CSTNode, object]:
    return dict(MetadataWrapper(module, unsafe_skip_copy=True).resolve(PositionProvider))


def _differences(source: str | bytes) -> list[str]:
    """Where `codegen` and libcst disagree on a module's positions or code (empty: nowhere)."""
    module = cst.parse_module(source)
    expected = _libcst_positions(module)
    found = codegen.positions(module)
    problems = [f"{type(node).__name__}" for node in expected if found.get(node) != expected[node]]
    if set(found) != set(expected):
        problems.append("the nodes with positions differ")
    if codegen.code(module) != module.code:
        problems.append("module code")
    for statement in module.body:
        if codegen.code_for_node(module, statement) != module.code_for_node(statement):
            problems.append(f"code of {type(statement).__name__}")
    return problems


def test_the_fast_path_is_taken_with_this_libcst() -> None:
    assert codegen.FAST
    assert isinstance(codegen.positions(cst.parse_module("x = 1\n")), codegen.Positions)


def test_positions_and_code_are_libcsts_on_every_file_of_the_repository() -> None:
    problems = {str(path): found for path in SOURCES if (found := _differences(path.read_bytes()))}
    assert len(SOURCES) > 300
    assert problems == {}


LINE_ENDINGS = {
    "lf": "\n",
    "crlf": "\r\n",
    "cr": "\r",
}
TRICKY = (
    'def f(a,\n      b=(1,\n         2)):\n    """doc\n    string"""\n'
    "    return [a  # comment\n            , b]\n\n\n"
    "class C:\n\n    x: int = 1\n    @property\n    def y(self): return (\n        self.x)\n"
    "if True:\n\tz = 1  \\\n\t    + 2\n"
    "s = f'''{1}\nx'''\n"
)


@pytest.mark.parametrize("ending", LINE_ENDINGS.values(), ids=LINE_ENDINGS.keys())
def test_positions_count_every_kind_of_line_break(ending: str) -> None:
    assert _differences(TRICKY.replace("\n", ending)) == []


def test_the_comparison_can_fail(monkeypatch: pytest.MonkeyPatch) -> None:
    """A state that does not count a lone carriage return as a line break is caught."""
    monkeypatch.setattr(codegen, "_NEWLINE", re.compile(r"\r\n|\n"))
    assert _differences(TRICKY.replace("\n", "\r")) != []
    assert _differences(TRICKY) == []


@generated_programs
def test_positions_and_code_are_libcsts_on_generated_programs(source: str) -> None:
    try:
        cst.parse_module(source)
    except (cst.ParserSyntaxError, RecursionError):
        return  # libcst lags CPython on some grammar; the walk only sees what it parses
    assert _differences(source) == []


def test_a_new_code_generation_hook_turns_the_fast_path_off(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert codegen.supported()
    monkeypatch.setattr(CodegenState, "add_comment", lambda self, value: None, raising=False)
    assert not codegen.supported()


def test_without_the_fast_path_libcsts_own_paths_are_taken(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(codegen, "FAST", False)
    source = Path(SOURCES[0]).read_bytes()
    module = cst.parse_module(source)
    found = codegen.positions(module)
    assert not isinstance(found, codegen.Positions)
    assert dict(found) == _libcst_positions(module)
    assert codegen.code(module) == module.code
