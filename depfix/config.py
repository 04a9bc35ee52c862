"""Settings: `[tool.depfix]` in the nearest pyproject.toml (or `--config FILE`), then command-line flags.

Unknown keys and bad values are errors that name the key and the file: a CI bot must never run with a
configuration its author did not mean.
"""

from __future__ import annotations

import contextlib
import re
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Optional

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python < 3.11 only
    import tomli as tomllib

MIN_TARGET = (3, 8)
MAX_TARGET = (3, 14)
DEFAULT_TARGET = (3, 9)
_TARGET_PATTERN = re.compile(r"^py3(\d{1,2})$")
_REQUIRES_PYTHON = re.compile(r"(>=|==|~=|>)\s*3\.(\d+)")
_FASTAPI_REQUIREMENT = re.compile(
    r"^\s*fastapi(?:\[[^\]]*\])?\s*(?P<spec>[^;#]*)", re.IGNORECASE | re.MULTILINE
)
_VERSION_BOUND = re.compile(r"(>=|==|~=|===)\s*(\d+)\.(\d+)(?:\.(\d+))?")


class ConfigError(Exception):
    """A configuration or usage problem; the message names it in one line."""


@dataclass(frozen=True)
class Settings:
    select: Optional[tuple[str, ...]] = None
    ignore: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    target_version: tuple[int, int] = DEFAULT_TARGET
    fastapi_version: Optional[tuple[int, int, int]] = None
    dependencies_module: Optional[str] = None
    alias_min_uses: int = 2
    unsafe: bool = False
    yield_commit: bool = False
    source: Optional[Path] = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def with_overrides(self, **changes: Any) -> Settings:
        return replace(self, **{key: value for key, value in changes.items() if value is not None})


def parse_target_version(text: str, where: str = "--target-version") -> tuple[int, int]:
    match = _TARGET_PATTERN.match(text.strip())
    if match:
        version = (3, int(match.group(1)))
        if MIN_TARGET <= version <= MAX_TARGET:
            return version
    raise ConfigError(f"{where}: expected py38 to py314, got {text!r}")


def parse_codes(value: Any, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        items = [item.strip() for item in value.split(",")]
    elif isinstance(value, list) and all(isinstance(item, str) for item in value):
        items = [item.strip() for item in value]
    else:
        raise ConfigError(f"{where}: expected a list of rule codes")
    codes = tuple(item.upper() for item in items if item)
    for code in codes:
        if not re.fullmatch(r"ALL|DF\d{0,3}", code):
            raise ConfigError(f"{where}: {code!r} is not a rule code or code prefix")
    return codes


def find_pyproject(start: Path) -> Optional[Path]:
    directory = start if start.is_dir() else start.parent
    for candidate in [directory, *directory.parents]:
        if (candidate / "pyproject.toml").is_file():
            return candidate / "pyproject.toml"
    return None


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except OSError as error:
        raise ConfigError(f"{path}: cannot read: {error.strerror or error}") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: invalid TOML: {error}") from None


def _expect(value: Any, kind: type, key: str, where: str) -> Any:
    if (kind is int and isinstance(value, bool)) or not isinstance(value, kind):
        raise ConfigError(f"{where}: {key} must be a {kind.__name__}, got {value!r}")
    return value


def _target_from_requires_python(text: str) -> Optional[tuple[int, int]]:
    versions = [int(minor) for _, minor in _REQUIRES_PYTHON.findall(text)]
    if not versions:
        return None
    version = (3, min(versions))
    return max(MIN_TARGET, min(version, MAX_TARGET))


def fastapi_version_from_requirements(lines: list[str]) -> Optional[tuple[int, int, int]]:
    """The lowest FastAPI version a project's requirements allow, when they say so."""
    for line in lines:
        match = _FASTAPI_REQUIREMENT.match(line)
        if not match:
            continue
        bound = _VERSION_BOUND.search(match.group("spec"))
        if bound:
            return int(bound.group(2)), int(bound.group(3)), int(bound.group(4) or 0)
    return None


def _project_fastapi_version(
    pyproject: dict[str, Any], root: Path
) -> Optional[tuple[int, int, int]]:
    project = pyproject.get("project", {})
    requirements: list[str] = [r for r in project.get("dependencies", []) if isinstance(r, str)]
    poetry = pyproject.get("tool", {}).get("poetry", {}).get("dependencies", {})
    if isinstance(poetry, dict) and isinstance(poetry.get("fastapi"), str):
        requirements.append("fastapi" + poetry["fastapi"].replace("^", ">="))
    for name in ("requirements.txt", "requirements/base.txt", "requirements/prod.txt"):
        path = root / name
        if path.is_file():
            with contextlib.suppress(OSError):
                requirements.extend(path.read_text(encoding="utf-8", errors="replace").splitlines())
    return fastapi_version_from_requirements(requirements)


def load_settings(project_root: Path, config_file: Optional[Path] = None) -> Settings:
    """Settings from `config_file`, else from the nearest pyproject.toml above `project_root`."""
    path = config_file if config_file is not None else find_pyproject(project_root)
    if config_file is not None and not config_file.is_file():
        raise ConfigError(f"--config: {config_file} does not exist")
    if path is None:
        return Settings(fastapi_version=_project_fastapi_version({}, project_root))
    document = _read_toml(path)
    table = document.get("tool", {}).get("depfix")
    if table is None:
        table = document if config_file is not None and "tool" not in document else {}
    where = f"{path} [tool.depfix]"
    settings = Settings(
        source=path, fastapi_version=_project_fastapi_version(document, path.parent)
    )
    requires = document.get("project", {}).get("requires-python")
    if isinstance(requires, str):
        target = _target_from_requires_python(requires)
        if target:
            settings = replace(settings, target_version=target)
    changes: dict[str, Any] = {}
    for key, value in table.items():
        if key == "select":
            changes["select"] = parse_codes(value, f"{where} select")
        elif key == "ignore":
            changes["ignore"] = parse_codes(value, f"{where} ignore")
        elif key == "exclude":
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ConfigError(f"{where}: exclude must be a list of glob strings")
            changes["exclude"] = tuple(value)
        elif key == "target-version":
            changes["target_version"] = parse_target_version(_expect(value, str, key, where), where)
        elif key == "dependencies-module":
            changes["dependencies_module"] = _expect(value, str, key, where)
        elif key == "alias-min-uses":
            count = _expect(value, int, key, where)
            if count < 2:
                raise ConfigError(f"{where}: alias-min-uses must be at least 2, got {count}")
            changes["alias_min_uses"] = count
        elif key == "unsafe":
            changes["unsafe"] = _expect(value, bool, key, where)
        elif key == "yield-commit":
            changes["yield_commit"] = _expect(value, bool, key, where)
        else:
            raise ConfigError(f"{where}: unknown key {key!r}")
    return replace(settings, **changes)
