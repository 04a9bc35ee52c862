"""The gates of DF002 and DF003: `wants` reads the shape each rule fixes from the facts.

For each dependency body, the gate's answer is pinned and compared with what the rule reports: a gate
may over-approximate, never turn a finding away.
"""

from __future__ import annotations

import ast
import textwrap
from pathlib import Path

import libcst as cst
import pytest

from codemods.guard_yield_dependency import GuardYieldDependency
from codemods.reraise_in_yield_dependency import ReraiseInYieldDependency
from depfix.config import Settings
from depfix.engine import _jobs_for, _run_rules, build_index
from depfix.facts import extract_facts
from depfix.rules import FileContext, FileRule

HEADER = """\
import httpx
from fastapi import Depends, FastAPI
from sqlalchemy.orm import Session, sessionmaker

SessionLocal = sessionmaker()
app = FastAPI()


"""
ROUTE = """


@app.get("/")
def root(value=Depends(dependency)):
    return {}
"""


def _gate_and_findings(
    rule: type[FileRule], body: str, tmp_path: Path, settings: Settings
) -> tuple[bool, int]:
    text = HEADER + textwrap.dedent(body).strip() + ROUTE
    path = tmp_path / "app.py"
    path.write_text(text)
    jobs = _jobs_for([path], tmp_path, tmp_path)
    facts = extract_facts(jobs[0].path, jobs[0].module, False, ast.parse(text), text)
    index = build_index(jobs, [facts])
    context = FileContext(facts.path, facts, index, settings)
    found = _run_rules(cst.parse_module(text), [rule], context)
    return rule.wants(facts, index), len(found)


GUARD_CASES = {
    "cleanup after yield": (
        """
        def dependency():
            db = SessionLocal()
            yield db
            db.close()
        """,
        True,
    ),
    "only a commit after yield": (
        """
        def dependency():
            db = SessionLocal()
            yield db
            db.commit()  # nothing to release
        """,
        False,
    ),
    "an awaited commit only": (
        """
        async def dependency():
            db = SessionLocal()
            yield db
            await db.commit()
        """,
        False,
    ),
    "a commit sharing its line": (
        """
        def dependency():
            db = SessionLocal()
            yield db
            db.commit(); db.close()
        """,
        True,
    ),
    "a commit continued from the line before": (
        """
        def dependency():
            db = SessionLocal()
            yield db
            db.flush(); \\
            db.commit()
        """,
        True,
    ),
    "a commit of another name": (
        """
        def dependency():
            db = SessionLocal()
            yield db
            other.commit()
        """,
        True,
    ),
    "a return after yield": (
        """
        def dependency():
            db = SessionLocal()
            yield db
            if db:
                return
        """,
        False,
    ),
    "two yields": (
        """
        def dependency():
            yield 1
            yield 2
        """,
        False,
    ),
    "already in try/finally": (
        """
        def dependency():
            db = SessionLocal()
            try:
                yield db
            finally:
                db.close()
        """,
        False,
    ),
    "a yield in a nested function only counts there": (
        """
        def dependency():
            def inner():
                yield 1
            yield inner
            cleanup()
        """,
        True,
    ),
    "a session yielded in with": (
        """
        def dependency():
            with SessionLocal() as db:
                yield db
        """,
        True,
    ),
    "a client yielded in with": (
        """
        def dependency():
            with httpx.Client() as client:
                yield client
        """,
        False,
    ),
}


@pytest.mark.parametrize("yield_commit", [False, True])
@pytest.mark.parametrize("case", sorted(GUARD_CASES))
def test_df002_gate(case: str, yield_commit: bool, tmp_path: Path) -> None:
    body, wanted = GUARD_CASES[case]
    settings = Settings(yield_commit=yield_commit)
    gate, found = _gate_and_findings(GuardYieldDependency, body, tmp_path, settings)
    assert gate == wanted
    # the gate cannot see `yield-commit`: a session in `with` lets the rule in, which reports only
    # with that setting
    assert bool(found) == (gate and (yield_commit or "in with" not in case))


RERAISE_CASES = {
    "a handler that logs": (
        """
        def dependency():
            try:
                yield 1
            except ValueError:
                log()
        """,
        True,
    ),
    "a handler that raises": (
        """
        def dependency():
            try:
                yield 1
            except ValueError:
                raise RuntimeError()
        """,
        False,
    ),
    "a raise only in a nested function": (
        """
        def dependency():
            try:
                yield 1
            except ValueError:
                def fail():
                    raise
                fail
        """,
        True,
    ),
    "a try without a yield": (
        """
        def dependency():
            try:
                value = 1
            except ValueError:
                value = 2
            yield value
        """,
        False,
    ),
    "try/finally only": (
        """
        def dependency():
            try:
                yield 1
            finally:
                log()
        """,
        False,
    ),
    "a nested generator's handler": (
        """
        def dependency():
            def inner():
                try:
                    yield 1
                except ValueError:
                    log()
            yield from inner()
        """,
        False,
    ),
}


@pytest.mark.parametrize("case", sorted(RERAISE_CASES))
def test_df003_gate(case: str, tmp_path: Path) -> None:
    body, wanted = RERAISE_CASES[case]
    gate, found = _gate_and_findings(ReraiseInYieldDependency, body, tmp_path, Settings())
    assert gate == wanted
    assert bool(found) == gate
