"""DF008 dependency-import-cycle: routers import dependencies from each other until the app dies.

`routers/auth.py` imports a helper from `routers/users.py`, `users.py` imports `get_current_user` from
`auth.py`, and the application fails at import time with "cannot import name ... (most likely due to a
circular import)". The fix experienced FastAPI developers apply: move the shared dependencies into one
module that imports nothing from the routers, and point every import at it.

Before:

    # app/routers/auth.py
    from fastapi import APIRouter, Depends
    from fastapi.security import OAuth2PasswordBearer

    from app.routers.users import User, find_user

    router = APIRouter()
    oauth2_scheme = OAuth2PasswordBearer(tokenUrl="token")

    def get_current_user(token: str = Depends(oauth2_scheme)) -> User:
        return find_user(token)

    # app/routers/users.py
    from fastapi import APIRouter, Depends

    from app.routers.auth import get_current_user

    router = APIRouter()
    ...

After:

    # app/dependencies.py (created)
    from fastapi import Depends
    from fastapi.security import OAuth2PasswordBearer

    from app.routers.users import User, find_user  (when those are outside the cycle; else they move)

    oauth2_scheme = OAuth2PasswordBearer(tokenUrl="token")


    def get_current_user(token: str = Depends(oauth2_scheme)) -> User:
        return find_user(token)

    # app/routers/users.py
    from app.dependencies import get_current_user

depfix follows every import that runs a module when its module runs (`import pkg.x` and
`from pkg import submodule` included; function-local and `if TYPE_CHECKING:` imports are not) and
reports a cycle when an import inside it takes a name from a module that may still be running:
`from x import name`, or `Depends(x.name)` evaluated at import time. A cycle is reported as a problem,
and changed, only when it is caused by dependencies: a `Depends`/`Security` target defined in one
member and imported by another.
Other cycles (often harmless thanks to the order the modules run in) and cycles that exist only through
lazy imports are shown as notes, which set no exit code. The move
takes those dependencies and everything they need that is defined inside the cycle (helpers, security
schemes, other module-level values, and what they read as `users.find_user` through a module of the
cycle, which they then read directly), ordered so that each name is defined before it is needed; the
imports they need from outside the cycle are copied as real imports (FastAPI evaluates annotations at
run time). The target is the `dependencies-module` setting, else `dependencies.py` in the application
package, created or appended to. Every import of a moved name in the project is pointed at it, tests
included (function-local imports in place, relative ones kept relative), and so is every
`module.name` read through an imported module object (`auth.get_current_user` becomes
`dependencies.get_current_user`); a source keeps a re-export when the name is in its `__all__`, it is star-imported, or a file
that cannot be rewritten imports it. The whole change is verified before it is offered: the cycle is
gone, the new module is in no cycle and no edited file reads a name nothing defines.

No fix, with the reason, when the move would take a route, an app or router, a name defined
conditionally or rebound, a value that uses `__name__`, or when a string such as
`mock.patch("app.routers.auth.get_current_user")` names the old place. Fix safety: safe.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Optional, Union

import libcst as cst

from codemods._module_analysis import ImportBinding, ModuleAnalysis, analyse
from codemods._placement import new_module_path
from depfix.config import Settings
from depfix.facts import FileFacts, ImportFact, extract_facts, resolve_relative
from depfix.imports import (
    add_from_import,
    add_import,
    dotted,
    relative_source,
    remove_imports_made_unused,
    uses_relative_imports,
)
from depfix.index import Class, Function, ProjectIndex, strongly_connected
from depfix.rules import SAFE, Changeset, ProjectFinding, ProjectRule, Span, register, source_of
from depfix.values import Name

ALL_IMPORTS = frozenset({"eager", "local", "type_checking"})
EAGER_ONLY = frozenset({"eager"})


class Refusal(Exception):
    """Why a cycle is reported without a fix."""


@dataclass(frozen=True)
class Edge:
    path: str
    line: int
    importer: str
    imported: str
    names: tuple[str, ...]
    attribute: bool = False
    """`Depends(module.name)` through an imported module object, read when the module runs."""

    def describe(self, with_line: bool = True) -> str:
        where = f"{self.path}:{self.line}" if with_line else self.path
        if self.attribute:
            return f"{where} reads {self.imported}.{self.names[0]} while it runs"
        what = f"{', '.join(self.names)} from {self.imported}" if self.names else self.imported
        return f"{where} imports {what}"


@dataclass
class _Move:
    """The planned move: which statements of which modules go, and what the new module imports."""

    statements: dict[tuple[str, int], tuple[str, ...]] = field(default_factory=dict)
    """(module, position) -> the names the statement defines."""
    names: dict[tuple[str, str], str] = field(default_factory=dict)
    """(source module, name) -> name in the new module."""
    imports: dict[str, ImportBinding] = field(default_factory=dict)
    """Bound name -> the import the new module needs for it (with the importing module's view)."""
    import_owner: dict[str, str] = field(default_factory=dict)
    future: set[str] = field(default_factory=set)
    unqualify: dict[tuple[str, int], set[str]] = field(default_factory=dict)
    """Statement -> the module names whose `module.name` reads become plain `name` once moved."""


def _some(items: list[str], separator: str, what: str, limit: int = 6) -> str:
    """The first `limit` items joined, and how many more there are (cycles can span hundreds)."""
    if len(items) <= limit:
        return separator.join(items)
    return separator.join(items[:limit]) + f"{separator}and {len(items) - limit} more {what}"


def _span(line: int) -> Span:
    return Span(line, 1, line, 1)


@register
class ExtractSharedDependencies(ProjectRule):
    CODE = "DF008"
    NAME = "dependency-import-cycle"
    SUMMARY = (
        "An import cycle among the project's modules caused by importing dependencies between them."
    )
    FIX = SAFE

    def plan(self) -> Iterable[ProjectFinding]:
        eager = name_import_cycles(self.index, EAGER_ONLY)
        for cycle in eager:
            yield self._plan_cycle(cycle)
        for component in name_import_cycles(self.index, ALL_IMPORTS):
            if any(set(component) <= set(cycle) for cycle in eager):
                continue
            edges = cycle_edges(self.index, component, ALL_IMPORTS)
            yield ProjectFinding(
                self.CODE,
                edges[0].path,
                _span(edges[0].line),
                f"import cycle {self._chain(component)} only through function-local or "
                f"TYPE_CHECKING imports, which cannot fail at import time: "
                + _some([edge.describe() for edge in edges], "; ", "imports"),
                info=True,
            )

    @staticmethod
    def _chain(cycle: list[str]) -> str:
        return " <-> ".join(cycle) if len(cycle) == 2 else _some(cycle, ", ", "modules")

    def _plan_cycle(self, cycle: list[str]) -> ProjectFinding:
        edges = cycle_edges(self.index, cycle, EAGER_ONLY)
        first = edges[0] if edges else None
        path = first.path if first else self.index.modules[cycle[0]].path
        line = first.line if first else 1
        message = f"import cycle {self._chain(cycle)}: " + _some(
            [edge.describe() for edge in edges], "; ", "imports"
        )
        try:
            seeds = self._seeds(cycle, edges)
            if not seeds:
                # Not the mistake this rule is about, and many such cycles work because of the
                # order their modules run in: a note, not a diagnostic that fails CI.
                return ProjectFinding(
                    self.CODE,
                    path,
                    _span(line),
                    f"{message} (no dependency (Depends/Security target) defined in one member is "
                    "imported by another: left alone)",
                    info=True,
                )
            planner = _Planner(self.index, self.settings, self.sources, cycle, seeds)
            files, target = planner.plan()
        except Refusal as refusal:
            return ProjectFinding(self.CODE, path, _span(line), message, reason=str(refusal))
        moved = ", ".join(sorted({name for (_, name) in seeds}))
        return ProjectFinding(
            self.CODE,
            path,
            _span(line),
            f"{message} (fix: move {moved} to {target})",
            changeset=Changeset(files),
            safety=SAFE,
        )

    def _seeds(self, cycle: list[str], edges: list[Edge]) -> list[tuple[str, str]]:
        targets = {
            ref.target
            for ref in self.index.dependency_refs
            if isinstance(ref.target, (Function, Class))
        }
        sites = {
            _site(self.index, ref.fact.target.qname)
            for ref in self.index.dependency_refs
            if isinstance(ref.fact.target, Name)
        }
        seeds: set[tuple[str, str]] = set()
        for edge in edges:
            facts = self.index.modules[edge.imported]
            for name in edge.names:
                defined = (
                    name in facts.functions
                    or name in facts.classes
                    or (
                        name in facts.bindings
                        and _site(self.index, f"{facts.module}.{name}") == (facts.module, name)
                    )
                )
                if not defined:
                    continue
                resolved = self.index.resolve_qualified(f"{facts.module}.{name}")
                if resolved in targets or (facts.module, name) in sites:
                    seeds.add((facts.module, name))
        return sorted(seeds)


def _fetches_names(index: ProjectIndex, fact: ImportFact) -> bool:
    """Whether an import reads names off a project module (`from x import name`), which fails
    while that module is only partly run. `import pkg.mod` and `from pkg import submodule` only
    need the module object, which Python hands out half-initialised."""
    if fact.star:
        return True
    return any(f"{fact.target}.{name}" not in index.modules for name in fact.names)


def _runs(index: ProjectIndex, facts: FileFacts, fact: ImportFact) -> set[str]:
    """The project modules an import statement may start running.

    `from a.b import c` runs `a`, `a.b` and, when it is a module, `a.b.c`. The packages that
    contain the importing module are left out: they always start before it.
    """
    wanted = [fact.target, *(f"{fact.target}.{name}" for name in fact.names)]
    found: set[str] = set()
    for name in wanted:
        parts = name.split(".")
        for cut in range(1, len(parts) + 1):
            target = index.modules.get(".".join(parts[:cut]))
            if target is not None:
                found.add(target.module)
    own = facts.module.split(".")
    ancestors = {".".join(own[:cut]) for cut in range(1, len(own) + 1)}
    return found - ancestors


@dataclass(frozen=True)
class ImportGraph:
    """Which modules each module runs when it runs (`runs`), and which of those edges read names
    off the module they run (`fetches`): an import cycle can fail only at one of those."""

    runs: dict[str, set[str]]
    fetches: set[tuple[str, str]]

    def cycles(self) -> list[list[str]]:
        """The cycles that can fail: strongly connected components with a fetching edge inside."""
        found = []
        for component in strongly_connected(self.runs):
            if len(component) > 1 and any(
                a in component and b in component for a, b in self.fetches
            ):
                found.append(sorted(component))
        return sorted(found)


def import_graph(index: ProjectIndex, kinds: frozenset[str]) -> ImportGraph:
    key = f"DF008:graph:{','.join(sorted(kinds))}"
    cached = index.memo.get(key)
    if isinstance(cached, ImportGraph):
        return cached
    runs: dict[str, set[str]] = {}
    fetches: set[tuple[str, str]] = set()
    for facts in index.files.values():
        edges = runs.setdefault(facts.module, set())
        for fact in facts.imports:
            if fact.kind not in kinds:
                continue
            edges.update(_runs(index, facts, fact))
            target = index.modules.get(fact.target)
            if target is not None and target.module != facts.module and _fetches_names(index, fact):
                fetches.add((facts.module, target.module))
        for edge in _attribute_edges(index, facts):
            fetches.add((facts.module, edge.imported))
    graph = ImportGraph(runs, fetches)
    index.memo[key] = graph
    return graph


def name_import_cycles(index: ProjectIndex, kinds: frozenset[str]) -> list[list[str]]:
    """The import cycles that can fail, with imports of the given kinds, sorted."""
    return import_graph(index, kinds).cycles()


def cycle_edges(index: ProjectIndex, cycle: list[str], kinds: frozenset[str]) -> list[Edge]:
    """The imports between members of a cycle, with the names they take."""
    members = set(cycle)
    edges = []
    for module in sorted(cycle):
        facts = index.modules[module]
        for fact in facts.imports:
            if fact.kind not in kinds:
                continue
            reached = sorted(_runs(index, facts, fact) & members - {module})
            target = index.modules.get(fact.target)
            if target is not None and target.module in reached and _fetches_names(index, fact):
                names = tuple(n for n in fact.names if f"{fact.target}.{n}" not in index.modules)
                edges.append(Edge(facts.path, fact.line, module, target.module, names or ("*",)))
            elif reached:
                edges.append(Edge(facts.path, fact.line, module, reached[-1], ()))
        edges.extend(edge for edge in _attribute_edges(index, facts) if edge.imported in members)
    return sorted(set(edges), key=lambda e: (e.path, e.line, e.imported))


def _attribute_edges(index: ProjectIndex, facts: FileFacts) -> list[Edge]:
    """`Depends(auth.get_current_user)` evaluated while the module runs, through `import auth`.

    Reading an attribute of a module that is still running fails like `from auth import name`.
    """
    edges = []
    imported = None
    for ref in facts.dependency_refs:
        if not isinstance(ref.target, Name) or not _runs_at_import(facts, ref.function):
            continue
        module, _, name = ref.target.qname.rpartition(".")
        target = index.modules.get(module)
        if target is None or target.module == facts.module:
            continue
        if any(
            fact.target == module and name in fact.names and fact.kind == "eager"
            for fact in facts.imports
        ):
            continue  # a plain `from module import name`: an edge of its own
        if imported is None:
            imported = index.imported_modules(facts)
        if target.module in imported:
            edges.append(Edge(facts.path, ref.line, facts.module, target.module, (name,), True))
    return edges


def _runs_at_import(facts: FileFacts, function: Optional[str]) -> bool:
    """Whether code in this function's signature runs when the module runs (not in a factory)."""
    if function is None:
        return True
    parts = function.split(".")
    return all(".".join(parts[: cut + 1]) in facts.classes for cut in range(len(parts) - 1))


def _site(index: ProjectIndex, qname: str, depth: int = 0) -> Optional[tuple[str, str]]:
    """(module, name) where a module-level name is defined, following imports and re-exports."""
    module, _, name = qname.rpartition(".")
    facts = index.modules.get(module)
    if facts is None or depth > 20:
        return None
    if name in facts.functions or name in facts.classes:
        return facts.module, name
    binding = facts.bindings.get(name)
    imported = any(
        fact.kind == "eager"
        and name in fact.names
        and isinstance(binding, Name)
        and binding.qname == f"{fact.target}.{name}"
        for fact in facts.imports
    ) or any(
        fact.kind == "eager"
        and not fact.names
        and isinstance(binding, Name)
        and binding.qname == fact.target
        for fact in facts.imports
    )
    if isinstance(binding, Name) and imported:
        return _site(index, binding.qname, depth + 1)
    if binding is not None:
        return facts.module, name
    return None


# ---- planning the move ----------------------------------------------------------------------------
class _Planner:
    def __init__(
        self,
        index: ProjectIndex,
        settings: Settings,
        sources: Mapping[str, bytes],
        cycle: list[str],
        seeds: list[tuple[str, str]],
    ) -> None:
        self.index = index
        self.settings = settings
        self.sources = sources
        self.cycle = set(cycle)
        self.seeds = seeds
        self.analyses: dict[str, ModuleAnalysis] = {}
        self.move = _Move()

    def analysis(self, module: str) -> ModuleAnalysis:
        if module not in self.analyses:
            facts = self.index.modules[module]
            self.analyses[module] = analyse(module, facts.is_package, self._tree(facts.path))
        return self.analyses[module]

    def _tree(self, path: str) -> cst.Module:
        try:
            return cst.parse_module(self.sources[path])
        except (cst.ParserSyntaxError, RecursionError, ValueError) as error:
            raise Refusal(f"libcst cannot parse {path}: {error}") from None

    def writable(self, path: str) -> bool:
        check = getattr(self.sources, "writable", None)
        return bool(check(path)) if check is not None else True

    # -- what moves
    def collect(self) -> None:
        queue = list(self.seeds)
        while queue:
            module, name = queue.pop(0)
            if (module, name) in self.move.names:
                continue
            analysis = self.analysis(module)
            facts = self.index.modules[module]
            if name in analysis.conditional:
                raise Refusal(f"{name} is defined conditionally in {facts.path}")
            if name in analysis.mutated or len(analysis.definitions.get(name, ())) != 1:
                raise Refusal(f"{name} is rebound in {facts.path}")
            position = analysis.definitions[name][0]
            statement = analysis.statements[position]
            self._check_movable(module, name, statement.node, facts)
            if statement.dunders:
                raise Refusal(
                    f"{name} in {facts.path} uses {sorted(statement.dunders)[0]}, whose value would change"
                )
            self.move.statements[(module, position)] = tuple(sorted(statement.defines))
            for defined in statement.defines:
                self.move.names[(module, defined)] = defined
            for used in sorted(statement.uses):
                if (
                    used in analysis.definitions
                    or used in analysis.conditional
                    or used in analysis.mutated
                ):
                    queue.append((module, used))
                elif used in analysis.imports:
                    self._needs_import(
                        analysis, analysis.imports[used], queue, (module, position), statement.node
                    )
        if "annotations" in self._futures():
            self.move.future.add("annotations")

    def _futures(self) -> set[str]:
        found: set[str] = set()
        for module, _ in self.move.statements:
            for binding in self.analysis(module).imports.values():
                if binding.module == "__future__" and binding.original:
                    found.add(binding.original)
        return found

    def _check_movable(
        self, module: str, name: str, node: cst.BaseStatement, facts: FileFacts
    ) -> None:
        if not isinstance(node, (cst.FunctionDef, cst.ClassDef, cst.SimpleStatementLine)):
            raise Refusal(f"{name} in {facts.path} is not a plain definition")
        if name in facts.functions and self.index.fastapi_role((module, name)) == "route":
            raise Refusal(f"{name} in {facts.path} is a route")
        resolved = self.index.resolve_qualified(f"{module}.{name}")
        if self.index.is_fastapi_object(resolved):
            raise Refusal(f"{name} in {facts.path} is a FastAPI app or router")
        if isinstance(node, (cst.FunctionDef, cst.ClassDef)):
            for decorator in node.decorators:
                expression = decorator.decorator
                if isinstance(expression, cst.Call):
                    expression = expression.func
                text = cst.Module(body=[]).code_for_node(expression)
                owner = text.rsplit(".", 1)[0]
                if "." in text and self.index.is_fastapi_object(
                    self.index.resolve_qualified(f"{module}.{owner}")
                ):
                    raise Refusal(
                        f"{name} in {facts.path} is registered on a FastAPI app or router"
                    )

    def _needs_import(
        self,
        analysis: ModuleAnalysis,
        binding: ImportBinding,
        queue: list[tuple[str, str]],
        key: tuple[str, int],
        node: cst.CSTNode,
    ) -> None:
        if binding.module == "__future__":
            return
        target = self.index.modules.get(binding.module)
        submodule = (
            self.index.modules.get(f"{binding.module}.{binding.original}")
            if binding.original
            else None
        )
        if binding.original is None or submodule is not None:
            bound = submodule or target
            if bound is not None and bound.module in self.cycle and binding.original is not None:
                # `users.get_user(...)` through `from app.routers import users`: the names it
                # reads move along and are read directly
                attributes = _attributes_read(node, binding.name)
                if attributes is None:
                    raise Refusal(
                        f"the dependencies use module {bound.module} itself, which is in the cycle"
                    )
                for attribute in sorted(attributes):
                    if attribute not in self.analysis(bound.module).definitions:
                        raise Refusal(f"{bound.module} does not define {attribute} itself")
                    queue.append((bound.module, attribute))
                self.move.unqualify.setdefault(key, set()).add(binding.name)
                return
            if bound is not None and self._entangled(bound.module):
                raise Refusal(
                    f"the dependencies use module {bound.module} itself, which is in the cycle"
                )
        elif target is not None and target.module in self.cycle:
            source = self.analysis(target.module)
            if binding.original not in source.definitions:
                raise Refusal(
                    f"{binding.original} is re-exported by {target.path}, not defined there"
                )
            if binding.name != binding.original:
                raise Refusal(
                    f"{binding.original} is imported as {binding.name} in {self.index.modules[analysis.module].path}"
                )
            queue.append((target.module, binding.original))
            return
        previous = self.move.imports.get(binding.name)
        if previous is not None and (previous.module, previous.original) != (
            binding.module,
            binding.original,
        ):
            raise Refusal(f"two different imports are bound to {binding.name}")
        self.move.imports.setdefault(binding.name, binding)
        self.move.import_owner.setdefault(binding.name, analysis.module)

    def _entangled(self, module: str) -> bool:
        return module in self.cycle or bool(self.index.closure(module) & self.cycle)

    # -- where it goes
    def target(self) -> tuple[str, str]:
        members = sorted(self.cycle)
        configured = self.settings.dependencies_module
        if configured:
            module = configured.removesuffix(".py").replace("/", ".")
        else:
            tops = {m.split(".")[0] for m in members}
            deep = [m for m in members if "." in m]
            if len(tops) != 1:
                raise Refusal(
                    "the cycle spans several top-level packages and no dependencies-module is set"
                )
            module = f"{tops.pop()}.dependencies" if deep else "dependencies"
        existing = self.index.modules.get(module)
        if existing is not None:
            return existing.module, existing.path
        return module, new_module_path(module, self.index.modules[members[0]])

    # -- the whole changeset
    def plan(self) -> tuple[dict[str, bytes], str]:
        self.collect()
        target_module, target_path = self.target()
        if target_module in self.cycle:
            raise Refusal(f"{target_module} is itself in the cycle")
        if self._entangled(target_module) and target_module in self.index.modules:
            raise Refusal(f"{target_path} imports a module of the cycle")
        self._check_strings()
        files: dict[str, bytes] = {}
        moved_by_module: dict[str, set[str]] = {}
        for module, name in self.move.names:
            moved_by_module.setdefault(module, set()).add(name)
        all_moved = {name for names in moved_by_module.values() for name in names}
        if len(all_moved) != len(self.move.names):
            raise Refusal("two moved definitions have the same name")
        self._check_assignments(moved_by_module)
        keep = self._reexports(moved_by_module)
        for module in sorted(moved_by_module):
            facts = self.index.modules[module]
            if not self.writable(facts.path):
                raise Refusal(f"{facts.path} is outside the given paths")
        importers = self._importers(moved_by_module, keep)
        edited: dict[str, cst.Module] = {}
        for path in sorted(importers | {self.index.modules[m].path for m in moved_by_module}):
            if path == target_path:
                continue
            edited[path] = self._edit(path, moved_by_module, keep, target_module)
        new_code = self._new_module(target_module, target_path, moved_by_module, all_moved)
        for path, tree in edited.items():
            files[path] = tree.bytes
        files[target_path] = new_code
        self._verify(files, target_module, target_path)
        return files, target_path

    # -- who still needs what
    def _reexports(self, moved_by_module: dict[str, set[str]]) -> dict[str, set[str]]:
        """Per source module, the moved names it must still bind (imported from the new module)."""
        keep: dict[str, set[str]] = {}
        star_imported = {
            target for facts in self.index.files.values() for target in facts.star_imports
        }
        for module, names in moved_by_module.items():
            facts = self.index.modules[module]
            analysis = self.analysis(module)
            moved_positions = {p for (m, p) in self.move.statements if m == module}
            for name in names:
                users = analysis.used_by.get(name, set()) - moved_positions
                exported = facts.all_names is not None and name in facts.all_names
                if users or exported or module in star_imported:
                    keep.setdefault(module, set()).add(name)
        for facts in self.index.files.values():
            for fact in facts.imports:
                target = self.index.modules.get(fact.target)
                if target is None or target.module not in moved_by_module:
                    continue
                wanted = set(fact.names) & moved_by_module[target.module]
                if wanted and (not self.writable(facts.path) or fact.kind == "type_checking"):
                    keep.setdefault(target.module, set()).update(wanted)
            for module in self._modules_read_as_attributes(facts, moved_by_module):
                if not self.writable(facts.path):
                    keep.setdefault(module, set()).update(moved_by_module[module])
        return keep

    def _modules_read_as_attributes(
        self, facts: FileFacts, moved_by_module: dict[str, set[str]]
    ) -> set[str]:
        """Source modules whose moved names this file may read as `module.name`."""
        found = set()
        data = self.sources[facts.path]
        for fact in facts.imports:
            candidates = [fact.target] if not fact.names else []
            candidates += [f"{fact.target}.{name}" for name in fact.names]
            for candidate in candidates:
                for module, names in moved_by_module.items():
                    if (module == candidate or module.startswith(candidate + ".")) and any(
                        re.search(rb"\." + re.escape(n.encode()) + rb"\b", data) for n in names
                    ):
                        found.add(module)
        return found

    def _importers(
        self, moved_by_module: dict[str, set[str]], keep: dict[str, set[str]]
    ) -> set[str]:
        found = set()
        for facts in self.index.files.values():
            for fact in facts.imports:
                target = self.index.modules.get(fact.target)
                if (
                    target is not None
                    and target.module in moved_by_module
                    and set(fact.names) & moved_by_module[target.module]
                    and self.writable(facts.path)
                    and fact.kind != "type_checking"
                ):
                    found.add(facts.path)
            if self.writable(facts.path) and self._modules_read_as_attributes(
                facts, moved_by_module
            ):
                found.add(facts.path)
        return found

    def _check_strings(self) -> None:
        wanted = {f"{module}.{name}" for (module, name) in self.move.names}
        dotted_names = re.compile(
            rb"[\"'](" + b"|".join(re.escape(w.encode()) for w in sorted(wanted)) + rb")[\"']"
        )
        names = {name for (_, name) in self.move.names}
        patched = re.compile(
            rb"(?:patch\.object|setattr|delattr)\(\s*[\w.]+\s*,\s*[\"']("
            + b"|".join(re.escape(n.encode()) for n in sorted(names))
            + rb")[\"']"
        )
        for facts in self.index.files.values():
            data = self.sources[facts.path]
            for pattern in (dotted_names, patched):
                match = pattern.search(data)
                if match:
                    line = data.count(b"\n", 0, match.start()) + 1
                    raise Refusal(
                        f"{facts.path}:{line} names {match.group(1).decode()} in a string "
                        "(mock.patch or similar), which would stop working"
                    )

    def _check_assignments(self, moved_by_module: dict[str, set[str]]) -> None:
        """Refuse when a file assigns a moved name through its module (`auth.SECRET = ...`):
        the moved code would no longer see the value."""
        for facts in self.index.files.values():
            data = self.sources[facts.path]
            for module in sorted(self._modules_read_as_attributes(facts, moved_by_module)):
                names = b"|".join(re.escape(n.encode()) for n in sorted(moved_by_module[module]))
                match = re.search(
                    rb"\.(" + names + rb")\s*(?:[-+*/%|&^@]|//|<<|>>|\*\*)?=(?!=)", data
                )
                if match:
                    line = data.count(b"\n", 0, match.start()) + 1
                    raise Refusal(
                        f"{facts.path}:{line} assigns {match.group(1).decode()} of {module}, "
                        "which the moved code would no longer see"
                    )

    # -- editing the sources and importers
    def _edit(
        self,
        path: str,
        moved_by_module: dict[str, set[str]],
        keep: dict[str, set[str]],
        target_module: str,
    ) -> cst.Module:
        facts = self.index.files[path]
        before = self._tree(path)
        module = facts.module
        removed_positions = {p for (m, p) in self.move.statements if m == module}
        body: list[cst.BaseStatement] = []
        carried: Optional[list[cst.EmptyLine]] = None
        for position, statement in enumerate(before.body):
            if position in removed_positions:
                if carried is None:
                    carried = [line for line in statement.leading_lines if line.comment is None][:2]
                continue
            if carried is not None and body:
                comments = [line for line in statement.leading_lines if line.comment is not None]
                blank = max(len(carried), len(statement.leading_lines) - len(comments))
                statement = statement.with_changes(
                    leading_lines=[cst.EmptyLine()] * min(blank, 2) + comments
                    if not comments
                    else list(statement.leading_lines)
                )
            carried = None
            body.append(statement)
        tree = before.with_changes(body=body)
        relative_style = uses_relative_imports(before)
        retarget = _Retarget(self.index, facts, moved_by_module, target_module)
        tree = tree.visit(retarget)
        first_party = self.index.top_level_packages()
        attributes = _RetargetAttributes(self.index, facts, moved_by_module, target_module)
        rewritten = tree.visit(attributes)
        if attributes.changed:
            tree = self._bind_new_module(facts, rewritten, attributes, target_module, first_party)
            removed_positions = removed_positions or {-1}  # drop the module imports left unused
        needed = sorted(keep.get(module, set()))
        source = self._source_for(facts, target_module, relative_style)
        for added_source, name in [*retarget.added, *((source, name) for name in needed)]:
            tree = add_from_import(tree, added_source, name, first_party)
        if removed_positions:
            exported = self.index.names_imported_from(module)
            if exported is not None:
                kept = frozenset(exported) | frozenset(facts.all_names or ()) | frozenset(needed)
                tree = remove_imports_made_unused(before, tree, kept)
        return tree

    def _bind_new_module(
        self,
        facts: FileFacts,
        tree: cst.Module,
        attributes: _RetargetAttributes,
        target_module: str,
        first_party: frozenset[str],
    ) -> cst.Module:
        """Import the new module under the name the rewritten `module.name` reads use."""
        parent, _, last = target_module.rpartition(".")
        if attributes.short:
            taken = _names_in(tree) - {last}
            bound = facts.bindings.get(last)
            if (bound is not None and bound != Name(target_module)) or last in taken:
                raise Refusal(f"{facts.path} already uses the name {last}")
            if parent:
                tree = add_from_import(tree, parent, last, first_party)
            else:
                tree = add_import(tree, last, None, first_party)
        if attributes.full:
            tree = add_import(tree, target_module, None, first_party)
        return tree

    def _source_for(self, facts: FileFacts, target_module: str, relative_style: bool) -> str:
        if relative_style:
            relative = relative_source(facts.module, facts.is_package, target_module)
            if relative is not None:
                return relative
        return target_module

    # -- the new module
    def _new_module(
        self,
        target_module: str,
        target_path: str,
        moved_by_module: dict[str, set[str]],
        all_moved: set[str],
    ) -> bytes:
        existing_facts = self.index.modules.get(target_module)
        is_package = existing_facts.is_package if existing_facts else False
        if existing_facts is not None:
            tree = self._tree(existing_facts.path)
            taken = (
                set(existing_facts.bindings)
                | set(existing_facts.functions)
                | set(existing_facts.classes)
            )
            clash = sorted(name for name in all_moved | set(self.move.imports) if name in taken)
            if clash:
                raise Refusal(f"{existing_facts.path} already defines {clash[0]}")
            tree = tree.visit(
                _DropImportsOf(self.index, existing_facts, moved_by_module, target_module)
            )
        else:
            tree = cst.parse_module("")
        clash = sorted(set(self.move.imports) & all_moved)
        if clash:
            raise Refusal(f"{clash[0]} is both moved and imported")
        relative_style = any(binding.relative for binding in self.move.imports.values()) and (
            existing_facts is None or uses_relative_imports(tree)
        )
        first_party = self.index.top_level_packages()
        for name, binding in sorted(self.move.imports.items()):
            if binding.original is None:
                if existing_facts is None or name not in existing_facts.bindings:
                    asname = None if binding.name == binding.module.split(".")[0] else name
                    tree = add_import(tree, binding.module, asname, first_party)
                continue
            source = binding.module
            if relative_style and binding.relative:
                relative = relative_source(target_module, is_package, source)
                source = relative or source
            if binding.name == binding.original:
                tree = add_from_import(tree, source, binding.original, first_party)
            else:
                tree = _add_aliased(tree, source, binding.original, binding.name)
        statements = self._ordered(moved_by_module)
        code = tree.code
        if "annotations" in self.move.future and "from __future__ import annotations" not in code:
            code = (
                "from __future__ import annotations\n\n" + code
                if code.strip()
                else ("from __future__ import annotations\n")
            )
        result = code.rstrip("\n")
        only_imports = existing_facts is None
        previous_is_definition = False
        for statement in statements:
            is_definition = isinstance(statement, (cst.FunctionDef, cst.ClassDef))
            if result:
                # as isort and PEP 8 space them: two blank lines around definitions and after
                # existing code, one after the imports or between plain statements
                apart = is_definition or previous_is_definition or not only_imports
                result += "\n" * (3 if apart else 2)
            result += _statement_code(statement)
            only_imports = True
            previous_is_definition = is_definition
        return (result + "\n").encode("utf-8")

    def _ordered(
        self, moved_by_module: dict[str, set[str]]
    ) -> list[Union[cst.SimpleStatementLine, cst.BaseCompoundStatement]]:
        """The moved statements, each after every moved statement it needs at definition time."""
        keys = sorted(
            self.move.statements, key=lambda key: (sorted(self.cycle).index(key[0]), key[1])
        )
        provider: dict[str, tuple[str, int]] = {}
        for key in keys:
            for name in self.move.statements[key]:
                provider[name] = key
        needs: dict[tuple[str, int], set[tuple[str, int]]] = {}
        for key in keys:
            module, position = key
            statement = self.analysis(module).statements[position]
            needs[key] = {
                provider[name]
                for name in statement.definition_uses
                if name in provider and provider[name] != key
            }
            for name in statement.definition_uses:
                binding = self.analysis(module).imports.get(name)
                if binding is not None and binding.original in provider:
                    needs[key].add(provider[binding.original])
        ordered: list[tuple[str, int]] = []
        done: set[tuple[str, int]] = set()
        while len(ordered) < len(keys):
            ready = [k for k in keys if k not in done and needs[k] <= done]
            if not ready:
                raise Refusal("the moved definitions need each other at definition time")
            ordered.append(ready[0])
            done.add(ready[0])
        statements = []
        for key in ordered:
            node = self.analysis(key[0]).statements[key[1]].node
            modules = self.move.unqualify.get(key)
            if modules:
                node = cst.ensure_type(node.visit(_Unqualify(modules)), type(node))
            statements.append(node)
        return statements

    # -- verification
    def _verify(self, files: dict[str, bytes], target_module: str, target_path: str) -> None:
        new_facts: dict[str, FileFacts] = {}
        for path, data in files.items():
            text = data.decode("utf-8")
            try:
                tree = ast.parse(text, filename=path)
                cst_tree = cst.parse_module(data)
            except (SyntaxError, cst.ParserSyntaxError) as error:
                raise Refusal(f"the edited {path} would not parse: {error}") from None
            old = self.index.files.get(path)
            module = old.module if old else target_module
            is_package = old.is_package if old else False
            new_facts[path] = extract_facts(path, module, is_package, tree, text)
            after = analyse(module, is_package, cst_tree).unresolved
            before: set[str] = set()
            if old is not None:
                before = analyse(module, is_package, self._tree(path)).unresolved
            missing = sorted(after - before)
            if missing:
                raise Refusal(f"the edited {path} would read {missing[0]}, which nothing defines")
        files_after = [new_facts.get(path, facts) for path, facts in self.index.files.items()]
        files_after += [facts for path, facts in new_facts.items() if path not in self.index.files]
        after_index = ProjectIndex(files_after, self.index.module_aliases)
        for cycle in name_import_cycles(after_index, EAGER_ONLY):
            if target_module in cycle:
                raise Refusal(
                    f"{target_path} would be in an import cycle with "
                    + _some([m for m in cycle if m != target_module], ", ", "modules")
                )
            left = set(cycle) & self.cycle
            if len(left) > 1:
                edges = cycle_edges(after_index, cycle, EAGER_ONLY)
                # lines of the edited files would not match the source the user reads
                through = "; ".join(edge.describe(with_line=False) for edge in edges[:3])
                raise Refusal(f"the cycle would remain through other imports: {through}")


# ---- helpers for libcst edits ---------------------------------------------------------------------
def _statement_code(statement: Union[cst.SimpleStatementLine, cst.BaseCompoundStatement]) -> str:
    comments = [line for line in statement.leading_lines if line.comment is not None]
    node = statement.with_changes(leading_lines=comments)
    return cst.Module(body=[node]).code.rstrip("\n")


def _absolute(facts: FileFacts, node: cst.ImportFrom) -> Optional[str]:
    source = dotted(node.module) if node.module is not None else None
    if node.module is not None and source is None:
        return None
    return resolve_relative(facts.module, facts.is_package, len(node.relative), source)


def _source_parts(source: str) -> tuple[Optional[Union[cst.Name, cst.Attribute]], list[cst.Dot]]:
    dots = len(source) - len(source.lstrip("."))
    target = source[dots:]
    module = cst.parse_expression(target) if target else None
    assert module is None or isinstance(module, (cst.Name, cst.Attribute))
    return module, [cst.Dot()] * dots


def _import_from(source: str, aliases: list[cst.ImportAlias], parens: bool) -> cst.ImportFrom:
    """`from source import aliases`, each alias keeping its layout and comments."""
    module, relative = _source_parts(source)
    names = list(aliases)
    names[-1] = names[-1].with_changes(comma=cst.MaybeSentinel.DEFAULT)
    if parens and len(names) > 1:
        return cst.ImportFrom(
            module=module,
            relative=relative,
            names=names,
            lpar=cst.LeftParen(),
            rpar=cst.RightParen(),
        )
    return cst.ImportFrom(module=module, relative=relative, names=names)


class _FileEdit(cst.CSTTransformer):
    """An edit of one project file that points uses of the moved names at the new module."""

    def __init__(
        self,
        index: ProjectIndex,
        facts: FileFacts,
        moved_by_module: dict[str, set[str]],
        target_module: str,
    ) -> None:
        super().__init__()
        self.index = index
        self.facts = facts
        self.moved = moved_by_module
        self.target_module = target_module


class _Retarget(_FileEdit):
    """Point `from <source> import moved` statements at the new module.

    A top-level import loses the moved names, which `added` lists for the caller to import where
    isort would put them; an import inside a function (or one with aliases or comments) is split in
    place.
    """

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.depth = 0
        self.added: list[tuple[str, str]] = []
        """(source, name) imports the caller adds at the top level."""

    def visit_IndentedBlock(self, node: cst.IndentedBlock) -> None:
        self.depth += 1

    def leave_IndentedBlock(
        self, original_node: cst.IndentedBlock, updated_node: cst.IndentedBlock
    ) -> cst.IndentedBlock:
        self.depth -= 1
        return updated_node

    def leave_If(self, original_node: cst.If, updated_node: cst.If) -> cst.If:
        # `if TYPE_CHECKING:` imports are left alone: the source keeps a re-export for them
        return updated_node

    def _source(self, small: cst.ImportFrom) -> str:
        if small.relative:
            relative = relative_source(self.facts.module, self.facts.is_package, self.target_module)
            if relative is not None:
                return relative
        return self.target_module

    def leave_SimpleStatementLine(
        self, original_node: cst.SimpleStatementLine, updated_node: cst.SimpleStatementLine
    ) -> Union[cst.BaseStatement, cst.FlattenSentinel[cst.BaseStatement], cst.RemovalSentinel]:
        if len(updated_node.body) != 1:
            return updated_node
        small = updated_node.body[0]
        if not isinstance(small, cst.ImportFrom) or isinstance(small.names, cst.ImportStar):
            return updated_node
        absolute = _absolute(self.facts, small)
        target = self.index.modules.get(absolute) if absolute else None
        if target is None or target.module not in self.moved:
            return updated_node
        names = self.moved[target.module]
        moving = [a for a in small.names if isinstance(a.name, cst.Name) and a.name.value in names]
        if not moving:
            return updated_node
        staying = [a for a in small.names if a not in moving]
        source = self._source(small)
        plain = all(alias.asname is None for alias in moving) and not any(
            "#" in source_of(alias) for alias in moving
        )
        if not staying:
            if self.depth == 0 and plain and "#" not in source_of(updated_node):
                self.added.extend((source, alias.evaluated_name) for alias in moving)
                return cst.RemoveFromParent()
            module, relative = _source_parts(source)  # in place: layout and comments stay
            return updated_node.with_changes(
                body=[small.with_changes(module=module, relative=relative)]
            )
        kept = list(staying)
        kept[-1] = kept[-1].with_changes(comma=small.names[-1].comma)
        remaining = updated_node.with_changes(body=[small.with_changes(names=kept)])
        if self.depth == 0 and plain:
            self.added.extend((source, alias.evaluated_name) for alias in moving)
            return remaining
        new_import = _import_from(source, moving, parens=small.lpar is not None)
        return cst.FlattenSentinel([remaining, cst.SimpleStatementLine(body=[new_import])])


class _RetargetAttributes(_FileEdit):
    """`auth.get_current_user` -> `dependencies.get_current_user` for moved names read through an
    imported module object; `app.routers.auth.x` -> `app.dependencies.x` for the dotted form."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.short = False
        self.full = False

    @property
    def changed(self) -> bool:
        return self.short or self.full

    def _module_of(self, node: cst.BaseExpression) -> Optional[str]:
        written = dotted(node)
        if written is None:
            return None
        head, _, rest = written.partition(".")
        binding = self.facts.bindings.get(head)
        if not isinstance(binding, Name) or head in self.facts.rebound:
            return None
        qualified = f"{binding.qname}.{rest}" if rest else binding.qname
        target = self.index.modules.get(qualified)
        return target.module if target is not None else None

    def leave_Attribute(
        self, original_node: cst.Attribute, updated_node: cst.Attribute
    ) -> cst.BaseExpression:
        module = self._module_of(original_node.value)
        if module is None or original_node.attr.value not in self.moved.get(module, ()):
            return updated_node
        written = dotted(original_node.value) or ""
        if written == module and "." in module:  # `import app.routers.auth` + full dotted reads
            self.full = True
            replacement: cst.BaseExpression = cst.parse_expression(self.target_module)
        else:
            self.short = True
            replacement = cst.Name(self.target_module.rpartition(".")[2])
        return updated_node.with_changes(value=replacement)


def _attributes_read(node: cst.CSTNode, module: str) -> Optional[set[str]]:
    """The names read as `module.name` in `node`, or None when `module` is used otherwise."""
    names: set[str] = set()
    bare = False

    class Collect(cst.CSTVisitor):
        def visit_Attribute(self, node: cst.Attribute) -> bool:
            if isinstance(node.value, cst.Name) and node.value.value == module:
                names.add(node.attr.value)
                return False
            return True

        def visit_Name(self, node: cst.Name) -> None:
            nonlocal bare
            bare = bare or node.value == module

    node.visit(Collect())
    return None if bare else names


class _Unqualify(cst.CSTTransformer):
    """`users.get_user` -> `get_user` for the given module names."""

    def __init__(self, modules: set[str]) -> None:
        super().__init__()
        self.modules = modules

    def leave_Attribute(
        self, original_node: cst.Attribute, updated_node: cst.Attribute
    ) -> cst.BaseExpression:
        if isinstance(updated_node.value, cst.Name) and updated_node.value.value in self.modules:
            return updated_node.attr
        return updated_node


def _names_in(tree: cst.Module) -> set[str]:
    """Every name the module binds or reads (not attribute names or keyword-argument names)."""
    found: set[str] = set()

    class Collect(cst.CSTVisitor):
        def visit_Attribute(self, node: cst.Attribute) -> bool:
            node.value.visit(self)
            return False

        def visit_Arg(self, node: cst.Arg) -> bool:
            node.value.visit(self)
            return False

        def visit_ImportFrom(self, node: cst.ImportFrom) -> bool:
            return False

        def visit_Name(self, node: cst.Name) -> None:
            found.add(node.value)

    tree.visit(Collect())
    return found


class _DropImportsOf(_FileEdit):
    """In the module receiving the moved code: drop its imports of the moved names."""

    def leave_SimpleStatementLine(
        self, original_node: cst.SimpleStatementLine, updated_node: cst.SimpleStatementLine
    ) -> cst.BaseStatement | cst.RemovalSentinel:
        if len(updated_node.body) != 1:
            return updated_node
        small = updated_node.body[0]
        if not isinstance(small, cst.ImportFrom) or isinstance(small.names, cst.ImportStar):
            return updated_node
        absolute = _absolute(self.facts, small)
        target = self.index.modules.get(absolute) if absolute else None
        if target is None or target.module not in self.moved:
            return updated_node
        staying = [
            a.with_changes(comma=cst.MaybeSentinel.DEFAULT)
            for a in small.names
            if not (isinstance(a.name, cst.Name) and a.name.value in self.moved[target.module])
        ]
        if not staying:
            return cst.RemoveFromParent()
        return updated_node.with_changes(body=[small.with_changes(names=staying)])


def _add_aliased(tree: cst.Module, source: str, original: str, name: str) -> cst.Module:
    statement = cst.parse_statement(f"from {source} import {original} as {name}\n")
    return _insert_import(tree, statement)


def _insert_import(
    tree: cst.Module, statement: Union[cst.SimpleStatementLine, cst.BaseCompoundStatement]
) -> cst.Module:
    body = list(tree.body)
    position = 0
    for index, node in enumerate(body):
        if isinstance(node, cst.SimpleStatementLine) and all(
            isinstance(small, (cst.Import, cst.ImportFrom)) for small in node.body
        ):
            position = index + 1
    body.insert(position, statement)
    return tree.with_changes(body=body)
