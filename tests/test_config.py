"""Configuration through the real entry point (`depfix.cli.main`): `depfix config` prints the merged
settings with the origin of each value; every `[tool.depfix]` key of SPEC is read, validated loudly
(exit 2, one line naming the key) and acts on a run.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

from depfix.cli import main
from depfix.config import KEYS, load_settings, with_project_facts

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
PROJECT = (
    '[project]\nname = "shop"\nrequires-python = ">=3.10"\ndependencies = ["fastapi>=0.112.2"]\n'
)
SPEC_KEYS = (
    "select",
    "ignore",
    "exclude",
    "target-version",
    "dependencies-module",
    "alias-min-uses",
    "unsafe",
    "yield-commit",
)


def depfix(
    root: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, *args: str
) -> tuple[int, str, str]:
    monkeypatch.chdir(root)
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def config_json(
    root: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, *args: str
) -> dict[str, Any]:
    code, out, err = depfix(root, capsys, monkeypatch, "config", "--format", "json", *args)
    assert code == 0, err
    document: dict[str, Any] = json.loads(out)
    return document


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def test_every_spec_key_is_known() -> None:
    assert KEYS == SPEC_KEYS


def test_defaults_and_project_facts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    root = write(tmp_path, {"pyproject.toml": PROJECT})
    document = config_json(root, capsys, monkeypatch)
    assert document["settings"] == {
        "select": ["ALL"],
        "ignore": [],
        "exclude": [],
        "target-version": "py310",
        "dependencies-module": None,
        "alias-min-uses": 2,
        "unsafe": False,
        "yield-commit": False,
    }
    assert document["fastapi_version"] == "0.112.2"
    origins = document["origins"]
    assert origins["target-version"] == f"requires-python in {root / 'pyproject.toml'}"
    assert origins["fastapi-version"] == f"{root / 'pyproject.toml'} [project] dependencies"
    assert {key for key, origin in origins.items() if origin == "default"} == set(KEYS) - {
        "target-version"
    }


def test_fastapi_version_from_requirements_txt(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    root = write(
        tmp_path,
        {
            "pyproject.toml": '[project]\nname = "x"\n',
            "requirements.txt": "uvicorn\nfastapi[standard]==0.99.1  # pinned\n",
        },
    )
    document = config_json(root, capsys, monkeypatch)
    assert document["fastapi_version"] == "0.99.1"
    assert document["origins"]["fastapi-version"] == str(root / "requirements.txt")
    assert document["settings"]["target-version"] == "py39"  # nothing says otherwise


POETRY_PROJECT = '[tool.poetry]\nname = "app"\nversion = "0.1.0"\n\n[tool.poetry.dependencies]\n'
DECLARED_FASTAPI = {
    "poetry-tilde": (POETRY_PROJECT + 'fastapi = "~0.68.0"\n', "0.68.0"),
    "poetry-bare-exact": (POETRY_PROJECT + 'fastapi = "0.68.2"\n', "0.68.2"),
    "poetry-table": (
        POETRY_PROJECT + 'fastapi = {version = "~0.68.0", extras = ["all"]}\n',
        "0.68.0",
    ),
    "poetry-alternatives": (POETRY_PROJECT + 'fastapi = "^0.100 || ~0.68.0"\n', "0.68.0"),
    "poetry-star": (POETRY_PROJECT + 'fastapi = "*"\n', None),
    "pep621-compatible": (
        '[project]\nname = "x"\ndependencies = ["fastapi[all]~=0.68.0"]\n',
        "0.68.0",
    ),
    "pep621-extra": (
        '[project]\nname = "x"\n[project.optional-dependencies]\nweb = ["fastapi==0.68.2"]\n',
        "0.68.2",
    ),
    "dependency-group": ('[dependency-groups]\ndev = ["fastapi>=0.68,<0.69"]\n', "0.68.0"),
    "only-upper-bound": ('[project]\nname = "x"\ndependencies = ["fastapi<0.100"]\n', None),
}


@pytest.mark.parametrize(
    ("pyproject", "expected"), DECLARED_FASTAPI.values(), ids=list(DECLARED_FASTAPI)
)
def test_fastapi_version_in_every_declared_form(
    pyproject: str,
    expected: str | None,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The lowest version the declaration admits; none (or `*`) is unknown, whatever is installed."""
    root = write(tmp_path, {"pyproject.toml": pyproject})
    document = config_json(root, capsys, monkeypatch)
    assert document["fastapi_version"] == expected


def test_lowest_bound_among_declaration_files_wins(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    root = write(
        tmp_path,
        {
            "pyproject.toml": '[project]\nname = "x"\ndependencies = ["fastapi>=0.100"]\n',
            "requirements/docker.txt": "fastapi==0.68.2\n",
        },
    )
    document = config_json(root, capsys, monkeypatch)
    assert document["fastapi_version"] == "0.68.2"
    assert document["origins"]["fastapi-version"] == str(root / "requirements" / "docker.txt")


@pytest.mark.parametrize(
    ("declared", "expected"), [('"*"', "0.68.2"), ('"^0.100"', "0.100.0")], ids=["star", "bounded"]
)
def test_lock_file_only_when_no_declaration_bounds_fastapi(
    declared: str,
    expected: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    lock = '[[package]]\nname = "fastapi"\nversion = "0.68.2"\n'
    if expected != "0.68.2":
        lock = lock.replace("0.68.2", "0.110.0")
    root = write(
        tmp_path,
        {"pyproject.toml": POETRY_PROJECT + f"fastapi = {declared}\n", "poetry.lock": lock},
    )
    assert config_json(root, capsys, monkeypatch)["fastapi_version"] == expected


def test_poetry_fixture_project_facts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The DF006 fixture of a Poetry project on FastAPI ~0.68.0 and Python ^3.8 (finding 3)."""
    root = tmp_path / "project"
    shutil.copytree(FIXTURES / "DF006" / "fastapi_poetry_tilde" / "before", root)
    code, out, err = depfix(root, capsys, monkeypatch, "config")
    assert code == 0, err
    pyproject = root / "pyproject.toml"
    assert f'target-version = "py38"  # python in {pyproject} [tool.poetry.dependencies]' in out
    assert f"# FastAPI version: 0.68.0  # {pyproject} [tool.poetry.dependencies]" in out


@pytest.mark.parametrize(
    ("pyproject", "expected"),
    [
        (POETRY_PROJECT + 'python = "^3.8"\n', "py38"),
        (POETRY_PROJECT + 'python = ">=3.11,<4.0"\n', "py311"),
        (POETRY_PROJECT + 'python = "~3.10"\n', "py310"),
        (
            '[project]\nname = "x"\nrequires-python = "~=3.12"\n'
            + POETRY_PROJECT
            + 'python = "^3.10"\n',
            "py310",
        ),
        ('[project]\nname = "x"\nrequires-python = ">=2.7"\n', "py38"),
        ('[project]\nname = "x"\nrequires-python = "<3.13"\n', "py39"),  # no lower bound: default
    ],
    ids=["poetry-caret", "poetry-range", "poetry-tilde", "both-lowest", "python-2", "upper-only"],
)
def test_target_version_from_the_declared_python(
    pyproject: str,
    expected: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    root = write(tmp_path, {"pyproject.toml": pyproject})
    assert config_json(root, capsys, monkeypatch)["settings"]["target-version"] == expected


def test_every_key_from_pyproject_then_flags_win(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    table = (
        "[tool.depfix]\n"
        'select = ["DF00"]\nignore = ["DF007"]\nexclude = ["migrations/", "*_pb2.py"]\n'
        'target-version = "py311"\ndependencies-module = "app.shared"\nalias-min-uses = 3\n'
        "unsafe = true\nyield-commit = true\n"
    )
    root = write(tmp_path, {"pyproject.toml": PROJECT + table})
    document = config_json(root, capsys, monkeypatch)
    assert document["settings"] == {
        "select": ["DF00"],
        "ignore": ["DF007"],
        "exclude": ["migrations/", "*_pb2.py"],
        "target-version": "py311",
        "dependencies-module": "app.shared",
        "alias-min-uses": 3,
        "unsafe": True,
        "yield-commit": True,
    }
    where = f"{root / 'pyproject.toml'} [tool.depfix]"
    assert all(document["origins"][key] == where for key in KEYS)
    flagged = config_json(
        root, capsys, monkeypatch, "--select", "DF005,DF006", "--target-version", "py312"
    )
    assert flagged["settings"]["select"] == ["DF005", "DF006"]
    assert flagged["settings"]["target-version"] == "py312"
    assert flagged["origins"]["select"] == "--select"
    assert flagged["origins"]["target-version"] == "--target-version"
    assert flagged["origins"]["ignore"] == where


def test_toml_output_is_valid_and_round_trips_through_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    table = '[tool.depfix]\nignore = ["DF01"]\nexclude = ["a \\"b\\"/"]\nyield-commit = true\n'
    root = write(tmp_path, {"pyproject.toml": PROJECT + table})
    code, out, err = depfix(root, capsys, monkeypatch, "config", "--select", "DF002")
    assert code == 0, err
    assert 'select = ["DF002"]  # --select\n' in out
    assert f"# {root / 'pyproject.toml'} [tool.depfix]" in out
    assert "# FastAPI version: 0.112.2" in out
    parsed = tomllib.loads(out)["tool"]["depfix"]
    assert parsed["exclude"] == ['a "b"/']
    # the printed table, used as a --config file, gives the same settings
    (root / "printed.toml").write_text(out)
    again = config_json(root, capsys, monkeypatch, "--config", "printed.toml")
    first = config_json(root, capsys, monkeypatch, "--select", "DF002")
    assert again["settings"] == first["settings"]
    assert again["config_file"] == "printed.toml"


def test_config_file_keeps_the_project_facts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    root = write(
        tmp_path,
        {
            "pyproject.toml": PROJECT + '[tool.depfix]\nselect = ["DF001"]\n',
            "ci/depfix.toml": 'select = ["DF006"]\n',  # a bare table
        },
    )
    document = config_json(root, capsys, monkeypatch, "--config", "ci/depfix.toml")
    assert document["settings"]["select"] == ["DF006"]  # the pyproject table is not read
    assert document["settings"]["target-version"] == "py310"  # its project facts are
    assert document["fastapi_version"] == "0.112.2"


BAD_VALUES = {
    "select": ('select = ["E501"]', "select"),
    "select-not-list": ("select = 5", "select"),
    "select-unknown-rule": ('select = ["DF999"]', "DF999"),
    "ignore": ("ignore = [1, 2]", "ignore"),
    "exclude": ('exclude = "migrations/"', "exclude"),
    "target-version": ('target-version = "py27"', "py27"),
    "target-version-type": ("target-version = 3.11", "target-version"),
    "dependencies-module": ('dependencies-module = "app/my-deps.py"', "dependencies-module"),
    "dependencies-module-type": ("dependencies-module = 1", "dependencies-module"),
    "alias-min-uses": ("alias-min-uses = 1", "alias-min-uses"),
    "alias-min-uses-type": ("alias-min-uses = true", "alias-min-uses"),
    "unsafe": ('unsafe = "yes"', "unsafe"),
    "yield-commit": ("yield-commit = 1", "yield-commit"),
    "unknown-key": ("yield_commit = true", "yield_commit"),
    "not-a-table": ("", "[tool.depfix] must be a table"),
}


@pytest.mark.parametrize("case", list(BAD_VALUES))
@pytest.mark.parametrize("command", ["config", "check", "apply"])
def test_bad_values_exit_2_naming_the_key(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    case: str,
    command: str,
) -> None:
    line, named = BAD_VALUES[case]
    table = '[tool]\ndepfix = "x"\n' if case == "not-a-table" else f"[tool.depfix]\n{line}\n"
    app = "from fastapi import Depends\n\ndef f(x=Depends(g())): ...\n"
    root = write(tmp_path, {"pyproject.toml": PROJECT + table, "app.py": app})
    code, out, err = depfix(root, capsys, monkeypatch, command)
    assert code == 2, err
    assert out == ""
    assert len(err.splitlines()) == 1 and err.startswith("depfix: error: "), err
    assert named in err
    assert (root / "app.py").read_text() == app


def test_config_usage_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    root = write(tmp_path, {"pyproject.toml": PROJECT})
    for args in (["--format", "yaml"], ["--select", "DF9"], ["missing/"], ["--config", "no.toml"]):
        code, out, err = depfix(root, capsys, monkeypatch, "config", *args)
        assert code == 2 and out == "" and len(err.splitlines()) == 1, (args, err)


# ---- the keys act on a run (the others are covered by fixtures and test_discovery) --------------
UNSAFE_APP = (
    "from fastapi import Depends, FastAPI\n\napp = FastAPI()\n\n\n"
    "def get_settings(prefix: str = 'x'):\n    yield prefix\n\n\n"
    '@app.get("/")\ndef read(s=Depends(get_settings())):\n    return s\n'
)


def test_unsafe_key_applies_unsafe_fixes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    plain = write(tmp_path / "plain", {"pyproject.toml": PROJECT, "app.py": UNSAFE_APP})
    unsafe = write(
        tmp_path / "unsafe",
        {"pyproject.toml": PROJECT + "[tool.depfix]\nunsafe = true\n", "app.py": UNSAFE_APP},
    )
    depfix(plain, capsys, monkeypatch, "apply", "--select", "DF005")
    depfix(unsafe, capsys, monkeypatch, "apply", "--select", "DF005")
    assert (plain / "app.py").read_text() == UNSAFE_APP
    assert (unsafe / "app.py").read_text() == UNSAFE_APP.replace(
        "Depends(get_settings())", "Depends(get_settings)"
    )


def test_dependencies_module_key_places_the_shared_alias(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "shop"
    shutil.copytree(FIXTURES / "DF007" / "shared_across_modules" / "before", root)
    (root / "app" / "shared.py").write_text('"""Shared dependencies."""\n')
    pyproject = (root / "pyproject.toml").read_text()
    (root / "pyproject.toml").write_text(
        pyproject + '\n[tool.depfix]\nselect = ["DF007"]\ndependencies-module = "app.shared"\n'
    )
    code, _, err = depfix(root, capsys, monkeypatch, "apply")
    assert code == 1, err
    assert "SessionDep = Annotated[" in (root / "app" / "shared.py").read_text()
    assert not (root / "app" / "dependencies.py").exists()
    assert "from app.shared import SessionDep" in (root / "app/routers/items.py").read_text()


def test_sub_project_facts_are_those_of_a_run_started_there(tmp_path: Path) -> None:
    """Finding 4: `part-1/` with its own pyproject.toml, checked from the repository root."""
    root = write(
        tmp_path,
        {
            "pyproject.toml": PROJECT,
            "part-1/pyproject.toml": POETRY_PROJECT + 'python = "^3.8"\nfastapi = "~0.68.0"\n',
            "part-2/pyproject.toml": '[project]\nname = "two"\n',
        },
    )
    settings = load_settings(root)
    part = with_project_facts(settings, root / "part-1" / "app")
    alone = load_settings(root / "part-1")
    assert (part.fastapi_version, part.target_version) == ((0, 68, 0), (3, 8))
    assert (part.fastapi_version, part.target_version) == (
        alone.fastapi_version,
        alone.target_version,
    )
    assert part.origins == alone.origins
    bare = with_project_facts(settings, root / "part-2")  # declares neither
    assert (bare.fastapi_version, bare.origin("fastapi-version")) == (None, "default")
    assert (bare.target_version, bare.origin("target-version")) == ((3, 9), "default")
    same = with_project_facts(settings, root)
    assert (same.fastapi_version, same.target_version, same.origins) == (
        settings.fastapi_version,
        settings.target_version,
        settings.origins,
    )


def test_sub_project_facts_keep_a_configured_target_version(tmp_path: Path) -> None:
    root = write(
        tmp_path,
        {
            "pyproject.toml": PROJECT + '[tool.depfix]\ntarget-version = "py312"\n',
            "part-1/pyproject.toml": POETRY_PROJECT + 'python = "^3.8"\nfastapi = "~0.68.0"\n',
        },
    )
    configured = with_project_facts(load_settings(root), root / "part-1")
    assert (configured.fastapi_version, configured.target_version) == ((0, 68, 0), (3, 12))
    flagged = load_settings(root).with_overrides(origin="--target-version", target_version=(3, 11))
    part = with_project_facts(flagged, root / "part-1")
    assert (part.target_version, part.origin("target-version")) == ((3, 11), "--target-version")
