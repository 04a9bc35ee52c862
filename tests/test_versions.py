"""The lowest version a declaration admits (depfix/versions.py): every Poetry and PEP 440 form."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import pytest

from depfix.versions import (
    FASTAPI_DISTRIBUTIONS,
    Release,
    file_declarations,
    locked_declarations,
    lowest_declared,
    lowest_in_poetry_constraint,
    lowest_in_poetry_value,
    lowest_in_specifier,
    pyproject_declarations,
    requirement_bound,
)

POETRY = {
    "~0.68.0": (0, 68, 0),
    "~0.68": (0, 68, 0),
    "^0.68.0": (0, 68, 0),
    "0.68.2": (0, 68, 2),  # a bare version is an exact pin
    "==0.68.2": (0, 68, 2),
    "=0.68.2": (0, 68, 2),
    "~=0.68.0": (0, 68, 0),
    "0.68.*": (0, 68, 0),
    ">=0.68,<0.69": (0, 68, 0),
    ">= 0.68, < 0.69": (0, 68, 0),
    ">=0.68 <0.69": (0, 68, 0),
    ">0.95.0": (0, 95, 0),  # versions just above 0.95.0: taken as 0.95.0, never higher
    ">=0.90,>=0.100": (0, 100, 0),  # constraints that must all hold: the highest bound
    "^0.100 || ~0.68.0": (0, 68, 0),  # alternatives: the lowest
    "^0.100 | ~0.68.0": (0, 68, 0),
    "*": None,
    "": None,
    "<0.100": None,  # only an upper bound: arbitrarily old versions are admitted
    "!=0.70.0": None,
    ">=0.100 || <0.50": None,  # one alternative without a lower bound
    "^3.8": (3, 8, 0),
    "3.10.*": (3, 10, 0),
}


@pytest.mark.parametrize(("constraint", "expected"), POETRY.items())
def test_poetry_constraints(constraint: str, expected: Optional[Release]) -> None:
    assert lowest_in_poetry_constraint(constraint) == expected


PEP440 = {
    "~=0.68.0": (0, 68, 0),
    "~=0.68": (0, 68, 0),
    "==0.68.2": (0, 68, 2),
    "===0.68.2": (0, 68, 2),
    "==0.68.*": (0, 68, 0),
    ">=0.68,<0.69": (0, 68, 0),
    ">=0.95.0rc1": (0, 95, 0),
    ">=3.8.*": (3, 8, 0),  # not valid PEP 440, read as its author meant
    "<0.100": None,
    "": None,
}


@pytest.mark.parametrize(("specifier", "expected"), PEP440.items())
def test_pep440_specifiers(specifier: str, expected: Optional[Release]) -> None:
    assert lowest_in_specifier(specifier) == expected


POETRY_VALUES: list[tuple[Any, Optional[Release]]] = [
    ({"version": "~0.68.0", "extras": ["all"]}, (0, 68, 0)),
    ({"version": "0.68.2", "optional": True}, (0, 68, 2)),
    (
        [{"version": ">=0.100", "python": ">=3.8"}, {"version": "^0.68", "python": "<3.8"}],
        (0, 68, 0),
    ),
    ([{"version": ">=0.100", "python": ">=3.8"}, {"version": "<0.68", "python": "<3.8"}], None),
    ({"git": "https://github.com/fastapi/fastapi.git", "tag": "0.68.2"}, None),
    ({"path": "../fastapi"}, None),
]


@pytest.mark.parametrize(("value", "expected"), POETRY_VALUES)
def test_poetry_values(value: Any, expected: Optional[Release]) -> None:
    assert lowest_in_poetry_value(value) == expected


REQUIREMENTS: list[tuple[str, bool, Optional[Release]]] = [
    ("fastapi[all]~=0.68.0", True, (0, 68, 0)),
    ("fastapi[standard]>=0.100", True, (0, 100, 0)),
    ("FastAPI == 0.68.2 ; python_version < '3.8'  # pinned", True, (0, 68, 2)),
    ("fastapi==0.68.2 --hash=sha256:0123", True, (0, 68, 2)),
    ("fastapi-slim>=0.111", True, (0, 111, 0)),
    ("fastapi", True, None),
    ("fastapi @ https://example.com/fastapi-0.68.2-py3-none-any.whl", True, None),
    ("fastapi-users>=10", False, None),
    ("-r base.txt", False, None),
    ("# fastapi==0.68.2", False, None),
]


@pytest.mark.parametrize(("line", "named", "expected"), REQUIREMENTS)
def test_requirement_lines(line: str, named: bool, expected: Optional[Release]) -> None:
    assert requirement_bound(line, FASTAPI_DISTRIBUTIONS) == (named, expected)


def test_every_pyproject_table_is_read() -> None:
    document: dict[str, Any] = {
        "project": {
            "dependencies": ["uvicorn"],
            "optional-dependencies": {"server": ["fastapi>=0.110"]},
        },
        "dependency-groups": {"test": ["fastapi==0.109.0", {"include-group": "server"}]},
        "tool": {
            "poetry": {
                "dependencies": {"python": "^3.8"},
                "dev-dependencies": {"FastAPI": "0.108.0"},
                "group": {"web": {"dependencies": {"fastapi": "~0.107.0"}}},
            },
            "pdm": {"dev-dependencies": {"web": ["fastapi>=0.106"]}},
            "uv": {"dev-dependencies": ["fastapi>=0.105"]},
            "hatch": {"envs": {"default": {"extra-dependencies": ["fastapi>=0.104"]}}},
        },
    }
    found = [bound for _, bound in pyproject_declarations(document, "p")]
    assert found == [
        (0, 110, 0),
        (0, 109, 0),
        (0, 108, 0),
        (0, 107, 0),
        (0, 106, 0),
        (0, 105, 0),
        (0, 104, 0),
    ]
    assert lowest_declared(pyproject_declarations(document, "p")) == (
        (0, 104, 0),
        "p [tool.hatch.envs.default] extra-dependencies",
    )


def test_files_beside_pyproject_are_read(tmp_path: Path) -> None:
    (tmp_path / "requirements").mkdir()
    (tmp_path / "requirements-dev.txt").write_text("pytest\nfastapi>=0.103 \\\n  --hash=sha256:1\n")
    (tmp_path / "requirements" / "prod.in").write_text("fastapi==0.102.0\n")
    (tmp_path / "setup.cfg").write_text(
        "[options]\ninstall_requires =\n    fastapi~=0.101.0\n    uvicorn\n"
    )
    (tmp_path / "setup.py").write_text(
        "from setuptools import setup\nsetup(name='x', install_requires=['fastapi>=0.100'])\n"
    )
    (tmp_path / "Pipfile").write_text('[packages]\nfastapi = {version = "==0.99.0"}\n')
    found = {
        Path(origin.split(" ")[0]).name: bound for origin, bound in file_declarations(tmp_path)
    }
    assert found == {
        "requirements-dev.txt": (0, 103, 0),
        "prod.in": (0, 102, 0),
        "setup.cfg": (0, 101, 0),
        "setup.py": (0, 100, 0),
        "Pipfile": (0, 99, 0),
    }


def test_declarations_without_a_bound_leave_the_version_unknown() -> None:
    document = {"project": {"dependencies": ["fastapi"]}, "tool": {"poetry": {}}}
    assert lowest_declared(pyproject_declarations(document, "p")) == (None, "default")
    unbounded_and_bounded = [("a", None), ("b", (0, 100, 0))]
    assert lowest_declared(unbounded_and_bounded) == ((0, 100, 0), "b")


def test_lock_files_pin_the_version(tmp_path: Path) -> None:
    (tmp_path / "poetry.lock").write_text(
        '[[package]]\nname = "fastapi"\nversion = "0.68.2"\n\n'
        '[[package]]\nname = "starlette"\nversion = "0.14.2"\n'
    )
    (tmp_path / "uv.lock").write_text(
        'version = 1\n[[package]]\nname = "fastapi"\nversion = "0.110.0"\n'
        '[[package]]\nname = "FastAPI"\nversion = "0.99.1"\n'
    )
    (tmp_path / "Pipfile.lock").write_text(
        '{"default": {"fastapi": {"version": "==0.70.1"}}, "develop": {}}'
    )
    found = sorted(bound for _, bound in locked_declarations(tmp_path) if bound is not None)
    assert found == [(0, 68, 2), (0, 70, 1), (0, 99, 1), (0, 110, 0)]
    assert (
        lowest_declared(locked_declarations(tmp_path))[1] == f"{tmp_path / 'poetry.lock'} (locked)"
    )
