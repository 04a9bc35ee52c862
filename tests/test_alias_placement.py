"""DF007's placement keeps what imports: every module of each DF007 fixture tree, imported first in its
interpreter, succeeds or fails the same way before and after the aliases are placed.

An alias next to its provider is bound as soon as the provider is, so a cycle through the provider's
module (`provider_in_cycle_imported_by_all`) fails for the same entry orders as before, and works
for the same ones.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "DF007"

PROBE = r"""
import importlib, json, sys
from pathlib import Path

root = Path.cwd()
names = sorted(
    ".".join(path.relative_to(root).with_suffix("").parts).removesuffix(".__init__")
    for path in root.rglob("*.py")
)
tops = {name.split(".")[0] for name in names}
outcome = {}
for name in names:
    for loaded in [m for m in sys.modules if m.split(".")[0] in tops]:
        del sys.modules[loaded]
    try:
        importlib.import_module(name)
    except Exception as error:  # the kind of failure is what must not change
        outcome[name] = type(error).__name__ + (": partially initialized" if "partially" in str(error) else "")
    else:
        outcome[name] = "ok"
print(json.dumps(outcome))
"""


def _tree_cases() -> list[Path]:
    return sorted(case for case in FIXTURES.iterdir() if (case / "after").is_dir())


def _imports(tree: Path, work: Path) -> dict[str, str]:
    shutil.copytree(tree, work)
    completed = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=work,
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONDONTWRITEBYTECODE": "1", "PATH": ""},
    )
    result: dict[str, str] = json.loads(completed.stdout)
    return result


@pytest.mark.parametrize("case", _tree_cases(), ids=lambda case: case.name)
def test_every_entry_order_imports_as_before(case: Path, tmp_path: Path) -> None:
    before = _imports(case / "before", tmp_path / "before")
    after = _imports(case / "after", tmp_path / "after")
    created = set(after) - set(before)
    assert {name: after[name] for name in before} == before
    assert all(after[name] == "ok" for name in created)


def test_the_cycle_case_has_an_entry_order_that_fails() -> None:
    """The probe can fail: in `provider_in_cycle_imported_by_all`, auth imported first breaks."""
    case = FIXTURES / "provider_in_cycle_imported_by_all"
    outcome = json.loads(
        subprocess.run(
            [sys.executable, "-c", PROBE],
            cwd=case / "after",
            capture_output=True,
            text=True,
            check=True,
            env={"PYTHONDONTWRITEBYTECODE": "1", "PATH": ""},
        ).stdout
    )
    assert outcome["app.routers.auth"] == "ImportError: partially initialized"
    assert outcome["app.routers.users"] == "ok"
