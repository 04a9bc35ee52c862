"""DF007 repeated-dependency-annotation: one `Annotated[T, Depends(f)]` spelled out at many parameters.

When the same dependency annotation is written at `alias-min-uses` (default 2) or more parameters of
routes and dependencies, define it once as an alias and use the alias everywhere, as FastAPI's own SQL
tutorial does with `SessionDep`. An alias that already exists in the project is reused.

Before:

    # app/routers/items.py
    from app.db import get_db

    @router.get("/items")
    def list_items(db: Annotated[Session, Depends(get_db)]): ...

    # app/routers/users.py
    from app.db import get_db

    @router.get("/users")
    def list_users(db: Annotated[Session, Depends(get_db)]): ...

After:

    # app/db.py
    def get_db() -> Iterator[Session]: ...


    SessionDep = Annotated[Session, Depends(get_db)]

    # app/routers/items.py
    from app.db import SessionDep

    @router.get("/items")
    def list_items(db: SessionDep): ...

Sites are grouped by marker (`Depends` or `Security`), provider, type and the marker's other arguments:
sites whose arguments differ (`use_cache`, `scope`, `max_concurrency`, `scopes`) are never merged, since
each `Depends` object carries its own settings. Names: `<Type>Dep` when the type is a class
(`SessionDep`, `UserDep`), else `<Provider>Dep` from the provider without its `get_` prefix
(`get_current_username` -> `CurrentUsernameDep`); the provider form also settles two groups that want
the same name. A name bound in the host or in any module that will import the alias is never used;
two modules that share no alias may each define their own `SessionDep`.

Placement, where a person would put it: right after the provider's definition when that adds no import
between project modules (every module that uses the alias already imports the provider's module at its
top level, and that module has the type at hand), as FastAPI's docs do; the alias is then bound as soon
as the provider is, so import cycles through that module fail or succeed as before. Otherwise in the
`dependencies-module` setting (default: `dependencies.py` in the package that holds the uses, created
if missing); a configured `dependencies-module` is used whenever the uses span modules. An alias is not introduced where the
new imports would close an import cycle or enter one, nor where its arguments name values of the module
that uses it; the diagnostic then says why.

Parameters already in `Annotated` form are aliased; `x: T = Depends(f)` parameters are first rewritten
by DF006 and aliased in the same run. Fix safety: safe.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Optional, Union

import libcst as cst

from codemods._placement import new_module_path
from codemods._signatures import annotated_unsupported
from depfix.config import Settings
from depfix.facts import FileFacts, FunctionFact
from depfix.imports import add_from_import, bound_import
from depfix.index import (
    Class,
    DependencyRef,
    External,
    Function,
    Instance,
    ProjectIndex,
    Resolved,
    qualified_name,
)
from depfix.rules import SAFE, Changeset, FileRule, ProjectFinding, Span, register, source_of

MARKERS = {"depends": ("fastapi", "Depends"), "security": ("fastapi", "Security")}
DEPENDS_NAMES = {
    "depends": frozenset(
        {"fastapi.Depends", "fastapi.params.Depends", "fastapi.param_functions.Depends"}
    ),
    "security": frozenset(
        {"fastapi.Security", "fastapi.params.Security", "fastapi.param_functions.Security"}
    ),
}
ANNOTATED_NAMES = frozenset({"typing.Annotated", "typing_extensions.Annotated"})


@dataclass(frozen=True, order=True)
class Key:
    """What makes two annotations the same dependency."""

    kind: str
    provider: str
    type_name: str
    options: str


@dataclass(frozen=True)
class Alias:
    module: str
    path: str
    name: str
    line: int


@dataclass
class NewAlias:
    key: Key
    name: str
    host_module: str
    host_path: str
    sites: list[DependencyRef]
    provider: Union[Function, Class]
    type_resolved: Resolved


@dataclass
class Plan:
    existing: dict[Key, Alias] = field(default_factory=dict)
    sites: dict[Key, list[DependencyRef]] = field(default_factory=dict)
    new: list[NewAlias] = field(default_factory=list)
    refused: list[tuple[Key, str]] = field(default_factory=list)


def _key(index: ProjectIndex, ref: DependencyRef) -> Optional[Key]:
    fact = ref.fact
    if fact.in_string or fact.target_is_call or fact.annotated_size != 2 or not fact.simple_type:
        return None
    if fact.annotation is None:
        return None
    provider = ref.target
    if isinstance(provider, Instance):
        provider_name = fact.target.qname if hasattr(fact.target, "qname") else None  # type: ignore[union-attr]
    else:
        provider_name = qualified_name(provider)
    type_name = qualified_name(index.resolve(fact.annotation))
    if provider_name is None or type_name is None:
        return None
    return Key(ref.kind, provider_name, type_name, fact.options)


def _camel(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in name.split("_") if part)


def _names(key: Key) -> list[str]:
    """Candidate alias names for a group, preferred first."""
    type_short = key.type_name.rsplit(".", 1)[-1]
    provider_short = key.provider.rsplit(".", 1)[-1]
    provider_name = _camel(re.sub(r"^(get|provide|make|build)_", "", provider_short)) + "Dep"
    candidates = []
    if type_short[:1].isupper() and not key.type_name.startswith("builtins."):
        candidates.append(f"{type_short}Dep")
    candidates.append(provider_name)
    return [name for name in dict.fromkeys(candidates) if name.isidentifier()]


def _options_are_literal(options: str) -> bool:
    """Whether a marker's other arguments are literals (they can move to another module)."""
    if not options:
        return True
    try:
        call = ast.parse(f"f({options})", mode="eval").body
    except SyntaxError:
        return False
    assert isinstance(call, ast.Call)
    values = [*call.args, *(keyword.value for keyword in call.keywords)]
    return not any(isinstance(node, ast.Name) for value in values for node in ast.walk(value))


def _dependencies_module(
    index: ProjectIndex, settings: Settings, sites: list[DependencyRef]
) -> Optional[tuple[str, str]]:
    """(module, path) of the module that holds shared dependencies for these sites."""
    if settings.dependencies_module:
        module = settings.dependencies_module.removesuffix(".py").replace("/", ".")
        facts = index.modules.get(module)
        if facts is not None:
            return facts.module, facts.path
        anchor = index.file(sites[0].path)
        return (module, new_module_path(module, anchor)) if anchor is not None else None
    tops = {ref.module.split(".")[0] for ref in sites}
    if len(tops) != 1:
        return None
    top = tops.pop()
    module = f"{top}.dependencies"
    facts = index.modules.get(module)
    if facts is not None:
        return facts.module, facts.path
    first = sites[0]
    depth = first.module.count(".")
    if depth == 0:
        return None  # the uses are top-level modules: there is no application package
    directory = (
        PurePosixPath(first.path).parents[depth - 1] if depth else PurePosixPath(first.path).parent
    )
    if PurePosixPath(first.path).name == "__init__.py":
        directory = PurePosixPath(first.path).parents[depth]
    return module, str(directory / "dependencies.py")


def _groups(index: ProjectIndex) -> Plan:
    """The existing aliases and the sites of each group, which no setting changes (cached per index)."""
    cached = index.memo.get("DF007.groups")
    if isinstance(cached, Plan):
        return cached
    result = Plan()
    for ref in index.dependency_refs:
        facts = index.file(ref.path)
        if facts is None:
            continue
        key = _key(index, ref)
        if key is None:
            continue
        if ref.fact.context == "alias" and ref.fact.alias_name:
            if ref.fact.alias_name in facts.rebound:
                continue
            alias = Alias(ref.module, ref.path, ref.fact.alias_name, ref.fact.line)
            previous = result.existing.get(key)
            if previous is None or (alias.path, alias.line) < (previous.path, previous.line):
                result.existing[key] = alias
        elif (
            ref.fact.context == "annotated"
            and ref.fact.function is not None
            and index.fastapi_role((ref.module, ref.fact.function)) is not None
        ):
            result.sites.setdefault(key, []).append(ref)
    index.memo["DF007.groups"] = result
    return result


def plan(index: ProjectIndex, settings: Settings) -> Plan:
    """Which parameters share an alias: existing ones, and the ones to create (cached per index)."""
    cached = index.memo.get("DF007")
    if isinstance(cached, Plan):
        return cached
    groups = _groups(index)
    result = Plan(dict(groups.existing), {key: list(refs) for key, refs in groups.sites.items()})
    # an alias name is bound in its host and in every module that imports it: the modules each
    # name is already spoken for in by an alias (existing or planned), so that no module gets two
    used: dict[str, set[str]] = {}
    for key, alias in result.existing.items():
        used.setdefault(alias.name, set()).update(
            {alias.module, *(ref.module for ref in result.sites.get(key, []))}
        )
    wanted = sorted(
        (
            key
            for key, sites in result.sites.items()
            if key not in result.existing and len(sites) >= settings.alias_min_uses
        ),
        # a group with fewer names to choose from chooses first (`get_session` has only
        # `SessionDep`; `get_other_session` can fall back to `OtherSessionDep`)
        key=lambda key: (len(_names(key)), -len(result.sites[key]), key),
    )
    hosts: dict[str, _Host] = {}
    for key in wanted:
        sites = sorted(
            result.sites[key], key=lambda ref: (ref.path, ref.fact.line, ref.fact.column)
        )
        provider = sites[0].target
        if not isinstance(provider, (Function, Class)) or "." in provider.fact.qualname:
            result.refused.append((key, _provider_refusal(key, provider)))
            continue
        modules = {ref.module for ref in sites}
        type_resolved = (
            index.resolve(sites[0].fact.annotation) if sites[0].fact.annotation else None
        )
        if modules == {provider.fact.module} or (
            not settings.dependencies_module
            and _adds_no_import(index, provider, type_resolved, modules)
        ):
            host = (provider.fact.module, index.modules[provider.fact.module].path)
            if modules != {host[0]} and not _options_are_literal(key.options):
                result.refused.append((key, "its arguments name values of the modules that use it"))
                continue
        else:
            found = _dependencies_module(index, settings, sites)
            if found is None:
                result.refused.append(
                    (
                        key,
                        "its uses are in several top-level packages and no dependencies-module is set",
                    )
                )
                continue
            host = found
            if not _options_are_literal(key.options):
                result.refused.append((key, "its arguments name values of the modules that use it"))
                continue
        if host[0] != provider.fact.module:
            risk = _import_risk(
                index,
                hosts.setdefault(host[0], _Host(host[0], index)),
                provider,
                type_resolved,
                modules,
            )
            if risk:
                if not settings.dependencies_module:
                    missing = _new_import_next_to_provider(index, provider, type_resolved, modules)
                    risk = (
                        f"next to `{provider.fact.qualname}` it needs a new import ({missing}); "
                        f"in {host[0]} {risk}"
                    )
                result.refused.append((key, risk))
                continue
        host_facts = index.modules.get(host[0])
        taken = set(host_facts.bindings) if host_facts else set()
        for module in modules:
            taken |= set(index.modules[module].bindings)
        spoken_for = {host[0], *modules}
        name = next(
            (
                candidate
                for candidate in _names(key)
                if candidate not in taken and not used.get(candidate, set()) & spoken_for
            ),
            None,
        )
        if name is None:
            tried = ", ".join(f"`{candidate}`" for candidate in _names(key))
            result.refused.append((key, f"every name it could take ({tried}) is already used"))
            continue
        used.setdefault(name, set()).update(spoken_for)
        assert type_resolved is not None
        result.new.append(NewAlias(key, name, host[0], host[1], sites, provider, type_resolved))
    index.memo["DF007"] = result
    return result


def _provider_refusal(key: Key, provider: Resolved) -> str:
    """Why no alias is made for a provider that is not a module-level function or class."""
    name = key.provider.rsplit(".", 1)[-1]
    if isinstance(provider, Instance):
        made_from = qualified_name(provider.of)
        what = f"an instance of `{made_from.rsplit('.', 1)[-1]}`" if made_from else "an object"
        return (
            f"`{name}` is {what}, not a function or class: depfix makes shared aliases only of "
            "module-level functions and classes"
        )
    if isinstance(provider, (Function, Class)):
        outer = provider.fact.qualname.rsplit(".", 1)[0]
        if isinstance(provider, Function) and provider.fact.class_qualname == outer:
            return (
                f"`{name}` is a method of `{outer}`: depfix makes shared aliases only of "
                "module-level functions and classes"
            )
        return f"`{name}` is defined inside `{outer}`: an alias at module level cannot name it"
    if isinstance(provider, External):
        return f"`{name}` comes from outside the project"
    return f"depfix cannot tell what `{name}` is"


def _adds_no_import(
    index: ProjectIndex,
    provider: Union[Function, Class],
    type_resolved: Optional[Resolved],
    modules: set[str],
) -> bool:
    """Whether the alias can live next to its provider without a new import between project modules.

    Every module that uses it already imports the provider's module at its top level, and that
    module already has the type at hand (defined there, or imported at its top level). Then the
    uses import the alias from where they import the provider today, and it is bound right after
    the provider: a module that can read the provider during its imports can read the alias too,
    import cycles included.
    """
    return _new_import_next_to_provider(index, provider, type_resolved, modules) is None


def _new_import_next_to_provider(
    index: ProjectIndex,
    provider: Union[Function, Class],
    type_resolved: Optional[Resolved],
    modules: set[str],
) -> Optional[str]:
    """The new import an alias next to its provider would need (see `_adds_no_import`), or None."""
    home = provider.fact.module
    graph = index.import_graph()
    for module in sorted(modules - {home}):
        if home not in graph.get(module, ()):
            return f"{module} does not import {home}"
    if isinstance(type_resolved, Class) and type_resolved.fact.module != home:
        facts = index.modules.get(home)
        if (
            facts is None
            or type_resolved.fact.module not in graph.get(home, ())
            or index.local_name(facts, type_resolved) is None
        ):
            return f"{home} does not import `{type_resolved.fact.qualname}`"
    return None


class _Host:
    """What a host module of new aliases will import, and which modules will import it."""

    def __init__(self, module: str, index: ProjectIndex) -> None:
        self.closure = {module} | (index.closure(module) if module in index.modules else set())
        self.importers: set[str] = set()
        self.module = module


def _import_risk(
    index: ProjectIndex,
    host: _Host,
    provider: Union[Function, Class],
    type_resolved: Optional[Resolved],
    sites: set[str],
) -> Optional[str]:
    """Why defining this alias in `host` and importing it at `sites` may break the program.

    The host must import nothing that is in an import cycle (a new entry into a cycle changes the
    order its modules run in) and nothing that imports a module that will import the host.
    On success the host records the alias's imports and importers.
    """
    own: set[str] = set()
    for module in (
        provider.fact.module,
        type_resolved.fact.module if isinstance(type_resolved, Class) else None,
    ):
        if module is not None:
            own |= index.closure(module)
    entangled = sorted(own & index.cycle_members())
    if entangled:
        return f"the alias would import {entangled[0]}, which is in an import cycle (see DF008)"
    closure = host.closure | own
    importers = host.importers | (sites - {host.module})
    closing = sorted(importers & closure)
    if closing:
        return f"importing the alias into {closing[0]} would close an import cycle"
    host.closure = closure
    host.importers = importers
    return None


# ---- writing an alias definition -------------------------------------------------------------------
class _Names:
    """Local names for what an alias definition needs in its host module, and imports to add."""

    def __init__(self, index: ProjectIndex, module: Optional[str], tree: cst.Module) -> None:
        self.index = index
        self.facts = index.modules.get(module) if module else None
        self.tree = tree
        self.imports: list[tuple[str, str]] = []

    def local(self, qualified: str, resolved: Optional[Resolved] = None) -> Optional[str]:
        source, _, name = qualified.rpartition(".")
        if source == "builtins":
            return name
        if self.facts is not None:
            wanted = resolved if resolved is not None else self.index.resolve_qualified(qualified)
            local = self.index.local_name(self.facts, wanted)
            if local is not None:
                return local
            if self.facts.module == source and name in self.facts.bindings:
                return name
            if name in self.facts.bindings:
                return None
        if bound_import(self.tree, source, name) is not None:
            return bound_import(self.tree, source, name)
        self.imports.append((source, name))
        return name


def _definition(alias: NewAlias, names: _Names, settings: Settings) -> Optional[str]:
    annotated_source = "typing_extensions" if settings.target_version < (3, 9) else "typing"
    annotated = None
    for source in ("typing", "typing_extensions"):
        annotated = bound_import(names.tree, source, "Annotated")
        if annotated:
            break
    if annotated is None:
        if names.facts is not None and "Annotated" in names.facts.bindings:
            return None
        names.imports.append((annotated_source, "Annotated"))
        annotated = "Annotated"
    marker_source, marker_name = MARKERS[alias.key.kind]
    marker = names.local(
        f"{marker_source}.{marker_name}", External(f"{marker_source}.{marker_name}")
    )
    provider = names.local(alias.key.provider, alias.provider)
    type_name = names.local(alias.key.type_name, alias.type_resolved)
    if marker is None or provider is None or type_name is None:
        return None
    written = alias.sites[0].fact.options_source
    options = f", {written}" if written else ""
    return f"{alias.name} = {annotated}[{type_name}, {marker}({provider}{options})]\n"


def _insert_after_provider(
    tree: cst.Module, alias: NewAlias, statement: cst.SimpleStatementLine, placed: dict[str, int]
) -> Optional[cst.Module]:
    """Put the alias right after its provider's definition (and the aliases already put there)."""
    provider_name = alias.provider.fact.qualname
    body = list(tree.body)
    if provider_name in placed:
        position = placed[provider_name]
        body.insert(position + 1, statement)
        placed[provider_name] = position + 1
        for other, at in placed.items():
            if other != provider_name and at > position:
                placed[other] = at + 1
        return tree.with_changes(body=body)
    for position, node in enumerate(body):
        if isinstance(node, (cst.FunctionDef, cst.ClassDef)) and node.name.value == provider_name:
            lines = [cst.EmptyLine(), cst.EmptyLine()]
            body.insert(position + 1, statement.with_changes(leading_lines=lines))
            for other, at in placed.items():
                if at > position:
                    placed[other] = at + 1
            placed[provider_name] = position + 1
            return tree.with_changes(body=body)
    return None


@register
class ShareDependencyAlias(FileRule):
    CODE = "DF007"
    NAME = "repeated-dependency-annotation"
    SUMMARY = "the same `Annotated[T, Depends(f)]` written at several parameters: define one alias"
    FIX = SAFE
    NEEDLES = (b"Annotated",)
    FASTAPI_ONLY = True

    @classmethod
    def wants(cls, facts: FileFacts, index: ProjectIndex) -> bool:
        """Mirrors `visit_Param`: a parameter's `Annotated[T, Depends(f)]` of a group (a site of a
        route or dependency) that an alias of the project already spells."""
        if not any(
            ref.annotated_size == 2 and ref.context == "annotated" for ref in facts.dependency_refs
        ):
            return False
        groups = _groups(index)
        for ref in index.dependency_refs_in(facts.path):
            if ref.fact.context != "annotated":
                continue
            key = _key(index, ref)
            if key is not None and key in groups.existing and ref in groups.sites.get(key, ()):
                return True
        return False

    @classmethod
    def inactive(cls, settings: Settings) -> Optional[str]:
        return annotated_unsupported(settings)

    # ---- the project part: create aliases ------------------------------------------------------
    @classmethod
    def plan_project(
        cls, index: ProjectIndex, settings: Settings, sources: Mapping[str, bytes]
    ) -> Iterable[ProjectFinding]:
        if annotated_unsupported(settings):
            return
        result = plan(index, settings)
        for key, reason in result.refused:
            first = min(result.sites[key], key=lambda ref: (ref.path, ref.fact.line))
            yield ProjectFinding(
                cls.CODE,
                first.path,
                _span(first),
                _message(key, len(result.sites[key])),
                None,
                None,
                reason,
                key=_finding_key(key),
            )
        hosts: dict[str, list[NewAlias]] = {}
        for alias in result.new:
            hosts.setdefault(alias.host_path, []).append(alias)
        for host_path, aliases in sorted(hosts.items()):
            changes = _changes(aliases, index, settings, sources)
            changeset = Changeset(changes) if isinstance(changes, dict) else None
            for alias in aliases:
                # reported at a use outside the host, which may be a file this run creates (DF008)
                first = next(
                    (r for r in alias.sites if r.module != alias.host_module), alias.sites[0]
                )
                message = (
                    _message(alias.key, len(alias.sites)) + f": define it once as `{alias.name}`"
                )
                if changeset is None:
                    yield ProjectFinding(
                        cls.CODE,
                        first.path,
                        _span(first),
                        message,
                        None,
                        None,
                        str(changes),
                        key=_finding_key(alias.key),
                    )
                else:
                    message += f" in {host_path}"
                    yield ProjectFinding(
                        cls.CODE,
                        first.path,
                        _span(first),
                        message,
                        changeset,
                        SAFE,
                        key=_finding_key(alias.key),
                    )

    # ---- the file part: use aliases at their sites ----------------------------------------------
    def visit_Param(self, node: cst.Param) -> None:
        if annotated_unsupported(self.context.settings):
            return
        annotation = node.annotation
        if annotation is None or not isinstance(annotation.annotation, cst.Subscript):
            return
        subscript = annotation.annotation
        if len(subscript.slice) != 2:
            return
        marker = subscript.slice[1].slice
        if not isinstance(marker, cst.Index) or not isinstance(marker.value, cst.Call):
            return
        span = self.span(marker.value)
        ref = self.index.dependency_ref_at(self.context.path, span.line, span.column)
        if ref is None:
            return
        result = plan(self.index, self.context.settings)
        key = _key(self.index, ref)
        if key is None or key not in result.existing or ref not in result.sites.get(key, []):
            return
        alias = result.existing[key]
        message = f"`{source_of(subscript)}` is the alias `{alias.name}` of {alias.module}; use it"
        if "#" in source_of(subscript):
            self.report(node, message, reason="a comment inside the annotation would be lost")
            return
        facts = self.context.facts
        imports: tuple[tuple[str, str], ...] = ()
        if alias.module == facts.module:
            function = self.index.function((facts.module, ref.fact.function or ""))
            if function is None or (
                function.line <= alias.line
                and not _annotations_read_later(self.index, self.context.path, function, alias.line)
            ):
                self.report(node, message, reason="the alias is defined after this function")
                return
            local = alias.name
        else:
            local = alias.name
            bound = facts.bindings.get(local)
            alias_value = self.index.resolve_qualified(f"{alias.module}.{alias.name}")
            if bound is not None and self.index.resolve(bound) != alias_value:
                self.report(node, message, reason=f"the name `{local}` means something else here")
                return
            risk = (
                None
                if alias.module in self.index.closure(facts.module)
                else self.index.new_import_risk(facts.module, alias.module)
            )
            if risk:
                self.report(node, message, reason=risk)
                return
            if bound is None:
                imports = ((alias.module, alias.name),)
        self.report(node, message, target=subscript, replacement=cst.Name(local), imports=imports)


def _annotations_read_later(
    index: ProjectIndex, path: str, function: FunctionFact, line: int
) -> bool:
    """Whether a nested function's annotations are evaluated only once its module has run to `line`.

    They are evaluated when its enclosing module-level function runs: that is later when nothing in
    the module calls it before `line` (a call inside a function counts too: it may run at import)
    and the module is in no import cycle (another module could call it while this one is running).
    """
    outer, nested, _ = function.qualname.partition(".<locals>.")
    if not nested or "." in outer or function.module in index.cycle_members():
        return False
    key = (function.module, outer)
    if any(site_path == path and site.line < line for site_path, site in index.direct_calls(key)):
        return False
    return not any(
        ref.fact.target_is_call
        and isinstance(ref.target, Function)
        and (ref.target.fact.module, ref.target.fact.qualname) == key
        and ref.fact.line < line
        for ref in index.dependency_refs_in(path)
    )


def _finding_key(key: Key) -> str:
    """A group's identity across rounds: its names without their modules, which a DF008 move
    changes (a group refused or set aside in one round is the group a later round fixes)."""
    short = Key(
        key.kind, key.provider.rsplit(".", 1)[-1], key.type_name.rsplit(".", 1)[-1], key.options
    )
    return repr(short)


def _span(ref: DependencyRef) -> Span:
    return Span(ref.fact.line, ref.fact.column, ref.fact.end_line, ref.fact.end_column)


def _message(key: Key, count: int) -> str:
    marker = MARKERS[key.kind][1]
    provider = key.provider.rsplit(".", 1)[-1]
    options = f", {key.options}" if key.options else ""
    annotation = f"Annotated[{key.type_name.rsplit('.', 1)[-1]}, {marker}({provider}{options})]"
    return f"`{annotation}` is written at {count} parameters"


def _changes(
    aliases: list[NewAlias], index: ProjectIndex, settings: Settings, sources: Mapping[str, bytes]
) -> Union[dict[str, bytes], str]:
    """The new contents of the host module of these aliases, or why it cannot be written."""
    host = aliases[0]
    exists = host.host_module in index.modules
    if exists:
        try:
            tree = cst.parse_module(sources[host.host_path])
        except cst.ParserSyntaxError:
            return f"{host.host_path} cannot be parsed"
    else:
        tree = cst.parse_module(b'"""Dependencies shared by the application\'s routes."""\n')
    names = _Names(index, host.host_module if exists else None, tree)
    appended: list[cst.SimpleStatementLine] = []
    placed: dict[str, int] = {}
    for alias in aliases:
        text = _definition(alias, names, settings)
        if text is None:
            return f"a name the alias needs is bound to something else in {host.host_path}"
        statement = cst.ensure_type(cst.parse_statement(text), cst.SimpleStatementLine)
        if alias.host_module == alias.provider.fact.module:
            first_use = min(
                (
                    index.function((ref.module, ref.fact.function or ""))
                    for ref in alias.sites
                    if ref.module == alias.host_module
                ),
                key=lambda fact: fact.line if fact else 0,
                default=None,
            )
            if first_use is not None and first_use.line < alias.provider.fact.line:
                return "a use comes before the provider's definition"
            inserted = _insert_after_provider(tree, alias, statement, placed)
            if inserted is None:
                return "the provider is not defined at the top level of its module"
            tree = inserted
        else:
            appended.append(statement)
    if appended:
        blank = [cst.EmptyLine(), cst.EmptyLine()] if exists else [cst.EmptyLine()]
        appended[0] = appended[0].with_changes(leading_lines=blank)
        # an empty host (`__init__.py`) has no final newline to keep
        tree = tree.with_changes(body=[*tree.body, *appended], has_trailing_newline=True)
    first_party = index.top_level_packages()
    for source_module, name in sorted(set(names.imports)):
        tree = add_from_import(tree, source_module, name, first_party)
    return {host.host_path: tree.bytes}


def _sites_text(sites: list[DependencyRef]) -> str:
    return ", ".join(f"{ref.path}:{ref.fact.line}" for ref in sites)
