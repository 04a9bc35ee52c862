"""Suppression comments through the real entry point (`depfix.cli.main`), beyond the basic forms in
test_cli: code lists, prefixes, the `def` line covering the body, comments versus strings, and
`--no-suppress` auditing every form.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from depfix.cli import main

PYPROJECT = '[project]\nname = "demo"\nrequires-python = ">=3.9"\n'

SOURCE = """\
from fastapi import Depends, FastAPI, Query
from sqlalchemy.orm import sessionmaker

SessionLocal = sessionmaker()
app = FastAPI()


def get_db():  # depfix: ignore[DF002]
    db = SessionLocal()
    yield db
    db.close()


def get_other():
    db = SessionLocal()
    yield db
    db.close()


@app.get("/a")
def both(db=Depends(get_db()), q: str = Query(None)):  # depfix: ignore[DF005, df006]
    return db


@app.get("/b")
def only_one(db=Depends(get_db()), q: str = Query(None)):  # depfix: ignore[DF006]
    return db


@app.get("/c")
def prefix(db=Depends(get_db()), q: str = Query(None)):  # depfix: ignore[DF00]
    return db


@app.get("/e")
def uses(a=Depends(get_db), b=Depends(get_other)):
    return a, b


@app.get("/d")
def in_string(db=Depends(get_db()), q: str = "# depfix: ignore"):
    return db
"""


def line_of(text: str) -> int:
    (number,) = [n for n, line in enumerate(SOURCE.splitlines(), 1) if text in line]
    return number


GUARDED, UNGUARDED = line_of("def get_db"), line_of("def get_other")
BOTH, ONLY_ONE, PREFIX, IN_STRING = map(
    line_of, ("def both", "def only_one", "def prefix", "def in_string")
)


def check(root: Path, capsys: pytest.CaptureFixture[str], *args: str) -> set[tuple[int, str]]:
    code = main(["check", "--format", "json", "--select", "DF002,DF005,DF006", *args])
    document = json.loads(capsys.readouterr().out)
    assert code == (1 if document["diagnostics"] else 0)
    return {(d["line"], d["code"]) for d in document["diagnostics"]}


def test_ignore_forms(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "pyproject.toml").write_text(PYPROJECT)
    (tmp_path / "app.py").write_text(SOURCE)
    monkeypatch.chdir(tmp_path)
    audit = check(tmp_path, capsys, "--no-suppress")
    # without suppression every site is reported: DF002 twice, DF005 and DF006 on each route
    assert {code for _, code in audit} == {"DF002", "DF005", "DF006"}
    assert {line for line, code in audit if code == "DF002"} == {GUARDED + 2, UNGUARDED + 2}
    for line in (BOTH, ONLY_ONE, PREFIX, IN_STRING):
        assert {(line, "DF005"), (line, "DF006")} <= audit
    suppressed = check(tmp_path, capsys)
    assert audit - suppressed == {
        (GUARDED + 2, "DF002"),  # the ignore on the `def` line covers the body
        (BOTH, "DF005"),  # a list of codes, case and spaces tolerated
        (BOTH, "DF006"),
        (ONLY_ONE, "DF006"),  # only the code named
        (PREFIX, "DF005"),  # a prefix
        (PREFIX, "DF006"),
    }
    assert (IN_STRING, "DF005") in suppressed  # a string is not a comment


def test_apply_keeps_suppressed_sites_and_fixes_the_rest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "pyproject.toml").write_text(PYPROJECT)
    (tmp_path / "app.py").write_text(SOURCE)
    monkeypatch.chdir(tmp_path)
    assert main(["apply", "--select", "DF005"]) == 1
    capsys.readouterr()
    lines = (tmp_path / "app.py").read_text().splitlines()
    assert "Depends(get_db())" in lines[BOTH - 1]  # ignored for DF005
    assert "Depends(get_db)," in lines[ONLY_ONE - 1]  # only DF006 ignored: DF005 fixed
    assert "Depends(get_db())" in lines[PREFIX - 1]  # the DF00 prefix
    assert "Depends(get_db)," in lines[IN_STRING - 1]


def test_skip_file_anywhere_and_no_suppress(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "pyproject.toml").write_text(PYPROJECT)
    skipped = SOURCE + "\n# depfix: skip-file\n"
    (tmp_path / "app.py").write_text(skipped)
    monkeypatch.chdir(tmp_path)
    assert check(tmp_path, capsys) == set()
    assert main(["apply"]) == 0
    capsys.readouterr()
    assert (tmp_path / "app.py").read_text() == skipped
    assert {code for _, code in check(tmp_path, capsys, "--no-suppress")} == {
        "DF002",
        "DF005",
        "DF006",
    }
