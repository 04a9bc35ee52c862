"""DF011 on a running app: with scope="function" the background task sees the resource closed."""

from __future__ import annotations

import ast
import importlib.util
import sys
import textwrap
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from depfix.cli import main
from depfix.facts import extract_facts

APP = textwrap.dedent(
    """
    from typing import Annotated

    from fastapi import BackgroundTasks, Depends, FastAPI

    SEEN = []
    app = FastAPI()


    class Resource:
        closed = False


    def get_resource():
        resource = Resource()
        try:
            yield resource
        finally:
            resource.closed = True


    def record(resource, scope):
        SEEN.append((scope, resource.closed))


    @app.post("/function")
    def function_scope(tasks: BackgroundTasks, res: Annotated[Resource, Depends(get_resource, scope="function")]):
        tasks.add_task(record, res, "function")


    @app.post("/request")
    def request_scope(tasks: BackgroundTasks, res: Resource = Depends(get_resource)):
        tasks.add_task(record, res, scope="request")
    """
)


def test_the_task_sees_a_closed_resource_only_with_function_scope(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "pyproject.toml").write_text("")
    app_file = tmp_path / "service.py"
    app_file.write_text(APP)
    spec = importlib.util.spec_from_file_location("depfix_df011_app", app_file)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["depfix_df011_app"] = module
    spec.loader.exec_module(module)
    with TestClient(module.app) as client:
        client.post("/function")
        client.post("/request")
    assert module.SEEN == [("function", True), ("request", False)]

    monkeypatch.chdir(tmp_path)
    assert main(["check", ".", "--select", "DF011", "--quiet"]) == 1
    report = capsys.readouterr().out.splitlines()
    assert len(report) == 2
    assert "closed resource" in report[0] and 'scope="function"' in report[0]
    assert "holds it until the task ends" in report[1]


def test_facts_record_what_may_reach_add_task() -> None:
    """`FunctionFact.task_sources`, which DF011's gate reads: argument roots and what they copy."""
    text = textwrap.dedent(
        """
        def route(tasks, db, other, unrelated):
            tasks.add_task(send, *later, key=alias.execute)
            alias = db
            later = copy
            copy = other.rows
            chained = unrelated
            tasks.add_task(lambda: chained)

            def inner(x):
                tasks.add_task(send, x)
        """
    )
    facts = extract_facts("m.py", "m", False, ast.parse(text), text)
    assert facts.functions["route"].task_sources == (
        "alias",
        "copy",
        "db",
        "later",
        "other",
        "send",
    )
    assert facts.functions["route.<locals>.inner"].task_sources == ("send", "x")
