"""DF006 against FastAPI's own tutorials: rewritten old-style tutorials must pass the Annotated twins' tests.

The harness and the pairing scheme are described in tests/conformance.py. The oracle runs once per
session (a module-scoped fixture, about a minute on 2 cores, most of it FastAPI's tests), and is
skipped, with the reason shown by `-ra`:
* while DF006 is not registered (depfix would exit 2 with "no rule matches");
* on Pythons older than the pinned FastAPI release supports;
* when the sdist cannot be downloaded (no network), except with CI=true, where that fails the test.

Run it alone, with the per-tutorial table printed:
    .venv/bin/python -m pytest tests/test_fastapi_conformance.py -s
Baseline mode (checks the harness, not depfix: the old-style files are copied over their twins
unchanged, so every tutorial test must pass):
    DEPFIX_ORACLE_BASELINE=1 .venv/bin/python -m pytest tests/test_fastapi_conformance.py -s
The JSON summary's path is printed; DEPFIX_ORACLE_SUMMARY=<file> also writes it there.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from conformance import (
    FASTAPI_MIN_PYTHON,
    FASTAPI_VERSION,
    RULE,
    RuleMissing,
    SchemeChanged,
    SdistUnavailable,
    Summary,
    discover_pairs,
    ensure_sdist,
    run_oracle,
    variant_of,
)

BASELINE = os.environ.get("DEPFIX_ORACLE_BASELINE", "") == "1"


def _cache_dir(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    cache = getattr(request.config, "cache", None)  # absent under `-p no:cacheprovider`
    if cache is not None:
        return Path(cache.mkdir("fastapi-sdist"))
    return tmp_path_factory.mktemp("fastapi-sdist")


@pytest.fixture(scope="module")
def summary(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Summary]:
    if sys.version_info < FASTAPI_MIN_PYTHON:
        pytest.skip(
            f"FastAPI {FASTAPI_VERSION} needs Python >= {'.'.join(map(str, FASTAPI_MIN_PYTHON))}"
        )
    if not BASELINE:
        from depfix.rules import registered_rules

        codes = [rule.CODE for rule in registered_rules()]
        if RULE not in codes:
            pytest.skip(
                f"{RULE} is not registered yet (rules: {', '.join(codes)}); the oracle runs once it lands"
            )
    try:
        sdist = ensure_sdist(_cache_dir(request, tmp_path_factory))
    except SdistUnavailable as error:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true and FastAPI's sdist could not be downloaded: {error}")
        pytest.skip(f"FastAPI's sdist could not be downloaded (no network?): {error}")
    base = tmp_path_factory.mktemp("fastapi-oracle")
    try:
        result = run_oracle(sdist, base / "work", base / "scratch", baseline=BASELINE)
    except RuleMissing as error:
        pytest.skip(f"depfix does not know {RULE} yet: {error}")
    document = json.dumps(result.to_json(), indent=2, sort_keys=True)
    path = base / "summary.json"
    path.write_text(document, encoding="utf-8")
    extra = os.environ.get("DEPFIX_ORACLE_SUMMARY")
    if extra:
        Path(extra).write_text(document, encoding="utf-8")
    print(f"\nFastAPI conformance summary: {path}")
    yield result


def _listing(problems: dict[str, list[str]]) -> str:
    return "\n".join(f"{name}:\n  " + "\n  ".join(found) for name, found in problems.items())


def test_every_tutorial_test_passes(summary: Summary) -> None:
    """FastAPI's tests of every pair pass, the twin holding depfix's rewrite (or, in baseline, the old file)."""
    print(summary.table())
    failing = {p.name: p.test_problems() for p in summary.pairs if p.test_problems()}
    assert not failing, (
        f"{len(failing)} tutorial pairs fail FastAPI's tests:\n{_listing(failing)}"
        f"\n--- pytest tail\n{summary.pytest_tail}"
    )
    assert summary.tests_failed == 0, summary.pytest_tail
    assert summary.tests_passed > 0


def test_depfix_rewrites_every_old_style_tutorial_completely(summary: Summary) -> None:
    """No depfix error, nothing left for `depfix check --select DF006`, no old-style file unchanged.

    Leftover diagnostics without a fix, and so an unchanged file, are accepted only for the pairs in
    NO_FIX_ALLOWED (tests/conformance.py), each with its reason.
    """
    if summary.baseline:
        pytest.skip("baseline mode runs no depfix")
    undone = {p.name: p.depfix_problems() for p in summary.pairs if p.depfix_problems()}
    assert not undone, f"{RULE} left {len(undone)} tutorial pairs unfinished:\n{_listing(undone)}"


def test_no_file_outside_the_tutorials_is_edited(summary: Summary) -> None:
    if summary.baseline:
        pytest.skip("baseline mode runs no depfix")
    assert summary.stray_changes == [], "depfix edited files it was not given"


# --- The harness's own logic, offline and fast (no download, no depfix run). -------------------------


def _fake_sdist(root: Path, extra: dict[str, str] | None = None) -> Path:
    files = {
        "docs_src/forms/tutorial001_non_an.py": "",
        "docs_src/forms/tutorial001.py": "",
        "docs_src/forms/tutorial001_02_non_an.py": "",
        "docs_src/forms/tutorial001_02.py": "",
        "docs_src/forms_and_files/tutorial001_non_an.py": "",
        "docs_src/forms_and_files/tutorial001.py": "",
        "docs_src/settings/app01_non_an/__init__.py": "",
        "docs_src/settings/app01_non_an/main.py": "",
        "docs_src/settings/app01/__init__.py": "",
        "docs_src/settings/app01/main.py": "",
        "tests/test_forms/test_tutorial001.py": (
            'params=["tutorial001_non_an", "tutorial001"]\n'
            'importlib.import_module(f"docs_src.forms.{name}")\n'
        ),
        "tests/test_forms/test_tutorial001_02.py": (
            'params=["tutorial001_02_non_an", "tutorial001_02"]\n'
            'importlib.import_module(f"docs_src.forms.{name}")\n'
        ),
        "tests/test_forms_and_files/test_tutorial001.py": (
            'params=["tutorial001_non_an", "tutorial001"]\n'
            'importlib.import_module(f"docs_src.forms_and_files.{name}")\n'
        ),
        "tests/test_settings/test_app01.py": (
            'params=["app01_non_an", "app01"]\nmod_path = f"docs_src.settings.{name}"\n'
        ),
        **(extra or {}),
    }
    for relative, text in files.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text(text, encoding="utf-8")
    return root


def test_pairs_are_found_with_their_own_tests_only(tmp_path: Path) -> None:
    pairs = {p.name: p for p in discover_pairs(_fake_sdist(tmp_path))}
    assert sorted(pairs) == [
        "forms/tutorial001",
        "forms/tutorial001_02",
        "forms_and_files/tutorial001",
        "settings/app01",
    ]
    # `docs_src.forms` must not match `docs_src.forms_and_files`, nor `tutorial001` `tutorial001_02`
    assert pairs["forms/tutorial001"].tests == ("tests/test_forms/test_tutorial001.py",)
    assert pairs["forms/tutorial001"].files == (
        ("docs_src/forms/tutorial001_non_an.py", "docs_src/forms/tutorial001.py"),
    )
    assert pairs["forms_and_files/tutorial001"].tests == (
        "tests/test_forms_and_files/test_tutorial001.py",
    )
    assert pairs["settings/app01"].kind == "package"
    assert pairs["settings/app01"].files == (
        ("docs_src/settings/app01_non_an/__init__.py", "docs_src/settings/app01/__init__.py"),
        ("docs_src/settings/app01_non_an/main.py", "docs_src/settings/app01/main.py"),
    )
    assert pairs["settings/app01"].tests == ("tests/test_settings/test_app01.py",)


def test_test_ids_are_mapped_to_the_variant_they_run(tmp_path: Path) -> None:
    pairs = {p.name: p for p in discover_pairs(_fake_sdist(tmp_path))}
    module, package = pairs["forms/tutorial001"], pairs["settings/app01"]
    assert variant_of(module, "t.py::test_post[tutorial001]") == "twin"
    assert variant_of(module, "t.py::test_post[tutorial001_non_an]") == "old"
    assert variant_of(module, "t.py::test_post[tutorial001_02]") == "both"
    assert variant_of(module, "t.py::test_post") == "both"
    assert variant_of(package, "t.py::test_app[app01.test_main]") == "twin"
    assert variant_of(package, "t.py::test_app[app01_non_an.test_main]") == "old"


@pytest.mark.parametrize(
    "name", ["tutorial002_an.py", "tutorial002_an_py39.py", "tutorial002_py310.py"]
)
def test_an_unknown_pairing_scheme_is_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(SchemeChanged):
        discover_pairs(_fake_sdist(tmp_path, {f"docs_src/forms/{name}": ""}))


def test_a_missing_twin_is_refused(tmp_path: Path) -> None:
    root = _fake_sdist(tmp_path)
    (root / "docs_src/forms/tutorial001.py").unlink()
    with pytest.raises(SchemeChanged, match="no Annotated twin"):
        discover_pairs(root)
