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

A cycle is a mistake only when some order of importing its modules really fails. depfix runs each
module's top-level statements the way Python does (imports at the top level, inside `if` and `try`
included; function bodies, `if TYPE_CHECKING:` and `if __name__ == "__main__":` not run; a package's
`__init__` before its submodules), once for every module of the cycle imported first, and reports
the cycle when a `from x import name`, or an `x.name` read while the module runs (a decorator, a
default such as `Depends(auth.get_current_user)`, a class body), comes before `x` has bound `name`.
The message names the first import that fails and the line that fails:

    import cycle app.auth <-> app.users: importing app.auth first fails: app/users.py:3 runs
    `from app.auth import get_user` while app.auth is still running its line 5, before its line 9
    binds get_user

A cycle is reported, and changed, only when it is caused by dependencies: a `Depends`/`Security`
target defined in one member and imported by another, directly or through a re-export in a
package's `__init__.py`. Cycles that cannot fail (each module imports cleanly when imported first),
cycles without a dependency in them and cycles only through function-local or `TYPE_CHECKING`
imports are notes shown with `--verbose`, and they never stop another rule's fix.

The move takes those dependencies and everything they need that is defined inside the cycle (helpers, security
schemes, other module-level values, and what they read as `users.find_user` through a module of the
cycle, which they then read directly), ordered so that each name is defined before it is needed; the
imports they need from outside the cycle are copied as real imports (FastAPI evaluates annotations at
run time). The target is the `dependencies-module` setting, else `dependencies.py` in the application
package, created or appended to. Every import of a moved name in the project is pointed at it, tests
included (function-local imports in place, relative ones kept relative), and so is every
`module.name` read through an imported module object (`auth.get_current_user` becomes
`dependencies.get_current_user`); a source keeps a re-export when the name is in its `__all__`, it is star-imported, or a file
that cannot be rewritten imports it. The whole change is verified before it is offered: no first
import of the cycle's modules fails any more, the new module is in no cycle that can fail and no
edited file reads a name nothing defines.

No fix, with the reason, when the move would take a route, an app or router, a name defined
conditionally or rebound, a value that uses `__name__`, or when a string such as
`mock.patch("app.routers.auth.get_current_user")` names the old place. Fix safety: safe.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Optional, Union

import libcst as cst

from codemods._import_edits import (
    DropImportsOf,
    Retarget,
    RetargetAttributes,
    Unqualify,
    add_aliased,
    attributes_read,
    names_in,
    statement_code,
)
from codemods._import_graph import Edge, cycle_edges, name_import_cycles
from codemods._module_analysis import (
    ImportBinding,
    ModuleAnalysis,
    analyse_source,
    parse_module_cached,
)
from codemods._placement import new_module_path
from depfix.config import Settings
from depfix.facts import FileFacts, extract_facts, parse_source
from depfix.import_order import CycleVerdict, cycle_verdicts, failing_cycles
from depfix.imports import (
    add_from_import,
    add_import,
    module_code,
    relative_source,
    remove_imports_made_unused,
    uses_relative_imports,
)
from depfix.index import Class, DependencyRef, Function, ProjectIndex
from depfix.io import SourceError
from depfix.rules import SAFE, Changeset, ProjectFinding, ProjectRule, Span, register
from depfix.values import Name

ALL_IMPORTS = frozenset({"eager", "local", "type_checking"})
EAGER_ONLY = frozenset({"eager"})


class Refusal(Exception):
    """Why a cycle is reported without a fix."""


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


def _some(
    items: list[str], separator: str, what: str, limit: int = 6, last: Optional[str] = None
) -> str:
    """The first `limit` items joined, and how many more there are (cycles can span hundreds);
    `last` joins the last two of a short list ("a, b or c")."""
    if len(items) <= limit:
        if last is not None and len(items) > 1:
            return separator.join(items[:-1]) + last + items[-1]
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
    # Every cycle it can change runs through a dependency, whose module the index holds with all
    # it imports; the files outside that it must also edit are loaded once a move is planned.
    FASTAPI_ONLY = True

    def plan(self) -> Iterable[ProjectFinding]:
        self.writable_paths: dict[str, bool] = {}
        self.import_candidates: dict[str, tuple[FileFacts, frozenset[str]]] = {}
        self.dependency_targets: tuple[
            set[Union[Function, Class]], set[Optional[tuple[str, str]]]
        ] = (
            set(),
            set(),
        )
        """What dependencies target, and the sites of the names they target, ..."""
        self.dependency_refs_seen = [0, 0]
        """... over the first this many of the index's dependency references (this list)."""
        self.dependency_refs_list: Optional[list[DependencyRef]] = None
        verdicts = cycle_verdicts(self.index)
        for verdict in verdicts:
            if verdict.fails:
                yield self._plan_cycle(verdict)
            elif verdict.takes_names:
                cycle = list(verdict.members)
                edges = cycle_edges(self.index, cycle, EAGER_ONLY)
                path = edges[0].path if edges else self.index.modules[cycle[0]].path
                yield ProjectFinding(
                    self.CODE,
                    path,
                    _span(edges[0].line if edges else 1),
                    f"import cycle {self._chain(cycle)} cannot fail: each of its modules imports "
                    "cleanly when it is imported first (left alone)",
                    info=True,
                    verbose=True,
                )
        for component in name_import_cycles(self.index, ALL_IMPORTS):
            if any(set(component) <= set(verdict.members) for verdict in verdicts):
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
                verbose=True,
            )

    @staticmethod
    def _chain(cycle: list[str]) -> str:
        return " <-> ".join(cycle) if len(cycle) == 2 else _some(cycle, ", ", "modules")

    def _plan_cycle(self, verdict: CycleVerdict) -> ProjectFinding:
        # the modules on the cycles that fail, not every module a package's __init__ ties in
        cycle = list(verdict.failing)
        edges = cycle_edges(self.index, cycle, EAGER_ONLY)
        failure = verdict.failures[0]
        path, line = failure.path, failure.line
        message = f"import cycle {self._chain(cycle)}: {failure.describe()}"
        others = [other.entry for other in verdict.failures[1:]]
        if others:
            message += f"; so does importing {_some(others, ', ', 'modules', last=' or ')} first"
        try:
            seeds = self._seeds(cycle, edges)
            if not seeds:
                # Not the mistake this rule is about: code FastAPI never calls gets no output
                # without --verbose.
                return ProjectFinding(
                    self.CODE,
                    path,
                    _span(line),
                    f"{message} (left alone: no dependency, a Depends/Security target, is "
                    "imported from one of its modules into another)",
                    info=True,
                    verbose=True,
                )
            planner = _Planner(
                self.index,
                self.settings,
                self.sources,
                cycle,
                seeds,
                self.writable_paths,
                self.import_candidates,
            )
            files, target = planner.plan()
        except Refusal as refusal:
            return ProjectFinding(
                self.CODE, path, _span(line), message, reason=str(refusal), key=",".join(cycle)
            )
        moved = ", ".join(sorted({name for (_, name) in seeds}))
        return ProjectFinding(
            self.CODE,
            path,
            _span(line),
            f"{message} (fix: move {moved} to {target})",
            changeset=Changeset(files),
            safety=SAFE,
            key=",".join(cycle),
        )

    def _seeds(self, cycle: list[str], edges: list[Edge]) -> list[tuple[str, str]]:
        # the same for every cycle: grown only with the references of files loaded since
        refs = self.index.dependency_refs
        if refs is not self.dependency_refs_list:
            self.dependency_refs_list = refs
            self.dependency_targets = (set(), set())
            self.dependency_refs_seen = [0, 0]
        targets, sites = self.dependency_targets
        seen = self.dependency_refs_seen
        targets.update(
            ref.target for ref in refs[seen[0] :] if isinstance(ref.target, (Function, Class))
        )
        seen[0] = len(refs)
        while seen[1] < len(refs):  # finding a site may load files, and their references
            ref = refs[seen[1]]
            seen[1] += 1
            if isinstance(ref.fact.target, Name):
                sites.add(_site(self.index, ref.fact.target.qname))
        seeds: set[tuple[str, str]] = set()
        members = set(cycle)
        for edge in edges:
            for name in edge.names:
                # where the name is defined: the module imported from, or, through a re-export
                # (`from .auth import get_user` in a package's __init__), another member
                site = _site(self.index, f"{edge.imported}.{name}")
                if site is None or site[0] not in members:
                    continue
                facts = self.index.modules[site[0]]
                defined = (
                    site[1] in facts.functions
                    or site[1] in facts.classes
                    or (
                        site[1] in facts.bindings
                        and _site(self.index, f"{facts.module}.{site[1]}") == site
                    )
                )
                if not defined:
                    continue
                resolved = self.index.resolve_qualified(f"{facts.module}.{site[1]}")
                if resolved in targets or site in sites:
                    seeds.add(site)
        return sorted(seeds)


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
        writable_paths: Optional[dict[str, bool]] = None,
        import_candidates: Optional[dict[str, tuple[FileFacts, frozenset[str]]]] = None,
    ) -> None:
        self.index = index
        self.settings = settings
        self.sources = sources
        self.cycle = set(cycle)
        self.seeds = seeds
        self.analyses: dict[str, ModuleAnalysis] = {}
        self.move = _Move()
        self.writable_paths: dict[str, bool] = {} if writable_paths is None else writable_paths
        """Per path, whether the run may write it (the same for every cycle of a planning)."""
        self.import_candidates: dict[str, tuple[FileFacts, frozenset[str]]] = (
            {} if import_candidates is None else import_candidates
        )
        self.module_prefixes: dict[str, frozenset[str]] = {}
        """Per module, it and the packages holding it."""
        self.attribute_readers: dict[str, set[str]] = {}
        """Per file, what `_modules_read_as_attributes` found (the moved names are fixed once
        planned, and three checks ask)."""

    def analysis(self, module: str) -> ModuleAnalysis:
        if module not in self.analyses:
            facts = self.index.modules[module]
            self.analyses[module] = self._analyse(module, facts.is_package, facts.path)
        return self.analyses[module]

    def _analyse(self, module: str, is_package: bool, path: str) -> ModuleAnalysis:
        try:
            return analyse_source(module, is_package, self.sources[path])
        except (cst.ParserSyntaxError, RecursionError, ValueError) as error:
            raise Refusal(f"libcst cannot parse {path}: {error}") from None

    def _node(
        self, module: str, position: int
    ) -> Union[cst.SimpleStatementLine, cst.BaseCompoundStatement]:
        """A top-level statement's libcst node (an analysis parses its module only when asked)."""
        try:
            return self.analysis(module).statements[position].node
        except (cst.ParserSyntaxError, RecursionError, ValueError) as error:
            path = self.index.modules[module].path
            raise Refusal(f"libcst cannot parse {path}: {error}") from None

    def _tree(self, path: str) -> cst.Module:
        try:
            return parse_module_cached(self.sources[path])
        except (cst.ParserSyntaxError, RecursionError, ValueError) as error:
            raise Refusal(f"libcst cannot parse {path}: {error}") from None

    def _load_users(self) -> None:
        """Have the index hold every file that may use a moved name: files naming it (imports,
        `module.name` reads, strings) and files naming a source module (star imports)."""
        words = {name for _, name in self.move.names}
        words |= {module.rsplit(".", 1)[-1] for module, _ in self.move.names}
        for word in sorted(words):
            self.index.load_mentioning(word.encode())

    def writable(self, path: str) -> bool:
        known = self.writable_paths.get(path)
        if known is None:
            check = getattr(self.sources, "writable", None)
            known = bool(check(path)) if check is not None else True
            self.writable_paths[path] = known
        return known

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
            if not analysis.definitions.get(name):
                raise Refusal(
                    f"{name} in {facts.path} is not defined by a def, a class or a plain assignment"
                )
            if name in analysis.mutated or len(analysis.definitions[name]) != 1:
                raise Refusal(f"{name} is rebound in {facts.path}")
            position = analysis.definitions[name][0]
            statement = analysis.statements[position]
            node = self._node(module, position)
            self._check_movable(module, name, node, facts)
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
                    # an `if TYPE_CHECKING:` import becomes a real one: FastAPI evaluates the
                    # annotations of the moved dependencies when the app starts
                    self._needs_import(
                        analysis, analysis.imports[used], queue, (module, position), node
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
                attributes = attributes_read(node, binding.name)
                if attributes is None:
                    raise Refusal(
                        f"the dependencies use the module {bound.module} itself, not only names "
                        "from it, and it is in the cycle"
                    )
                for attribute in sorted(attributes):
                    if attribute not in self.analysis(bound.module).definitions:
                        raise Refusal(f"{bound.module} does not define {attribute} itself")
                    queue.append((bound.module, attribute))
                self.move.unqualify.setdefault(key, set()).add(binding.name)
                return
            if bound is not None and self._entangled(bound.module):
                where = (
                    "it is in the cycle"
                    if bound.module in self.cycle
                    else "it imports a module of the cycle"
                )
                raise Refusal(f"the dependencies use the module {bound.module} itself, and {where}")
        elif target is not None and target.module in self.cycle:
            source = self.analysis(target.module)
            if binding.original not in source.definitions:
                # a re-export (`from .models import User` in a package's __init__): the name is
                # taken from where it is defined, moving along when that is in the cycle too
                site = _site(self.index, f"{target.module}.{binding.original}")
                if site is None or site[0] == target.module:
                    raise Refusal(
                        f"{binding.original} is re-exported by {target.path}, not defined there"
                    )
                if site[0] not in self.cycle:
                    binding = ImportBinding(
                        binding.name, site[0], site[1], binding.position, relative=False
                    )
                elif binding.name != site[1]:
                    raise Refusal(
                        f"{site[1]} is imported as {binding.name} in {self.index.modules[analysis.module].path}"
                    )
                else:
                    queue.append(site)
                    return
            elif binding.name != binding.original:
                raise Refusal(
                    f"{binding.original} is imported as {binding.name} in {self.index.modules[analysis.module].path}"
                )
            else:
                queue.append((target.module, binding.original))
                return
        previous = self.move.imports.get(binding.name)
        if previous is not None and (previous.module, previous.original) != (
            binding.module,
            binding.original,
        ):
            raise Refusal(f"the moved code needs {binding.name} from two different imports")
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
                    "the cycle spans several top-level packages: set dependencies-module in "
                    "[tool.depfix] to say where its dependencies go"
                )
            module = f"{tops.pop()}.dependencies" if deep else "dependencies"
        existing = self.index.modules.get(module)
        if existing is not None:
            return existing.module, existing.path
        return module, new_module_path(module, self.index.modules[members[0]])

    # -- the whole changeset
    def plan(self) -> tuple[dict[str, bytes], str]:
        self.collect()
        self._load_users()
        target_module, target_path = self.target()
        if target_module in self.cycle:
            raise Refusal(
                f"{target_module}, where the dependencies would go, is itself in the cycle"
            )
        if self._entangled(target_module) and target_module in self.index.modules:
            raise Refusal(
                f"{target_path}, where the dependencies would go, imports a module of the cycle"
            )
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
        cached = self.attribute_readers.get(facts.path)
        if cached is not None:
            return cached
        found = set()
        candidates = self._import_candidates(facts)
        data: Optional[bytes] = None
        for module, names in moved_by_module.items():
            # imported as the module or a package holding it
            prefixes = self.module_prefixes.get(module)
            if prefixes is None:
                parts = module.split(".")
                prefixes = frozenset(".".join(parts[:cut]) for cut in range(1, len(parts) + 1))
                self.module_prefixes[module] = prefixes
            if candidates.isdisjoint(prefixes):
                continue
            if data is None:
                data = self.sources[facts.path]
            if any(re.search(rb"\." + re.escape(n.encode()) + rb"\b", data) for n in names):
                found.add(module)
        self.attribute_readers[facts.path] = found
        return found

    def _import_candidates(self, facts: FileFacts) -> frozenset[str]:
        """What a file's imports may bind a module object to: `import m` -> m, `from m import
        n` -> m.n (the same for every cycle of a planning)."""
        known = self.import_candidates.get(facts.path)
        if known is not None and known[0] is facts:
            return known[1]
        candidates: set[str] = set()
        for fact in facts.imports:
            if not fact.names:
                candidates.add(fact.target)
            candidates.update(f"{fact.target}.{name}" for name in fact.names)
        result = frozenset(candidates)
        self.import_candidates[facts.path] = (facts, result)
        return result

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
        data = self.sources[path]
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
        retarget = Retarget(self.index, facts, moved_by_module, target_module)
        tree = tree.visit(retarget)
        first_party = self.index.top_level_packages()
        attributes = RetargetAttributes(self.index, facts, moved_by_module, target_module)
        # it changes only `x.name` reads of moved names: not worth a traversal when none is written
        rewritten = tree.visit(attributes) if _may_read_attributes(data, moved_by_module) else tree
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
                tree = remove_imports_made_unused(before, tree, kept, _code_of(data, before))
        return tree

    def _bind_new_module(
        self,
        facts: FileFacts,
        tree: cst.Module,
        attributes: RetargetAttributes,
        target_module: str,
        first_party: frozenset[str],
    ) -> cst.Module:
        """Import the new module under the name the rewritten `module.name` reads use."""
        parent, _, last = target_module.rpartition(".")
        if attributes.short:
            taken = names_in(tree) - {last}
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
                DropImportsOf(self.index, existing_facts, moved_by_module, target_module)
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
                tree = add_aliased(tree, source, binding.original, binding.name)
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
            result += statement_code(statement)
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
            node = self._node(key[0], key[1])
            modules = self.move.unqualify.get(key)
            if modules:
                node = cst.ensure_type(node.visit(Unqualify(modules)), type(node))
            statements.append(node)
        return statements

    # -- verification
    def _verify(self, files: dict[str, bytes], target_module: str, target_path: str) -> None:
        new_facts: dict[str, FileFacts] = {}
        for path, data in files.items():
            old = self.index.files.get(path)
            module = old.module if old else target_module
            is_package = old.is_package if old else False
            try:
                text, tree = parse_source(path, data)  # syntax newer than this Python: lowered
                after = analyse_source(module, is_package, data).unresolved
            except (SyntaxError, SourceError, cst.ParserSyntaxError) as error:
                raise Refusal(f"the edited {path} would not parse: {error}") from None
            new_facts[path] = extract_facts(path, module, is_package, tree, text)
            before: set[str] = set()
            if old is not None:  # the cycle's members were analysed already
                before = (
                    self.analyses[module].unresolved
                    if module in self.analyses
                    else self._analyse(module, is_package, path).unresolved
                )
            missing = sorted(after - before)
            if missing:
                raise Refusal(f"the edited {path} would read {missing[0]}, which nothing defines")
        files_after = [new_facts.get(path, facts) for path, facts in self.index.files.items()]
        files_after += [facts for path, facts in new_facts.items() if path not in self.index.files]
        after_index = ProjectIndex(files_after, self.index.module_aliases)
        # Only a cycle that can fail counts: one whose every member imports cleanly first is
        # harmless, whether it was there before (through a package's __init__) or not.
        for verdict in failing_cycles(after_index):
            for failure in verdict.failures:
                chain = list(failure.chain)
                if target_module in chain:
                    raise Refusal(
                        f"{target_path} would be in an import cycle that can fail, with "
                        + _some([m for m in chain if m != target_module], ", ", "modules")
                    )
                if len(set(chain) & self.cycle) > 1:
                    # no line: lines of the edited files would not match the source the user reads
                    raise Refusal(
                        f"the cycle would remain: importing {failure.entry} first would still "
                        f"fail at `{failure.statement}` in {failure.path}"
                    )


# ---- helpers for libcst edits ---------------------------------------------------------------------
def _may_read_attributes(data: bytes, moved_by_module: dict[str, set[str]]) -> bool:
    """Whether `data` may hold `x.name` for a moved name: a dot, then any spaces, line
    continuations or comments, then the name (a file that is not ASCII is not searched)."""
    if not data.isascii():
        return True
    names = sorted({name for names in moved_by_module.values() for name in names})
    if not names:
        return False
    pattern = (
        rb"\.(?:[ \t\f\r\n\\]|#[^\r\n]*)*(?:"
        + b"|".join(re.escape(name.encode()) for name in names)
        + rb")(?![A-Za-z0-9_])"
    )
    return re.search(pattern, data) is not None


_CODES: dict[bytes, str] = {}
_CODES_LIMIT = 512


def _code_of(data: bytes, tree: cst.Module) -> str:
    """`tree.code` for the tree parsed from `data`, remembered by content (each cycle's planning,
    in every round, edits the same sources)."""
    key = hashlib.blake2b(data, digest_size=16).digest()
    text = _CODES.get(key)
    if text is None:
        if len(_CODES) >= _CODES_LIMIT:
            _CODES.clear()
        text = _CODES[key] = module_code(tree)
    return text
