"""Property tests: depfix, run in-process on generated programs, keeps the promises of SPEC.md.

- On arbitrary Python (hypothesmith's grammar-based programs): no internal error, an exit code in
  {0, 1, 2, 3}, untouched files byte-identical, every output still compiles.
- On generated FastAPI-shaped programs: the output compiles, a second run changes nothing, and the
  rewritten module imports wherever the original imported.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import os
import sys
import tempfile
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path

import hypothesmith
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from depfix.cli import main
from tests.conftest import compiles

PYPROJECT = '[project]\nname = "prop"\nrequires-python = ">=3.9"\n'


@contextlib.contextmanager
def chdir(path: Path) -> Iterator[None]:
    """Change directory and restore it (monkeypatch is function-scoped: unusable under @given)."""
    before = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(before)


class _Stream(io.TextIOWrapper):
    """A text stream with a `.buffer`, as depfix writes diffs to `sys.stdout.buffer`."""

    def __init__(self) -> None:
        super().__init__(io.BytesIO(), encoding="utf-8", write_through=True)

    def value(self) -> str:
        self.flush()
        return self.buffer.getvalue().decode("utf-8", "replace")  # type: ignore[attr-defined]


def run_in_process(root: Path, *args: str) -> tuple[int, str, str]:
    """`depfix ARGS` in `root`, in this process: (exit code, stdout, stderr)."""
    out, err = _Stream(), _Stream()
    # libcst/compile may warn about the generated program's own oddities (escape sequences, `is`
    # with a literal): those are the input's, not depfix's
    with contextlib.ExitStack() as stack:  # (parenthesised `with` needs Python 3.10)
        for manager in (
            chdir(root),
            contextlib.redirect_stdout(out),
            contextlib.redirect_stderr(err),
            warnings.catch_warnings(),
        ):
            stack.enter_context(manager)  # type: ignore[arg-type]
        warnings.simplefilter("ignore", SyntaxWarning)
        code = main(list(args))
    return code, out.value(), err.value()


def tree(root: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(root)): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file() and "__pycache__" not in path.parts
    }


# ---- 1a: arbitrary Python from the grammar ----------------------------------------------------


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@given(source=hypothesmith.from_grammar().filter(compiles))
def test_arbitrary_python_is_never_an_internal_error(source: str) -> None:
    with tempfile.TemporaryDirectory() as temp:
        root = Path(temp)
        (root / "pyproject.toml").write_text(PYPROJECT)
        (root / "m.py").write_bytes(source.encode("utf-8"))
        before = tree(root)

        code, preview, err = run_in_process(root, "apply", ".", "--dry-run", "--quiet", "--unsafe")
        assert code in {0, 1, 2, 3}, err
        assert "internal error" not in err
        assert tree(root) == before, "--dry-run wrote"

        code, _, err = run_in_process(root, "apply", ".", "--quiet", "--unsafe")
        assert code in {0, 1, 2, 3}, err
        assert "internal error" not in err
        after = tree(root)
        assert after["pyproject.toml"] == before["pyproject.toml"]
        if not preview:  # no rule touches the program: it comes back byte-identical
            assert after == before
        for name, data in after.items():
            if name.endswith(".py"):
                assert compiles(data), f"{name} no longer compiles:\n{data.decode()}"


# ---- 1b: FastAPI-shaped programs --------------------------------------------------------------

IDENT = st.sampled_from(["D", "Dep", "Q", "F", "R", "fa", "fastapi_", "Inject", "Qry"])
COMMENT = st.sampled_from(["", "", "  # note", "  # depends on db", "  # TODO: Query(None)"])


@st.composite
def fastapi_programs(draw: st.DrawFn) -> str:
    lines: list[str] = []
    # -- imports --------------------------------------------------------------------------------
    style = draw(st.sampled_from(["from", "from-alias", "module", "module-alias"]))
    if style == "from":
        names = {n: n for n in ("Depends", "FastAPI", "APIRouter", "Query")}
        lines.append("from fastapi import APIRouter, Depends, FastAPI, Query")
    elif style == "from-alias":
        aliases = draw(st.lists(IDENT, min_size=4, max_size=4, unique=True))
        names = dict(zip(("Depends", "FastAPI", "APIRouter", "Query"), aliases))
        lines.append(
            "from fastapi import ("
            + ", ".join(f"{k} as {v}" for k, v in names.items())
            + ",)"
            + draw(COMMENT)
        )
    else:
        module = "fastapi" if style == "module" else draw(st.sampled_from(["fa", "f_api", "api"]))
        lines.append("import fastapi" if style == "module" else f"import fastapi as {module}")
        names = {n: f"{module}.{n}" for n in ("Depends", "FastAPI", "APIRouter", "Query")}
    typing_style = draw(st.sampled_from(["from", "module", "ext"]))
    if typing_style == "from":
        lines.append("from typing import Annotated, Optional")
        annotated, optional = "Annotated", "Optional"
    elif typing_style == "module":
        lines.append("import typing as t")
        annotated, optional = "t.Annotated", "t.Optional"
    else:
        lines.append("import typing")
        annotated, optional = "typing.Annotated", "typing.Optional"
    use_session = draw(st.booleans())
    if use_session:
        lines.append("from sqlalchemy.orm import Session" + draw(COMMENT))
    types = ["int", "str", "dict", "object"] + (["Session"] if use_session else [])
    lines.append("")
    # -- the app or router ----------------------------------------------------------------------
    owner = draw(st.sampled_from(["app", "router", "api"]))
    factory = (
        names["FastAPI"]
        if owner == "app"
        else draw(st.sampled_from([names["APIRouter"], names["FastAPI"]]))
    )
    lines.append(f"{owner} = {factory}()" + draw(COMMENT))
    lines.append("")
    # -- dependencies ---------------------------------------------------------------------------
    deps = draw(
        st.lists(
            st.sampled_from(["get_db", "get_user", "get_settings", "common"]),
            min_size=1,
            max_size=3,
            unique=True,
        )
    )
    kinds: dict[str, str] = {}
    for dep in deps:
        kind = draw(st.sampled_from(["gen", "gen-finally", "async-gen", "async", "plain"]))
        kinds[dep] = kind
        ret = draw(st.sampled_from(types))
        value = {"int": "1", "str": "'x'", "dict": "{}", "object": "object()", "Session": "None"}[
            ret
        ]
        lines.append("")
        if kind == "gen":
            lines += [f"def {dep}():" + draw(COMMENT), f"    yield {value}"]
        elif kind == "gen-finally":
            lines += [
                f"def {dep}():",
                f"    resource = {value}" + draw(COMMENT),
                "    try:",
                "        yield resource",
                "    finally:",
                "        del resource",
            ]
        elif kind == "async-gen":
            lines += [f"async def {dep}():", f"    yield {value}"]
        elif kind == "async":
            lines += [f"async def {dep}():", f"    return {value}"]
        else:
            lines += [
                f"def {dep}(){draw(st.sampled_from(['', ' -> ' + ret]))}:",
                f"    return {value}",
            ]
        lines.append("")
    # -- routes ---------------------------------------------------------------------------------
    for number in range(draw(st.integers(1, 4))):
        params: list[tuple[str, bool]] = []  # (text, has a default)
        for index in range(draw(st.integers(0, 5))):
            name = f"p{index}"
            dep = draw(st.sampled_from(deps))
            T = draw(st.sampled_from(types))
            form = draw(st.integers(0, 10))
            D, Q = names["Depends"], names["Query"]
            if form == 0:
                params.append((f"{name}: {T} = {D}({dep})", True))
            elif form == 1:
                params.append((f"{name} = {D}({dep})", True))
            elif form == 2:
                params.append((f"{name}: {T} = {D}({dep}())", True))
            elif form == 3:
                params.append((f"{name}: {optional}[str] = {Q}(None)", True))
            elif form == 4:
                extra = draw(st.sampled_from(["max_length=5", "alias='q'", "description='d'"]))
                params.append((f"{name}: str = {Q}(None, {extra})", True))
            elif form == 5:
                params.append((f"{name}: {annotated}[{T}, {D}({dep})]", False))
            elif form == 6:
                params.append((f"{name}: {annotated}[str, {Q}()] = 'x'", True))
            elif form == 7 and use_session:
                params.append(
                    ("db: Session", False) if "db" not in str(params) else (f"{name}: int", False)
                )
            elif form == 8:
                params.append((f"{name}: int = {index}", True))
            elif form == 9:
                params.append((f"{name}: {T} = {D}({dep}, use_cache=False)", True))
            else:
                params.append((f"{name}: int", False))
        # a valid order: a `*` before the first required parameter that follows an optional one,
        # or the required ones first
        fix = draw(st.sampled_from(["star", "sort", "star-first"]))
        if fix == "sort":
            params.sort(key=lambda p: p[1])
            texts = [p[0] for p in params]
        elif fix == "star-first" and params:
            texts = ["*"] + [p[0] for p in params]
        else:
            texts, seen_default, starred = [], False, False
            for text, has_default in params:
                if not has_default and seen_default and not starred:
                    texts.append("*")
                    starred = True
                seen_default = seen_default or has_default
                texts.append(text)
        prefix = draw(st.sampled_from(["def", "async def"]))
        method = draw(st.sampled_from(["get", "post", "put"]))
        lines.append(f'@{owner}.{method}("/r{number}")' + draw(COMMENT))
        if draw(st.booleans()):
            lines.append(f"{prefix} route_{number}(" + ", ".join(texts) + "):" + draw(COMMENT))
        else:
            lines.append(f"{prefix} route_{number}(")
            for text in texts:
                lines.append(f"    {text}," + draw(COMMENT))
            lines.append("):")
        lines += ["    return None", ""]
    return "\n".join(lines) + "\n"


def import_module(path: Path) -> BaseException | None:
    """Execute `path` as a fresh module; return what it raised, if anything."""
    name = f"depfix_prop_{uuid.uuid4().hex}"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            spec.loader.exec_module(module)
    except Exception as error:  # the property compares outcomes, whatever they are
        return error
    finally:
        sys.modules.pop(name, None)
    return None


@settings(
    max_examples=45,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@given(source=fastapi_programs())
def test_fastapi_programs_fix_idempotently_and_still_import(source: str) -> None:
    assume(compiles(source))
    with tempfile.TemporaryDirectory() as temp:
        root = Path(temp)
        (root / "pyproject.toml").write_text(PYPROJECT)
        (root / "m.py").write_text(source)
        original_outcome = import_module(root / "m.py")

        code, _, err = run_in_process(root, "apply", ".", "--quiet", "--unsafe")
        assert code in {0, 1}, err
        assert "internal error" not in err
        first = tree(root)
        for name, data in first.items():
            if name.endswith(".py"):
                assert compiles(data), f"{name} does not compile:\n{data.decode()}"

        code, out, err = run_in_process(root, "apply", ".", "--dry-run", "--quiet", "--unsafe")
        assert "internal error" not in err
        assert out == "", f"second run still changes:\n{out}"
        assert tree(root) == first

        if original_outcome is None:
            rewritten = import_module(root / "m.py")
            assert rewritten is None, (
                f"original imported, rewritten raised {rewritten!r}\n--- before\n{source}"
                f"--- after\n{first['m.py'].decode()}"
            )
