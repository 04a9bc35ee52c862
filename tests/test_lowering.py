"""Syntax newer than the running Python (`depfix.lowering`): read, with the facts a newer Python reads.

Every construct libcst parses and this Python's `ast` does not is read, keeping the lines and columns
of the code the facts use; the fixture pair `fixtures/DF006/newer_syntax` (Python 3.14 syntax) and
`newer_syntax_twin` (the same project, line for line, in Python 3.11 syntax) gets the same
diagnostics and the same edits. With `DEPFIX_NEWER_PYTHON` naming a Python 3.12+ interpreter that
has libcst, the facts are also compared with the ones that interpreter's own `ast` gives.
"""

from __future__ import annotations

import ast
import difflib
import os
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import libcst as cst
import pytest
from conftest import run_depfix, write_tree
from libcst._exceptions import CSTLogicError

from depfix import engine, lowering
from depfix import facts as facts_module
from depfix.config import Settings
from depfix.facts import FileFacts, extract_facts, parse_source
from depfix.values import LITERAL, UNKNOWN, Name

ROOT = Path(__file__).resolve().parent.parent
NEWER = ROOT / "fixtures" / "DF006" / "newer_syntax"
TWIN = ROOT / "fixtures" / "DF006" / "newer_syntax_twin"

# one sample per construct, with the first Python whose `ast` reads it
SAMPLES = {
    "match statement": (
        (3, 10),
        "match command.split(), other:\n"
        "    case [action] if ok(action):\n        pass\n"
        "    case Point(x=0, y=0) | Point(1, y=2 as why) as p:\n        pass\n"
        '    case {"k": v, **rest} | C() | None | -1 | 1+2j | a.B:\n        pass\n'
        "    case a, *b:\n        pass\n"
        "    case TYPE_CHECKING:\n        import os\n",
    ),
    "parenthesized parts of a match": (
        (3, 10),
        "match (x):\n    case y if (z := f(y)):\n        pass\n    case C(k=(1 | 2)):\n        pass\n",
    ),
    "except star": ((3, 11), "try:\n    x = f()\nexcept* ValueError:\n    y = g(1)\n"),
    "starred annotations": ((3, 11), "def f(*args: *Ts) -> tuple[*Ts]:\n    return x[*a, b]\n"),
    "type alias": ((3, 12), "type Token = str\ntype Pair[T: int = int] = tuple[T, T]\n"),
    "generic function": (
        (3, 12),
        "def first[T, *Ts, **P](items: list[T]) -> T:\n    return items[0]\n",
    ),
    "generic class": ((3, 12), "class Box[T](Base, metaclass=Meta):\n    x = f()\n"),
    "multi-line type parameters": (
        (3, 12),
        "def f[\n    T,  # the item\n    U,\n](x: T = g()) -> U: ...\n",
    ),
    "f-string reusing its quotes": ((3, 12), 'x = f"{d["k"]} {f"{d["j"]}"}"\n'),
    "f-string with a backslash and a comment": (
        (3, 12),
        'x = f"{"\\n".join(a)} {b  # note\n}"\n',
    ),
    "parenthesized parts of a type alias and an f-string": (
        (3, 12),
        'type X = (Annotated[int, Depends(f)])\nx = f"{(d["k"])} {(yield)}"\n',
    ),
    "f-string over lines": ((3, 12), 'x = f"{\n    call(a)\n}" "tail" f"{b=}"\n'),
    "except without parentheses": ((3, 14), "try:\n    x = f()\nexcept A, B:\n    y = g(1)\n"),
    "except star without parentheses": (
        (3, 14),
        "try:\n    x = f()\nexcept* A, B :\n    y = g(A)\n",
    ),
    "template string": ((3, 14), 'x = t"hello {name!r:>{width}} {call()}"\n'),
    "raw template string": ((3, 14), 'x = rt"\\d{n}"\ny = Rt"""\n{m}\n"""\n'),
}


def _facts(source: str) -> FileFacts:
    text, tree = parse_source("m.py", source.encode())
    return extract_facts("m.py", "m", False, tree, text)


@pytest.mark.parametrize("source", [s for _, s in SAMPLES.values()], ids=list(SAMPLES))
def test_each_construct_is_lowered_keeping_lines_and_columns(source: str) -> None:
    cst.parse_module(source)
    lowered = lowering.lower(source)
    assert lowered is not None
    tree = ast.parse(lowered)
    assert len(lowered.splitlines()) == len(source.splitlines())
    original = source.splitlines()
    names = [node for node in ast.walk(tree) if isinstance(node, ast.Name)]
    assert names
    for node in names:  # every name the facts can see is where the file has it
        assert original[node.lineno - 1][node.col_offset :].startswith(node.id), (node.id, lowered)


@pytest.mark.parametrize("version, source", SAMPLES.values(), ids=list(SAMPLES))
def test_each_construct_reads_as_where_it_is_native(version: tuple[int, int], source: str) -> None:
    """Lowered for the Python before the construct's, it gives the facts this Python's `ast` gives
    when it reads the construct itself; when it does not, the lowering is what reads it."""
    before = min((version[0], version[1] - 1), sys.version_info[:2])
    lowered = lowering.lower(source, before)
    assert lowered is not None and lowered != source
    if sys.version_info[:2] < version:
        with pytest.raises(SyntaxError):
            ast.parse(source)
        assert _facts(source) == _facts_of(ast.parse(lowered), lowered)
    else:
        native = _facts_of(ast.parse(source), source)
        read = _facts_of(ast.parse(lowered), lowered)
        if version == (3, 10):
            # A pattern read as an expression on Python 3.9 binds none of its captures: the
            # import-order steps lack them there (the one known difference, see depfix.lowering).
            assert len(read.steps) < len(native.steps)
            native, read = replace(native, steps=()), replace(read, steps=())
        assert native == read
        assert native.calls or native.rebound or native.bindings or native.functions


def _facts_of(tree: ast.Module, text: str) -> FileFacts:
    return extract_facts("m.py", "m", False, tree, text)


def test_facts_read_through_the_lowering() -> None:
    lines = [
        "from typing import Annotated",
        "from fastapi import Depends",
        "type SessionDep = Annotated[Session, Depends(get_db)]",
        "def read[T](item: T = Depends(get_item), q=Depends(g)) -> T:",
        "    try:",
        "        pass",
        "    except A, B: return helper(1)",
        '    label = t"{make(item)}"',
        '    text = f"{item["k"]}{helper(2, 3)}"',
    ]

    def column(line: int, text: str) -> int:  # 1-based, as the facts count
        return lines[line - 1].index(text) + 1

    found = _facts("\n".join(lines) + "\n")
    assert found.bindings["SessionDep"] == UNKNOWN  # a TypeAliasType: not what it aliases
    alias_ref, *refs = found.dependency_refs
    assert (alias_ref.line, alias_ref.column) == (3, column(3, "Depends"))
    assert alias_ref.context == "alias"
    assert alias_ref.alias_name is None  # FastAPI unwraps `type` aliases only since 0.128.2
    assert alias_ref.target == Name("m.get_db")
    function = found.functions["read"]
    assert (function.line, function.column) == (4, 1)
    assert [(p.name, p.injected) for p in function.params] == [("item", True), ("q", True)]
    assert [(r.line, r.column, r.parameter) for r in refs] == [
        (4, column(4, "Depends(get_item)"), "item"),
        (4, column(4, "Depends(g)"), "q"),
    ]
    first, second = found.calls["m.helper"]
    assert (first.line, first.column) == (7, column(7, "helper") + 1)  # after the inserted `)`
    assert (second.line, second.column, second.positional) == (9, column(9, "helper"), 2)
    assert [(s.line, s.column) for s in found.calls["m.make"]] == [(8, column(8, "make"))]


@pytest.mark.skipif(sys.version_info >= (3, 14), reason="this Python reads t-strings itself")
def test_marker_arguments_are_read_from_the_file_not_from_the_lowered_text() -> None:
    """DF007 writes a shared alias with the first site's marker arguments: the file's own code."""
    found = _facts(
        "from typing import Annotated\n"
        "from fastapi import Depends, Security\n"
        "type X = int\n"
        'def r(a: Annotated[int, Security(f, scopes=[f"{R["a"]}", t"{b}"])],\n'
        "      b: Annotated[int, Depends(g, use_cache=False)]): ...\n"
    )
    scoped, plain = found.dependency_refs
    assert scoped.options == scoped.options_source == 'scopes=[f"{R["a"]}", t"{b}"]'
    assert plain.options == plain.options_source == "use_cache=False"


def test_string_values_read_as_the_newer_ast_reads_them() -> None:
    found = _facts('a = f"{d["k"]}"\nb = t"{d}"\nc = rt"x{y}"\nd = "x" f"{y["z"]}"\n')
    assert found.bindings["a"] == LITERAL  # an f-string is a literal
    assert found.bindings["b"] == UNKNOWN  # a Template is not
    assert found.bindings["c"] == UNKNOWN
    assert found.bindings["d"] == LITERAL


def test_reading_facts_imports_libcst_only_for_a_file_this_python_cannot_parse() -> None:
    script = (
        "import sys\n"
        "from depfix.facts import extract_facts, parse_source\n"
        "text, tree = parse_source('m.py', b'x = 1\\n')\n"
        "extract_facts('m.py', 'm', False, tree, text)\n"
        "assert 'libcst' not in sys.modules, 'libcst imported'\n"
    )
    environment = {**os.environ, "PYTHONPATH": str(ROOT)}
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, env=environment)
    assert run.returncode == 0, run.stderr  # the replay of an edited file reads facts, no more


def test_type_alias_binds_its_name_like_the_lowering_on_every_python() -> None:
    found = _facts("type X = int\ntype Y = Annotated[int, Depends(f)]\n")
    assert found.bindings == {"X": UNKNOWN, "Y": UNKNOWN}
    extractor = facts_module._Extractor
    assert hasattr(extractor, "visit_TypeAlias")


@pytest.mark.parametrize(
    "source",
    ['x = t"a" t"{b}"\n', 'x = tr"{b}"\n', "{% if user %}\nx = 1\n{% endif %}\n"],
    ids=["concatenated t-strings", "t before r", "template"],
)
def test_what_libcst_cannot_parse_is_not_lowered(source: str) -> None:
    """libcst 1.9 refuses t-strings concatenated together and the `tr`/`tR`/`TR` prefixes."""
    with pytest.raises((cst.ParserSyntaxError, CSTLogicError)):
        cst.parse_module(source)
    assert lowering.lower(source) is None


def test_a_file_libcst_cannot_parse_keeps_its_error() -> None:
    template = b"{% if user %}\nx = 1\n{% endif %}\n"
    with pytest.raises(SyntaxError) as raised:
        parse_source("page.py", template)
    assert (raised.value.lineno, raised.value.offset) == (1, 2)
    assert lowering.lower(template.decode()) is None


@pytest.mark.skipif(sys.version_info >= (3, 14), reason="this Python reads t-strings itself")
def test_a_file_lowering_cannot_help_keeps_its_original_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(lowering, "lower", lambda text: "def broken(:\n")
    with pytest.raises(SyntaxError) as raised:
        parse_source("m.py", b"x = 1\ny = t'{x}'\n")
    assert raised.value.lineno == 2


# ---- whole runs ---------------------------------------------------------------------------------


def _changed_lines(before: Path, after: Path) -> dict[str, list[tuple[str, int, int, list[str]]]]:
    changes = {}
    for path in sorted(before.rglob("*.py")):
        relative = path.relative_to(before).as_posix()
        old = path.read_text().splitlines()
        new = (after / relative).read_text().splitlines()
        matcher = difflib.SequenceMatcher(a=old, b=new, autojunk=False)
        changes[relative] = [
            (tag, i1, i2, new[j1:j2])
            for tag, i1, i2, j1, j2 in matcher.get_opcodes()
            if tag != "equal"
        ]
    return changes


def test_the_newer_syntax_project_is_checked_and_fixed_as_its_twin() -> None:
    assert (NEWER / "diagnostics.txt").read_text() == (TWIN / "diagnostics.txt").read_text()
    assert (NEWER / "diagnostics.txt").read_text().count("\n") == 6
    newer = _changed_lines(NEWER / "before", NEWER / "after")
    twin = _changed_lines(TWIN / "before", TWIN / "after")
    assert newer == twin
    assert sum(len(edits) for edits in newer.values()) >= 4
    for path in (NEWER / "after").rglob("*.py"):  # the newer syntax is written back unchanged
        before = (NEWER / "before" / path.relative_to(NEWER / "after")).read_text()
        for construct in ("type ", "[T]", "[S]", ", IndexError:", 't"'):
            assert path.read_text().count(construct) == before.count(construct)


def test_a_template_named_py_is_reported_and_the_rest_processed(tmp_path: Path) -> None:
    root = write_tree(
        tmp_path / "p",
        {
            "pyproject.toml": '[project]\nrequires-python = ">=3.14"\n',
            "templates/page.py": "{% if user %}\nx = 1\n{% endif %}\n",
            "app.py": (
                "from fastapi import Depends, FastAPI\n"
                "app = FastAPI()\n"
                "type Token = str\n"
                "def get_db():\n"
                "    return 1\n"
                '@app.get("/")\n'
                "def read(db: int = Depends(get_db)):\n"
                "    try:\n"
                '        return t"{db}"\n'
                "    except KeyError, ValueError:\n"
                "        raise\n"
            ),
        },
    )
    result = run_depfix(root, "check", ".", "--no-cache")
    errors = [line for line in result.err.splitlines() if ": error: " in line]
    assert errors == ["templates/page.py:1:2: error: syntax error: invalid syntax"], result
    assert "app.py:7:10: DF006 parameter `db` uses `Depends(...)`" in result.out, result
    assert result.code == 3, result


@pytest.mark.skipif(sys.version_info >= (3, 14), reason="this Python reads t-strings itself")
def test_cached_results_of_an_older_lowering_are_not_reused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from depfix.cli import main

    root = write_tree(
        tmp_path / "p",
        {
            "pyproject.toml": "",
            "app.py": (
                "from fastapi import Depends, FastAPI\napp = FastAPI()\nToken = t'{app}'\n"
                '@app.get("/")\ndef read(db: int = Depends(f)):\n    return 1\n'
            ),
        },
    )
    past = time.time() - 3600  # a run stores only what changed long enough ago
    for path in root.rglob("*"):
        os.utime(path, (past, past))
    monkeypatch.chdir(root)
    monkeypatch.delenv("DEPFIX_NO_CACHE", raising=False)
    monkeypatch.setattr(engine, "LOWERING", "0")
    with monkeypatch.context() as before:
        before.setattr(lowering, "lower", lambda text: None)  # as a depfix without it
        assert main(["check", ".", "--quiet"]) & 2
    assert main(["check", ".", "--quiet"]) & 2  # the same key: the stored result
    monkeypatch.setattr(engine, "LOWERING", lowering.VERSION)
    assert main(["check", ".", "--quiet"]) == 1


@pytest.mark.skipif(not os.environ.get("DEPFIX_NEWER_PYTHON"), reason="DEPFIX_NEWER_PYTHON not set")
def test_facts_equal_those_a_newer_python_reads() -> None:
    """The facts of every file of the newer-syntax fixture, here and on the newer interpreter.

    That interpreter's `ast` reads what its grammar knows and the lowering the rest (t-strings and
    `except A, B:` before 3.14).
    """
    script = (
        "import sys\n"
        "from depfix.facts import extract_facts, parse_source\n"
        "for path in sys.argv[1:]:\n"
        "    text, tree = parse_source(path, open(path, 'rb').read())\n"
        "    print(repr(extract_facts(path, 'm', False, tree, text)))\n"
    )
    paths = [str(p) for p in sorted((NEWER / "before").rglob("*.py"))]
    paths += [str(p) for p in sorted((NEWER / "after").rglob("*.py"))]
    environment = {**os.environ, "PYTHONPATH": str(ROOT)}
    outputs = []
    for python in (sys.executable, os.environ["DEPFIX_NEWER_PYTHON"]):
        run = subprocess.run(
            [python, "-c", script, *paths], capture_output=True, text=True, env=environment
        )
        assert run.returncode == 0, run.stderr
        outputs.append(run.stdout)
    assert outputs[0].count("FileFacts(") == len(paths)
    assert outputs[0] == outputs[1]


# ---- the declared Python ------------------------------------------------------------------------


def test_a_fix_needing_a_newer_python_than_the_target_is_refused() -> None:
    settings = Settings(target_version=(3, 9))
    match_statement = b"match x:\n    case 1:\n        pass\n"
    problem = engine._newer_than_target("m.py", b"x = 1\n", match_statement, settings)
    assert problem is not None and "Python 3.9 (the target) cannot parse" in problem.message
    # the file needed that Python already, or the target has it: nothing to refuse
    assert engine._newer_than_target("m.py", match_statement, match_statement, settings) is None
    newer = Settings(target_version=(3, 10))
    assert engine._newer_than_target("m.py", b"x = 1\n", match_statement, newer) is None
