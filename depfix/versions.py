"""The lowest version a project's declarations admit: of FastAPI in its dependencies, of Python.

A fix must never write what the project's declared versions cannot run, so what matters is the lowest
version each declaration lets an installer pick: `>=0.68`, `~=0.68.0`, `==0.68.2`, Poetry's `^0.68`,
`~0.68.0` and bare `0.68.2` (an exact pin) all admit 0.68. A declaration that admits arbitrarily old
versions (`*`, only upper bounds, an alternative without a lower bound) gives no bound: the version is
then unknown, never guessed from the installed packages. Among several declarations of FastAPI (the
dependencies, an extra, a dependency group, requirements files), the lowest bound wins, since each may
be the one an environment is installed from.

PEP 440 specifiers are read with `packaging`; Poetry's caret and tilde, its bare versions and its `||`
alternatives are translated to their lower bounds here.
"""

from __future__ import annotations

import ast
import configparser
import contextlib
import json
import re
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Optional

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python < 3.11 only
    import tomli as tomllib

Release = tuple[int, int, int]

FASTAPI_DISTRIBUTIONS = frozenset({"fastapi", "fastapi-slim"})
"""Distributions that install the `fastapi` package (`fastapi-slim` was published for 0.111-0.112)."""

_REQUIREMENT_GLOBS = (
    "requirements*.txt",
    "requirements*.in",
    "requirements/*.txt",
    "requirements/*.in",
)
OTHER_DECLARATIONS = ("setup.cfg", "setup.py", "Pipfile")
"""Files next to pyproject.toml whose dependencies are read too."""
LOCK_FILES = ("poetry.lock", "uv.lock", "pdm.lock", "Pipfile.lock")
"""Lock files beside pyproject.toml: the version they pin is read when no declaration bounds it."""

_LOWER_OPERATORS = frozenset({">=", ">", "==", "~=", "==="})
"""Operators that bound a version from below (`>X` admits versions just above X: X is taken)."""
_POETRY_TERM = re.compile(r"(\^|~=|~|===|==|=|!=|>=|<=|>|<)?\s*([0-9*vV][^\s,]*)")


def _release(text: str) -> Optional[Release]:
    """The first three release numbers of a version (`0.68.*` -> 0.68.0), or None when invalid."""
    text = text.strip()
    if text.endswith(".*"):
        text = text[:-2]
    try:
        release = Version(text).release
    except InvalidVersion:
        return None
    padded = (*release, 0, 0)
    return padded[0], padded[1], padded[2]


def _highest(bounds: Iterable[Optional[Release]]) -> Optional[Release]:
    """The lower bound of constraints that must all hold: the highest of theirs."""
    known = [bound for bound in bounds if bound is not None]
    return max(known) if known else None


def _lowest_alternative(alternatives: list[Optional[Release]]) -> Optional[Release]:
    """The lower bound of alternatives: the lowest, or None when one of them has none."""
    if not alternatives or any(bound is None for bound in alternatives):
        return None
    return min(bound for bound in alternatives if bound is not None)


def lowest_in_specifier(text: str) -> Optional[Release]:
    """The lowest version a PEP 440 specifier set (`>=0.68,<0.69`, `~=0.68.0`) admits, or None.

    Text that is not valid PEP 440 (`>= 3.8.*`, a Poetry constraint in a PEP 440 field) is read the
    lenient way Poetry's constraints are.
    """
    try:
        specifiers = SpecifierSet(text)
    except InvalidSpecifier:
        return lowest_in_poetry_constraint(text)
    return _lowest_in(specifiers)


def _lowest_in(specifiers: SpecifierSet) -> Optional[Release]:
    return _highest(
        _release(specifier.version) if specifier.operator in _LOWER_OPERATORS else None
        for specifier in specifiers
    )


def _lowest_in_poetry_term(operator: str, version: str) -> Optional[Release]:
    if version == "*" or operator in ("!=", "<=", "<"):
        return None
    return _release(version)  # ^, ~, ~=, ==, =, ===, >=, > and a bare version: X itself


def lowest_in_poetry_constraint(text: str) -> Optional[Release]:
    """The lowest version a Poetry constraint (`^0.68`, `~0.68.0`, `0.68.2`, `>=1,<2 || ^3`) admits."""
    alternatives: list[Optional[Release]] = []
    for alternative in re.split(r"\|\|?", text):
        terms = _POETRY_TERM.findall(alternative)
        alternatives.append(_highest(_lowest_in_poetry_term(*term) for term in terms))
    return _lowest_alternative(alternatives)


def lowest_in_poetry_value(value: Any) -> Optional[Release]:
    """Of a `[tool.poetry.dependencies]` value: a constraint, a table with `version`, or a list of
    tables (each for some markers: the lowest of them). A git, path or url dependency gives None."""
    if isinstance(value, str):
        return lowest_in_poetry_constraint(value)
    if isinstance(value, dict):
        version = value.get("version")
        return lowest_in_poetry_constraint(version) if isinstance(version, str) else None
    if isinstance(value, list):
        return _lowest_alternative([lowest_in_poetry_value(item) for item in value])
    return None


def lowest_in_pipfile_value(value: Any) -> Optional[Release]:
    """Of a Pipfile `[packages]` value: `"*"`, a PEP 440 specifier, or a table with `version`."""
    if isinstance(value, dict):
        value = value.get("version")
    if not isinstance(value, str) or value.strip() in ("", "*"):
        return None
    return lowest_in_specifier(value)


def parse_requirement(line: str) -> Optional[Requirement]:
    """A PEP 508 requirement from a requirements-file line or a TOML string, or None."""
    line = re.split(r"(?:^|\s)#", line, maxsplit=1)[0]
    line = re.split(r"\s+--?[a-z]", line, maxsplit=1)[0].strip()  # ` --hash=...` options
    if not line or line.startswith("-"):
        return None
    try:
        return Requirement(line)
    except InvalidRequirement:
        return None


def requirement_bound(requirement: str, names: frozenset[str]) -> tuple[bool, Optional[Release]]:
    """Whether a requirement string names one of `names`, and the lowest version it admits."""
    parsed = parse_requirement(requirement)
    if parsed is None or canonicalize_name(parsed.name) not in names:
        return False, None
    return True, _lowest_in(parsed.specifier)


Declaration = tuple[str, Optional[Release]]
"""Where a distribution is declared, and the lowest version that declaration admits."""


def _from_requirements(
    origin: str, requirements: Iterable[Any], names: frozenset[str]
) -> Iterator[Declaration]:
    for requirement in requirements:
        if isinstance(requirement, str):
            named, bound = requirement_bound(requirement, names)
            if named:
                yield origin, bound


def _table(document: Any, *keys: str) -> dict[str, Any]:
    for key in keys:
        document = document.get(key) if isinstance(document, dict) else None
    return document if isinstance(document, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _from_poetry(
    origin: str, table: dict[str, Any], names: frozenset[str]
) -> Iterator[Declaration]:
    for name, value in table.items():
        if canonicalize_name(name) in names:
            yield origin, lowest_in_poetry_value(value)


def pyproject_declarations(
    document: dict[str, Any], where: str, names: frozenset[str] = FASTAPI_DISTRIBUTIONS
) -> Iterator[Declaration]:
    """Every declaration of `names` in a pyproject.toml: PEP 621, PEP 735, Poetry, PDM, uv, Hatch."""
    project = _table(document, "project")
    yield from _from_requirements(
        f"{where} [project] dependencies", _list(project.get("dependencies")), names
    )
    for extra, requirements in _table(project, "optional-dependencies").items():
        origin = f"{where} [project.optional-dependencies] {extra}"
        yield from _from_requirements(origin, _list(requirements), names)
    for group, requirements in _table(document, "dependency-groups").items():
        yield from _from_requirements(
            f"{where} [dependency-groups] {group}", _list(requirements), names
        )
    poetry = _table(document, "tool", "poetry")
    for key in ("dependencies", "dev-dependencies"):
        yield from _from_poetry(f"{where} [tool.poetry.{key}]", _table(poetry, key), names)
    for group, table in _table(poetry, "group").items():
        origin = f"{where} [tool.poetry.group.{group}.dependencies]"
        yield from _from_poetry(origin, _table(table, "dependencies"), names)
    for group, requirements in _table(document, "tool", "pdm", "dev-dependencies").items():
        origin = f"{where} [tool.pdm.dev-dependencies] {group}"
        yield from _from_requirements(origin, _list(requirements), names)
    uv = _table(document, "tool", "uv")
    yield from _from_requirements(
        f"{where} [tool.uv] dev-dependencies", _list(uv.get("dev-dependencies")), names
    )
    for env, table in _table(document, "tool", "hatch", "envs").items():
        for key in ("dependencies", "extra-dependencies"):
            origin = f"{where} [tool.hatch.envs.{env}] {key}"
            yield from _from_requirements(origin, _list(_table(table).get(key)), names)


def requirement_files(root: Path) -> list[Path]:
    """The requirements files of a project (`requirements*.txt`, `requirements/*.txt`, `.in` too)."""
    found: set[Path] = set()
    for pattern in _REQUIREMENT_GLOBS:
        with contextlib.suppress(OSError):
            found.update(path for path in root.glob(pattern) if path.is_file())
    return sorted(found)


def _read_text(path: Path) -> Optional[str]:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None


def _requirement_lines(text: str) -> list[str]:
    return text.replace("\\\n", " ").splitlines()


def _setup_cfg_declarations(path: Path, names: frozenset[str]) -> Iterator[Declaration]:
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read(path, encoding="utf-8")
    except (configparser.Error, UnicodeDecodeError, OSError):
        return
    if parser.has_option("options", "install_requires"):
        lines = _requirement_lines(parser.get("options", "install_requires"))
        yield from _from_requirements(f"{path} [options] install_requires", lines, names)
    if parser.has_section("options.extras_require"):
        for extra, value in parser.items("options.extras_require"):
            origin = f"{path} [options.extras_require] {extra}"
            yield from _from_requirements(origin, _requirement_lines(value), names)


def _setup_py_strings(path: Path) -> list[str]:
    """Every string literal of a setup.py (its requirements are among them; none is run)."""
    text = _read_text(path)
    if text is None:
        return []
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return []
    return [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    ]


def _pipfile_declarations(path: Path, names: frozenset[str]) -> Iterator[Declaration]:
    try:
        with open(path, "rb") as handle:
            document = tomllib.load(handle)
    except (OSError, tomllib.TOMLDecodeError):
        return
    for section in ("packages", "dev-packages"):
        for name, value in _table(document, section).items():
            if canonicalize_name(name) in names:
                yield f"{path} [{section}]", lowest_in_pipfile_value(value)


def file_declarations(
    root: Path, names: frozenset[str] = FASTAPI_DISTRIBUTIONS
) -> Iterator[Declaration]:
    """Declarations of `names` in the files beside pyproject.toml: requirements, setup.cfg/py, Pipfile."""
    for path in requirement_files(root):
        text = _read_text(path)
        if text is not None:
            yield from _from_requirements(str(path), _requirement_lines(text), names)
    if (root / "setup.cfg").is_file():
        yield from _setup_cfg_declarations(root / "setup.cfg", names)
    if (root / "setup.py").is_file():
        yield from _from_requirements(
            str(root / "setup.py"), _setup_py_strings(root / "setup.py"), names
        )
    if (root / "Pipfile").is_file():
        yield from _pipfile_declarations(root / "Pipfile", names)


def _locked_versions(path: Path, names: frozenset[str]) -> list[str]:
    """The versions of `names` a lock file pins (uv.lock may hold several, one per fork)."""
    if path.name == "Pipfile.lock":
        text = _read_text(path)
        try:
            document = json.loads(text) if text is not None else {}
        except ValueError:
            return []
        pinned = [
            _table(document, section, name).get("version")
            for section in ("default", "develop")
            for name in names
        ]
        return [version.lstrip("=") for version in pinned if isinstance(version, str)]
    try:
        with open(path, "rb") as handle:
            packages = tomllib.load(handle).get("package")
    except (OSError, tomllib.TOMLDecodeError):
        return []
    return [
        package["version"]
        for package in _list(packages)
        if isinstance(package, dict)
        and isinstance(package.get("name"), str)
        and canonicalize_name(package["name"]) in names
        and isinstance(package.get("version"), str)
    ]


def locked_declarations(
    root: Path, names: frozenset[str] = FASTAPI_DISTRIBUTIONS
) -> Iterator[Declaration]:
    """The versions the project's lock files pin (poetry.lock, uv.lock, pdm.lock, Pipfile.lock)."""
    for name in LOCK_FILES:
        path = root / name
        if path.is_file():
            for version in _locked_versions(path, names):
                yield f"{path} (locked)", _release(version)


def lowest_declared(declarations: Iterable[Declaration]) -> tuple[Optional[Release], str]:
    """The lowest bound among declarations that give one, and where it was read (else "default")."""
    best: Optional[tuple[Release, str]] = None
    for origin, bound in declarations:
        if bound is not None and (best is None or bound < best[0]):
            best = (bound, origin)
    return best if best is not None else (None, "default")


def python_declarations(document: dict[str, Any], where: str, root: Path) -> Iterator[Declaration]:
    """The lowest Python each declaration admits: `requires-python`, Poetry's `python`,
    `python_requires` in setup.cfg."""
    requires = _table(document, "project").get("requires-python")
    if isinstance(requires, str):
        yield f"requires-python in {where}", lowest_in_specifier(requires)
    poetry_python = _table(document, "tool", "poetry", "dependencies").get("python")
    if poetry_python is not None:
        yield f"python in {where} [tool.poetry.dependencies]", lowest_in_poetry_value(poetry_python)
    setup_cfg = root / "setup.cfg"
    if setup_cfg.is_file():
        parser = configparser.ConfigParser(interpolation=None)
        with contextlib.suppress(configparser.Error, UnicodeDecodeError, OSError):
            parser.read(setup_cfg, encoding="utf-8")
            if parser.has_option("options", "python_requires"):
                text = parser.get("options", "python_requires")
                yield f"python_requires in {setup_cfg}", lowest_in_specifier(text)
