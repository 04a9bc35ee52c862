"""Settings: `[tool.depfix]` in the nearest pyproject.toml (or `--config FILE`), then command-line flags.

Unknown keys and bad values are errors that name the key and the file: a CI bot must never run with a
configuration its author did not mean.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Optional

import pathspec

from depfix import versions

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python < 3.11 only
    import tomli as tomllib

MIN_TARGET = (3, 8)
MAX_TARGET = (3, 14)
DEFAULT_TARGET = (3, 9)
_TARGET_PATTERN = re.compile(r"^py3(\d{1,2})$")


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
    origins: dict[str, str] = field(default_factory=dict, compare=False)
    """Where each value that is not a default came from, by TOML key (`target-version`)."""

    def with_overrides(self, *, origin: str = "command line", **changes: Any) -> Settings:
        given = {key: value for key, value in changes.items() if value is not None}
        origins = {**self.origins, **{_KEYS_BY_FIELD.get(key, key): origin for key in given}}
        return replace(self, origins=origins, **given)

    def origin(self, key: str) -> str:
        """Where the value of a TOML key (`alias-min-uses`) came from: a file, a flag, or "default"."""
        return self.origins.get(key, "default")


KEYS: tuple[str, ...] = (
    "select",
    "ignore",
    "exclude",
    "target-version",
    "dependencies-module",
    "alias-min-uses",
    "unsafe",
    "yield-commit",
)
"""The keys of `[tool.depfix]`, in the order SPEC lists them."""
_KEYS_BY_FIELD = {key.replace("-", "_"): key for key in KEYS}


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


def consulted_files(project_root: Path, config_file: Optional[Path] = None) -> list[Path]:
    """Every file whose presence or content `load_settings` depends on (present or not).

    The directories holding requirements files are listed too: a new `requirements-dev.txt` changes
    their status.
    """
    directory = project_root if project_root.is_dir() else project_root.parent
    found = find_pyproject(project_root)
    searched = [directory, *directory.parents]
    if found is not None:
        searched = searched[: searched.index(found.parent) + 1]
    metadata_root = found.parent if found is not None else project_root
    return [
        *([] if config_file is None else [config_file]),
        *(candidate / "pyproject.toml" for candidate in searched),
        metadata_root,
        metadata_root / "requirements",
        *versions.requirement_files(metadata_root),
        *(metadata_root / name for name in versions.OTHER_DECLARATIONS),
        *(metadata_root / name for name in versions.LOCK_FILES),
    ]


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


def _target_from_python(
    document: dict[str, Any], where: str, root: Path
) -> tuple[Optional[tuple[int, int]], str]:
    """The lowest Python the project declares (`requires-python`, Poetry's `python`), as a target."""
    version, origin = versions.lowest_declared(versions.python_declarations(document, where, root))
    if version is None:
        return None, origin
    return max(MIN_TARGET, min((version[0], version[1]), MAX_TARGET)), origin


def _project_fastapi_version(
    pyproject: dict[str, Any], root: Path, pyproject_path: Optional[Path] = None
) -> tuple[Optional[tuple[int, int, int]], str]:
    """The lowest FastAPI version the project's dependencies allow, and where that was read.

    Every declaration counts (dependencies, extras, groups, requirements files, setup.cfg/setup.py,
    Pipfile): the lowest bound among them wins. When none bounds it from below, the version a lock
    file pins (poetry.lock, uv.lock, pdm.lock, Pipfile.lock); else None. Never the installed FastAPI.
    """
    where = str(pyproject_path) if pyproject_path is not None else "pyproject.toml"
    declarations = [
        *versions.pyproject_declarations(pyproject, where),
        *versions.file_declarations(root),
    ]
    version, origin = versions.lowest_declared(declarations)
    if version is None:  # `fastapi = "*"`, or no declaration: the lock file pins what is installed
        return versions.lowest_declared(versions.locked_declarations(root))
    return version, origin


def _check_exclude(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where}: exclude must be a list of glob strings")
    for pattern in value:
        try:
            pathspec.GitIgnoreSpec.from_lines([pattern])
        except (ValueError, TypeError) as error:
            raise ConfigError(
                f"{where}: exclude: {pattern!r} is not a valid glob: {error}"
            ) from None
    return tuple(value)


def _check_module(value: Any, where: str) -> str:
    text: str = _expect(value, str, "dependencies-module", where)
    dotted = text.removesuffix(".py").replace("/", ".")
    if not all(part.isidentifier() for part in dotted.split(".")):
        raise ConfigError(
            f"{where}: dependencies-module must be a module name (app.dependencies) or a path "
            f"(app/dependencies.py), got {text!r}"
        )
    return text


def _settings_table(path: Path, document: dict[str, Any], explicit: bool) -> dict[str, Any]:
    tool = document.get("tool", {})
    table = tool.get("depfix") if isinstance(tool, dict) else None
    if table is None:  # a file given with --config may hold the keys at its top level
        table = document if explicit and "tool" not in document else {}
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: [tool.depfix] must be a table")
    return table


def _project_facts(
    project_root: Path, pyproject_path: Optional[Path], pyproject: dict[str, Any]
) -> Settings:
    """Default settings with the project's facts: its FastAPI version and its declared Python."""
    metadata_root = pyproject_path.parent if pyproject_path is not None else project_root
    fastapi, fastapi_origin = _project_fastapi_version(pyproject, metadata_root, pyproject_path)
    settings = Settings(fastapi_version=fastapi, origins={"fastapi-version": fastapi_origin})
    target, target_origin = _target_from_python(
        pyproject,
        str(pyproject_path) if pyproject_path is not None else "pyproject.toml",
        metadata_root,
    )
    if target is not None:
        settings = settings.with_overrides(origin=target_origin, target_version=target)
    return settings


_PYTHON_FACT_ORIGINS = ("requires-python in ", "python in ", "python_requires in ")
"""How the origin of a target version read from a project's declared Python begins."""


def with_project_facts(settings: Settings, directory: Path) -> Settings:
    """`settings` with the facts of the project holding `directory` (its nearest pyproject.toml).

    For a sub-project checked from a parent directory (`part-1/` with its own pyproject.toml): its
    FastAPI version, and its declared Python unless `[tool.depfix]` or a flag set `target-version`,
    are what a run started in `part-1/` would use. Other settings stay the run's.
    """
    pyproject_path = find_pyproject(directory)
    pyproject = _read_toml(pyproject_path) if pyproject_path is not None else {}
    facts = _project_facts(directory, pyproject_path, pyproject)
    changes: dict[str, Any] = {"fastapi_version": facts.fastapi_version}
    keys = ["fastapi-version"]
    target_origin = settings.origin("target-version")
    if target_origin == "default" or target_origin.startswith(_PYTHON_FACT_ORIGINS):
        changes["target_version"] = facts.target_version
        keys.append("target-version")
    origins = {key: value for key, value in settings.origins.items() if key not in keys}
    origins.update({key: facts.origins[key] for key in keys if key in facts.origins})
    return replace(settings, origins=origins, **changes)


def load_settings(project_root: Path, config_file: Optional[Path] = None) -> Settings:
    """Settings from `config_file`, else from the nearest pyproject.toml above `project_root`.

    The project's own facts (the Python version from `requires-python`, the FastAPI version from its
    dependencies) always come from the nearest pyproject.toml; `[tool.depfix]` values win over them.
    """
    if config_file is not None and not config_file.is_file():
        raise ConfigError(f"--config: {config_file} does not exist")
    pyproject_path = find_pyproject(project_root)
    pyproject = _read_toml(pyproject_path) if pyproject_path is not None else {}
    settings = _project_facts(project_root, pyproject_path, pyproject)
    path = config_file if config_file is not None else pyproject_path
    if path is None:
        return settings
    document = pyproject if path == pyproject_path else _read_toml(path)
    table = _settings_table(path, document, explicit=config_file is not None)
    where = f"{path} [tool.depfix]"
    changes: dict[str, Any] = {}
    for key, value in table.items():
        if key == "select":
            changes["select"] = parse_codes(value, f"{where} select")
        elif key == "ignore":
            changes["ignore"] = parse_codes(value, f"{where} ignore")
        elif key == "exclude":
            changes["exclude"] = _check_exclude(value, where)
        elif key == "target-version":
            changes["target_version"] = parse_target_version(_expect(value, str, key, where), where)
        elif key == "dependencies-module":
            changes["dependencies_module"] = _check_module(value, where)
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
    return replace(settings, source=path).with_overrides(origin=where, **changes)


def _format_target(version: tuple[int, int]) -> str:
    return f"py{version[0]}{version[1]}"


def effective_values(settings: Settings) -> dict[str, Any]:
    """The value of every `[tool.depfix]` key as a run uses it, in TOML/JSON types (None: unset)."""
    return {
        "select": list(settings.select) if settings.select is not None else ["ALL"],
        "ignore": list(settings.ignore),
        "exclude": list(settings.exclude),
        "target-version": _format_target(settings.target_version),
        "dependencies-module": settings.dependencies_module,
        "alias-min-uses": settings.alias_min_uses,
        "unsafe": settings.unsafe,
        "yield-commit": settings.yield_commit,
    }


def _fastapi_text(settings: Settings) -> Optional[str]:
    version = settings.fastapi_version
    return ".".join(map(str, version)) if version is not None else None


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # a TOML basic string uses JSON's escapes
    return "[" + ", ".join(_toml_value(item) for item in value) + "]"


def settings_as_toml(settings: Settings) -> str:
    """The merged settings as a `[tool.depfix]` table, each line commented with its origin."""
    lines = ["[tool.depfix]"]
    for key, value in effective_values(settings).items():
        if value is None:
            lines.append(
                f"# {key} is not set  # default: dependencies.py in the application package"
            )
        else:
            lines.append(f"{key} = {_toml_value(value)}  # {settings.origin(key)}")
    fastapi = _fastapi_text(settings)
    if fastapi is None:
        lines.append("# FastAPI version: unknown (no bound in the project's dependencies)")
    else:
        lines.append(f"# FastAPI version: {fastapi}  # {settings.origin('fastapi-version')}")
    return "\n".join(lines) + "\n"


def settings_as_json(settings: Settings) -> str:
    """The merged settings, where each came from, and the FastAPI version, as one JSON object."""
    document = {
        "config_file": str(settings.source) if settings.source is not None else None,
        "settings": effective_values(settings),
        "fastapi_version": _fastapi_text(settings),
        "origins": {key: settings.origin(key) for key in (*KEYS, "fastapi-version")},
    }
    return json.dumps(document, indent=2) + "\n"
