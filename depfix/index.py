"""The repository index: one deterministic, cross-file view of what FastAPI calls.

Built from every file's facts (`depfix.facts`), merged in path order so that the answer never depends on
the order files were read or on the number of jobs. Rules ask it questions ("is this function called by
FastAPI?", "what does this `Depends(...)` inject?") instead of re-deriving them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from typing import Optional, Union

from depfix.facts import (
    CallSite,
    ClassFact,
    DependencyRefFact,
    FileFacts,
    FunctionFact,
    RouteFact,
)
from depfix.import_order import failing_cycles
from depfix.values import Attr, Call, Name, Value

APP_CLASSES = frozenset({"fastapi.FastAPI", "fastapi.applications.FastAPI"})
ROUTER_CLASSES = frozenset({"fastapi.APIRouter", "fastapi.routing.APIRouter"})
DEPENDS_MARKERS = frozenset(
    {"fastapi.Depends", "fastapi.params.Depends", "fastapi.param_functions.Depends"}
)
SECURITY_MARKERS = frozenset(
    {"fastapi.Security", "fastapi.params.Security", "fastapi.param_functions.Security"}
)
_MAX_DEPTH = 40
ALWAYS_EXTERNAL = frozenset({"fastapi", "starlette", "pydantic", "typing", "typing_extensions"})
EAGER = frozenset({"eager"})
FACTORY_DECORATORS = frozenset(
    {"functools.lru_cache", "functools.cache", "builtins.staticmethod", "builtins.classmethod"}
)
"""Decorators of a factory that keep what it returns (`@lru_cache` returns the same inner function)."""


@dataclass(frozen=True)
class Function:
    fact: FunctionFact


@dataclass(frozen=True)
class Class:
    fact: ClassFact


@dataclass(frozen=True)
class Instance:
    of: Resolved


@dataclass(frozen=True)
class Module:
    name: str


@dataclass(frozen=True)
class External:
    """A name from outside the project (`fastapi.Depends`, `sqlalchemy.orm.Session`)."""

    qname: str


@dataclass(frozen=True)
class Unresolved:
    reason: str = ""


Resolved = Union[Function, Class, Instance, Module, External, Unresolved]


def qualified_name(resolved: Resolved) -> Optional[str]:
    """`module.qualname` of a project function or class, the name of an external one, else None."""
    if isinstance(resolved, (Function, Class)):
        return f"{resolved.fact.module}.{resolved.fact.qualname}"
    if isinstance(resolved, External):
        return resolved.qname
    return None


FunctionKey = tuple[str, str]
"""(module, qualname) of a function."""


@dataclass(frozen=True)
class DependencyRef:
    """A `Depends`/`Security` call with its marker verified and its target resolved."""

    path: str
    module: str
    fact: DependencyRefFact
    kind: str  # "depends" or "security"
    target: Resolved  # what the argument refers to (for `Depends(f())`: `f` itself)


@dataclass(frozen=True)
class Route:
    path: str
    method: str
    endpoint: FunctionKey
    line: int


class ProjectIndex:
    """Cross-file queries over every file's facts."""

    def __init__(
        self,
        files: Iterable[FileFacts],
        module_aliases: Optional[dict[str, str]] = None,
        lazy: Optional[LazySource] = None,
    ):
        self.files: dict[str, FileFacts] = {
            facts.path: facts for facts in sorted(files, key=lambda f: f.path)
        }
        self.lazy = lazy
        """When set, the files not given are loaded on demand (see `LazySource`)."""
        self._loaded_late: list[FileFacts] = []
        self.modules: dict[str, FileFacts] = _LazyModules(self) if lazy is not None else {}
        self.module_aliases = dict(module_aliases or {})
        for alias, path in sorted(self.module_aliases.items()):
            if path in self.files and lazy is None:
                self.modules.setdefault(alias, self.files[path])
        for facts in self.files.values():
            if lazy is None:  # a lazy index maps names on demand, in the same precedence
                self.modules[facts.module] = facts
        self._memo: dict[Value, Resolved] = {}
        self._active: set[Value] = set()
        self.dependency_refs: list[DependencyRef] = []
        self.routes: list[Route] = []
        self._refs_by_position: dict[tuple[str, int, int], DependencyRef] = {}
        self._fastapi_callees: dict[FunctionKey, str] = {}
        self._factory_products: dict[FunctionKey, FunctionKey] = {}
        """Inner function -> the factory whose result FastAPI calls (`Depends(require_role("x"))`)."""
        self._refs_by_path: Optional[dict[str, list[DependencyRef]]] = None
        self._functions_by_line: dict[str, dict[int, FunctionFact]] = {}
        self.memo: dict[str, object] = {}
        """Derived data rules compute once per index (keyed by the rule's code)."""
        self._direct_calls: Optional[dict[FunctionKey, list[tuple[str, CallSite]]]] = None
        self._imports_by_target: Optional[dict[str, Optional[frozenset[str]]]] = None
        self._build()

    # ---- lazy loading -----------------------------------------------------------------------
    def _load_module(self, name: str) -> Optional[FileFacts]:
        """The facts of a project module not loaded yet, loading its file (lazy indexes only)."""
        if self.lazy is None:
            return None
        for path in self.lazy.module_paths.get(name, ()):
            facts = self.files.get(path)
            if facts is None and path not in self.lazy.failed:
                facts = self.lazy.load(path)
                if facts is None:
                    self.lazy.failed.add(path)
                    continue
                self._add_loaded(facts)
            if facts is not None:
                dict.__setitem__(self.modules, name, facts)
                return facts
        return None

    def _add_loaded(self, facts: FileFacts) -> None:
        self.files[facts.path] = facts
        self._loaded_late.append(facts)
        self._direct_calls = None
        self._functions_by_line.pop(facts.path, None)
        self._imports_by_target = None

    def load_mentioning(self, word: bytes) -> None:
        """Load every project file whose bytes contain `word` (lazy indexes only)."""
        if self.lazy is not None:
            self._load_paths(self.lazy.mentioning(word))

    def load_all(self) -> None:
        """Load every project file (lazy indexes only): for questions about the whole project."""
        if self.lazy is not None:
            self._load_paths(self.lazy.all_paths)

    def _load_paths(self, paths: Iterable[str]) -> None:
        assert self.lazy is not None
        for path in paths:
            if path not in self.files and path not in self.lazy.failed:
                facts = self.lazy.load(path)
                if facts is None:
                    self.lazy.failed.add(path)
                else:
                    self._add_loaded(facts)

    # ---- building ---------------------------------------------------------------------------
    def _build(self) -> None:
        for facts in list(self.files.values()):
            self._build_file(facts)
        self._build_loaded_late()

    def _build_loaded_late(self) -> None:
        while self._loaded_late:  # loaded while resolving: by the prefilter, no routes or markers
            late, self._loaded_late = self._loaded_late, []
            for facts in late:
                self._build_file(facts)

    def _build_file(self, facts: FileFacts) -> None:
        for route in facts.routes:
            owner = self.resolve(route.owner)
            endpoint = self.resolve(route.endpoint)
            if self.is_fastapi_object(owner) and isinstance(endpoint, Function):
                if _shadowed_endpoint(facts, route, endpoint.fact) is not None:
                    continue  # it decorates an earlier `def` of the name: see `function_at`
                key = (endpoint.fact.module, endpoint.fact.qualname)
                self.routes.append(Route(facts.path, route.method, key, route.line))
                self._fastapi_callees.setdefault(key, "route")
        for fact in facts.dependency_refs:
            marker = self.resolve(fact.marker)
            if not isinstance(marker, External):
                continue
            if marker.qname in DEPENDS_MARKERS:
                kind = "depends"
            elif marker.qname in SECURITY_MARKERS:
                kind = "security"
            else:
                continue
            target_value = fact.target if fact.target is not None else fact.annotation
            target = (
                self.resolve(target_value) if target_value is not None else Unresolved("no target")
            )
            ref = DependencyRef(facts.path, facts.module, fact, kind, target)
            self.dependency_refs.append(ref)
            self._refs_by_position[(facts.path, fact.line, fact.column)] = ref
            if not fact.target_is_call:
                self._mark_dependency(target)
            elif isinstance(target, Class):  # `Depends(Checker(...))`: the instance is called
                self._mark_dependency(Instance(target))
            elif isinstance(target, Function):  # `Depends(require_role("x"))`: what it returns is
                self._mark_factory(target)
        for override in facts.overrides:
            self._mark_dependency(self.resolve(override.key))
            self._mark_dependency(self.resolve(override.value))

    def _mark_dependency(self, target: Resolved) -> None:
        key: Optional[FunctionKey] = None
        if isinstance(target, Function):
            key = (target.fact.module, target.fact.qualname)
        elif isinstance(target, Class):
            key = self._method(target, "__init__")
        elif isinstance(target, Instance) and isinstance(target.of, Class):
            key = self._method(target.of, "__call__")
        if key is not None:
            self._fastapi_callees.setdefault(key, "dependency")

    def _mark_factory(self, factory: Function) -> None:
        """Record the inner functions a factory returns; FastAPI calls them (see `fastapi_role`)."""
        fact = factory.fact
        if not fact.returned_functions or not all(
            isinstance(resolved, External) and resolved.qname in FACTORY_DECORATORS
            for resolved in map(self.resolve, fact.decorators)
        ):
            return
        for qualname in fact.returned_functions:
            self._factory_products.setdefault((fact.module, qualname), (fact.module, fact.qualname))

    def _method(self, cls: Class, name: str) -> Optional[FunctionKey]:
        """The class or project base class that defines `name` (what FastAPI calls)."""
        for candidate in (cls, *self.class_bases(cls)):
            if isinstance(candidate, Class) and name in candidate.fact.methods:
                return candidate.fact.module, f"{candidate.fact.qualname}.{name}"
        return None

    # ---- resolution -------------------------------------------------------------------------
    def resolve(self, value: Value) -> Resolved:
        if value in self._memo:
            return self._memo[value]
        if value in self._active or len(self._active) > _MAX_DEPTH:
            return Unresolved("circular or too deep")
        self._active.add(value)
        try:
            result = self._resolve(value)
        finally:
            self._active.discard(value)
        self._memo[value] = result
        return result

    def _resolve(self, value: Value) -> Resolved:
        if isinstance(value, Name):
            return self._resolve_qname(value.qname)
        if isinstance(value, Call):
            return self._call_result(self.resolve(value.func))
        if isinstance(value, Attr):
            return self._attribute(self.resolve(value.base), [value.attr])
        return Unresolved("not a name")

    def resolve_qualified(self, qname: str) -> Resolved:
        """What a qualified name (`app.db.get_db`, `fastapi.Depends`) refers to."""
        return self.resolve(Name(qname))

    def resolve_top_level(self, facts: FileFacts, name: str) -> Resolved:
        """What a name or dotted name (`SessionLocal`, `httpx.Client`) read at the top level of a
        file refers to: through the file's module-level bindings, else a builtin."""
        head = name.split(".")[0]
        if head in facts.bindings or head in facts.functions or head in facts.classes:
            return self.resolve_qualified(f"{facts.module}.{name}")
        return self.resolve_qualified(f"builtins.{name}")

    def _resolve_qname(self, qname: str) -> Resolved:
        parts = qname.split(".")
        if parts[0] in ALWAYS_EXTERNAL:  # FastAPI's own source tree is not "the project"
            return External(qname)
        for cut in range(len(parts), 0, -1):
            module = ".".join(parts[:cut])
            if module in self.modules:
                return self._in_module(self.modules[module], parts[cut:])
            if self.lazy is not None and self.lazy.module_paths.get(module) == []:
                return Unresolved(f"several files of the project are module {module}")
        return External(qname)

    def _in_module(self, facts: FileFacts, rest: list[str]) -> Resolved:
        if not rest:
            return Module(facts.module)
        joined = ".".join(rest)
        if joined in facts.functions:
            return Function(facts.functions[joined])
        if joined in facts.classes:
            return Class(facts.classes[joined])
        first, remaining = rest[0], rest[1:]
        if first in facts.functions and first not in facts.rebound:
            return self._attribute(Function(facts.functions[first]), remaining)
        if first in facts.classes and first not in facts.rebound:
            return self._attribute(Class(facts.classes[first]), remaining)
        if first in facts.bindings:
            return self._attribute(self.resolve(facts.bindings[first]), remaining)
        for star in facts.star_imports:
            if star in self.modules and self._defines(self.modules[star], first):
                return self._resolve_qname(".".join([star, *rest]))
        return Unresolved(f"{facts.module} has no name {first!r}")

    @staticmethod
    def _defines(facts: FileFacts, name: str) -> bool:
        return name in facts.bindings or name in facts.functions or name in facts.classes

    def _attribute(self, base: Resolved, names: list[str]) -> Resolved:
        if not names:
            return base
        first, rest = names[0], names[1:]
        if isinstance(base, Module):
            return self._resolve_qname(".".join([base.name, *names]))
        if isinstance(base, External):
            return External(".".join([base.qname, *names]))
        if isinstance(base, Class):
            method = f"{base.fact.qualname}.{first}"
            facts = self.modules.get(base.fact.module)
            if facts is not None and method in facts.functions:
                return self._attribute(Function(facts.functions[method]), rest)
            return Unresolved(f"attribute {first!r} of class")
        if (
            isinstance(base, Instance)
            and first == "router"
            and self._is_subclass(base.of, APP_CLASSES)
        ):
            return self._attribute(Instance(External("fastapi.APIRouter")), rest)
        return Unresolved(f"attribute {first!r}")

    def _call_result(self, callee: Resolved) -> Resolved:
        if isinstance(callee, (Class, External)):
            return Instance(callee)
        if isinstance(callee, Function) and callee.fact.returns is not None:
            returned = self.resolve(callee.fact.returns)
            if isinstance(returned, (Class, External)):
                return Instance(returned)
        return Unresolved("result of a call")

    # ---- questions rules ask ----------------------------------------------------------------
    def _is_subclass(self, resolved: Resolved, names: frozenset[str], depth: int = 0) -> bool:
        if isinstance(resolved, External):
            return resolved.qname in names
        if isinstance(resolved, Class) and depth < _MAX_DEPTH:
            return any(
                self._is_subclass(self.resolve(base), names, depth + 1)
                for base in resolved.fact.bases
            )
        return False

    def is_fastapi_object(self, resolved: Resolved) -> bool:
        """An instance of FastAPI or APIRouter, or of a subclass of either."""
        return isinstance(resolved, Instance) and self._is_subclass(
            resolved.of, APP_CLASSES | ROUTER_CLASSES
        )

    def class_bases(self, cls: Class) -> Iterator[Resolved]:
        """Every base class, transitively, resolved (project classes and external names)."""
        seen: set[Resolved] = set()
        stack: list[Resolved] = [self.resolve(base) for base in reversed(cls.fact.bases)]
        while stack and len(seen) < _MAX_DEPTH:
            base = stack.pop()
            if base in seen:
                continue
            seen.add(base)
            yield base
            if isinstance(base, Class):
                stack.extend(self.resolve(b) for b in reversed(base.fact.bases))

    def function(self, key: FunctionKey) -> Optional[FunctionFact]:
        facts = self.modules.get(key[0])
        return facts.functions.get(key[1]) if facts is not None else None

    def fastapi_role(self, key: FunctionKey) -> Optional[str]:
        """ "route" or "dependency" when FastAPI calls this function, else None.

        An inner function a factory returns is a dependency when the factory's result goes to
        `Depends(...)`/`Security(...)` only: a direct call of the factory elsewhere hands it to code
        that may call it with any arguments.
        """
        role = self._fastapi_callees.get(key)
        factory = self._factory_products.get(key) if role is None else None
        if factory is not None and not self.direct_calls(factory):
            return "dependency"
        return role

    def defines_callees(self, facts: FileFacts) -> bool:
        """Whether the file defines a route or dependency (a function FastAPI calls)."""
        return any(
            self.fastapi_role((function.module, function.qualname)) is not None
            for function in facts.functions.values()
        )

    def dependency_refs_in(self, path: str) -> list[DependencyRef]:
        """The verified `Depends`/`Security` calls of one file, in source order."""
        if self._refs_by_path is None:
            self._refs_by_path = {}
            for ref in self.dependency_refs:
                self._refs_by_path.setdefault(ref.path, []).append(ref)
        return list(self._refs_by_path.get(path, []))

    def local_name(self, facts: FileFacts, wanted: Resolved) -> Optional[str]:
        """A module-level name of `facts` bound to `wanted` (the first in sorted order), if any."""
        for local, value in sorted(facts.bindings.items()):
            if local not in facts.rebound and self.resolve(value) == wanted:
                return local
        return None

    def dependency_ref_at(self, path: str, line: int, column: int) -> Optional[DependencyRef]:
        """The verified `Depends`/`Security` call that starts at this position of a file."""
        return self._refs_by_position.get((path, line, column))

    def direct_calls(self, key: FunctionKey) -> list[tuple[str, CallSite]]:
        """Where the project calls this function itself, outside `Depends(...)`, sorted.

        A call of a class counts as a call of its `__init__`.
        """
        if self.lazy is not None:  # a call names the function (or its class) in the caller's bytes
            name = key[1].removesuffix(".__init__").rsplit(".", 1)[-1]
            self.load_mentioning(name.encode())
        if self._direct_calls is None:
            calls: dict[FunctionKey, list[tuple[str, CallSite]]] = {}
            done: set[str] = set()
            while len(done) < len(self.files):  # a lazy index may load modules while resolving
                for facts in [f for f in self.files.values() if f.path not in done]:
                    done.add(facts.path)
                    for qname, sites in facts.calls.items():
                        resolved = self.resolve(Name(qname))
                        if isinstance(resolved, Function):
                            target = (resolved.fact.module, resolved.fact.qualname)
                        elif isinstance(resolved, Class):
                            target = (resolved.fact.module, f"{resolved.fact.qualname}.__init__")
                        else:
                            continue
                        calls.setdefault(target, []).extend((facts.path, site) for site in sites)
            self._direct_calls = {key: sorted(value) for key, value in calls.items()}
        return self._direct_calls.get(key, [])

    def function_at(self, path: str, line: int) -> Optional[FunctionFact]:
        """The function whose `def` (or `async def`) keyword is on this line of a file."""
        facts = self.files.get(path)
        if facts is None:
            return None
        by_line = self._functions_by_line.get(path)
        if by_line is None:
            by_line = {fact.line: fact for fact in facts.functions.values()}
            if facts.shadowed_functions:
                by_line.update((fact.line, fact) for fact in self._shadowed_routes(facts))
            self._functions_by_line[path] = by_line
        return by_line.get(line)

    def _shadowed_routes(self, facts: FileFacts) -> Iterator[FunctionFact]:
        """Earlier `def`s of a rebound name that a route decorator registers.

        Python's name refers to the last `def`, but the decorator registered each one. Rules look a
        function's role up by its qualified name, which both share: an earlier definition is checked
        only when the last one is a route as well (two routes named alike), never as what the name
        refers to (an earlier plain function is not a route because a later one is).
        """
        for route in facts.routes:
            if not self.is_fastapi_object(self.resolve(route.owner)):
                continue
            endpoint = self.resolve(route.endpoint)
            if not isinstance(endpoint, Function):
                continue
            shadowed = _shadowed_endpoint(facts, route, endpoint.fact)
            if (
                shadowed is not None
                and self.fastapi_role((facts.module, shadowed.qualname)) == "route"
            ):
                yield shadowed

    def with_file(self, facts: FileFacts) -> ProjectIndex:
        """The index of the same project with one file's facts replaced (after a fix pass).

        Only what depends on that file is rebuilt: its own routes and references, and the targets
        of references elsewhere that resolve into it (their facts carry its line numbers). Rebuilding
        the whole index for every pass of every file made a run grow with files x passes.
        """
        old = self.files.get(facts.path)
        if old is None or old.module != facts.module or old.is_package != facts.is_package:
            files = [facts if f.path == facts.path else f for f in self.files.values()]
            return ProjectIndex(files, self.module_aliases, self.lazy)
        new = ProjectIndex.__new__(ProjectIndex)
        new.__dict__.update(self.__dict__)
        new.files = dict(self.files)
        new.files[facts.path] = facts
        modules: dict[str, FileFacts] = _LazyModules(new) if self.lazy is not None else {}
        for name, module_facts in dict.items(self.modules):
            dict.__setitem__(modules, name, facts if module_facts is old else module_facts)
        new.modules = modules
        new._loaded_late = []
        new._memo = {}
        new._active = set()
        new.memo = {}
        new._refs_by_path = None
        new._functions_by_line = dict(self._functions_by_line)
        new._functions_by_line.pop(facts.path, None)
        new._direct_calls = None
        new._imports_by_target = None
        new._fastapi_callees = dict(self._fastapi_callees)
        new._factory_products = dict(self._factory_products)
        new.routes = [route for route in self.routes if route.path != facts.path]
        new.dependency_refs = []
        new._refs_by_position = {}
        for ref in self.dependency_refs:
            if ref.path == facts.path:
                continue
            if _defined_in(ref.target, facts.module):
                value = ref.fact.target if ref.fact.target is not None else ref.fact.annotation
                if value is not None:
                    ref = replace(ref, target=new.resolve(value))
            new.dependency_refs.append(ref)
            new._refs_by_position[(ref.path, ref.fact.line, ref.fact.column)] = ref
        new._build_file(facts)
        new._build_loaded_late()
        return new

    def imported_modules(self, facts: FileFacts, kinds: frozenset[str] = EAGER) -> set[str]:
        """The project modules a file imports (of the given kinds), by their main module name.

        `from pkg import name` imports `pkg`, and also `pkg.name` when that is a module; importing
        a module imports its parent packages.
        """
        found: set[str] = set()
        for fact in facts.imports:
            if fact.kind not in kinds:
                continue
            target = self.modules.get(fact.target)
            if target is not None:
                found.add(target.module)
            for name in fact.names:
                submodule = self.modules.get(f"{fact.target}.{name}")
                if submodule is not None:
                    found.add(submodule.module)
        for module in list(found):  # importing a.b.c runs a/__init__ and a/b/__init__ first
            parts = module.split(".")
            for cut in range(1, len(parts)):
                parent = self.modules.get(".".join(parts[:cut]))
                if parent is not None:
                    found.add(parent.module)
        found.discard(facts.module)
        return found

    def import_graph(self, kinds: frozenset[str] = EAGER) -> dict[str, set[str]]:
        """Module -> project modules it imports; eager imports only by default."""
        key = f"import_graph:{','.join(sorted(kinds))}"
        cached = self.memo.get(key)
        if isinstance(cached, dict):
            return cached
        graph: dict[str, set[str]] = {}
        done: set[str] = set()
        while len(done) < len(self.files):  # a lazy index loads what the files import meanwhile
            for facts in [f for f in self.files.values() if f.path not in done]:
                done.add(facts.path)
                graph[facts.module] = self.imported_modules(facts, kinds)
        graph = {
            facts.module: graph[facts.module]
            for facts in sorted(self.files.values(), key=lambda f: f.path)
        }
        self.memo[key] = graph
        return graph

    def import_cycles(self) -> list[list[str]]:
        """The strongly connected components of the eager import graph that are cycles, sorted."""
        cached = self.memo.get("import_cycles")
        if isinstance(cached, list):
            return cached
        self.load_all()  # cycles anywhere in the project, not only through the files loaded so far
        graph = self.import_graph()
        cycles = [sorted(c) for c in strongly_connected(graph) if len(c) > 1]
        cycles += [[m] for m in sorted(graph) if m in graph[m]]
        cycles.sort()
        self.memo["import_cycles"] = cycles
        return cycles

    def closure(self, module: str) -> frozenset[str]:
        """Every project module that importing `module` imports (eagerly), itself included."""
        key = f"closure:{module}"
        cached = self.memo.get(key)
        if isinstance(cached, frozenset):
            return cached
        graph = self.import_graph()
        seen: set[str] = set()
        stack = [module]
        while stack:
            current = stack.pop()
            if current not in seen:
                seen.add(current)
                stack.extend(graph.get(current, ()))
        result = frozenset(seen)
        self.memo[key] = result
        return result

    def cycle_members(self) -> frozenset[str]:
        """Every module that is part of an eager import cycle that can fail.

        A cycle in which every member imports cleanly when imported first cannot fail whatever
        imports it (`depfix.import_order`): importing one of its members from a new place is safe.
        """
        cached = self.memo.get("cycle_members")
        if isinstance(cached, frozenset):
            return cached
        # The cycles through the files loaded (with their imports): exact for any module whose
        # import closure is asked about, without loading a lazy index whole.
        members = frozenset(m for cycle in failing_cycles(self) for m in cycle.members)
        self.memo["cycle_members"] = members
        return members

    def new_import_risk(self, importer: str, imported: str) -> Optional[str]:
        """Why a new eager `importer -> imported` import may break the program, or None.

        It closes a cycle when `imported` already imports `importer`; it can break an existing
        cycle when it makes the program import a member of one in a new order.
        """
        closure = self.closure(imported)
        if importer in closure:
            return f"importing {imported} into {importer} would close an import cycle"
        entangled = sorted(closure & self.cycle_members())
        if entangled and imported not in self.closure(importer):
            return f"{imported} imports {entangled[0]}, which is in an import cycle (see DF008)"
        return None

    def reaches(self, start: str, goal: str, graph: Optional[dict[str, set[str]]] = None) -> bool:
        """Whether importing `start` imports `goal`, following eager imports."""
        graph = graph if graph is not None else self.import_graph()
        seen: set[str] = set()
        stack = [start]
        while stack:
            module = stack.pop()
            if module == goal:
                return True
            if module in seen:
                continue
            seen.add(module)
            stack.extend(sorted(graph.get(module, ())))
        return False

    def names_imported_from(self, module: str) -> Optional[frozenset[str]]:
        """Names other project files import from `module`; None when one star-imports it."""
        if self.lazy is not None:  # an importer names the module, or imports it relatively
            facts = self.modules.get(module)
            if facts is not None:
                self.load_mentioning(facts.module.rsplit(".", 1)[-1].encode())
                if facts.is_package:
                    self.load_mentioning(b"from .")
        if self._imports_by_target is None:
            by_target: dict[str, tuple[set[str], list[bool]]] = {}
            done: set[str] = set()
            while len(done) < len(self.files):  # a lazy index may load imported modules meanwhile
                for facts in [f for f in self.files.values() if f.path not in done]:
                    done.add(facts.path)
                    for fact in facts.imports:
                        target = self.modules.get(fact.target)
                        if target is None:
                            continue
                        names, star = by_target.setdefault(target.path, (set(), [False]))
                        star[0] = star[0] or fact.star
                        names.update(fact.names)
            self._imports_by_target = {
                path: None if star[0] else frozenset(names)
                for path, (names, star) in by_target.items()
            }
        target = self.modules.get(module)
        if target is None:
            return frozenset()
        return self._imports_by_target.get(target.path, frozenset())

    def top_level_packages(self) -> frozenset[str]:
        """The first part of every module name in the project (isort's first party)."""
        cached = self.memo.get("top_level_packages")
        if isinstance(cached, frozenset):
            return cached
        names = self.lazy.module_paths if self.lazy is not None else self.modules
        packages = frozenset(name.split(".")[0] for name in names)
        self.memo["top_level_packages"] = packages
        return packages

    def file(self, path: str) -> Optional[FileFacts]:
        return self.files.get(path)


class LazySource:
    """Where a lazy index finds the files it was not given: every project module's candidate files
    (in the precedence a full index gives them), a loader, and a byte search over the project."""

    def __init__(
        self,
        module_paths: dict[str, list[str]],
        load: Callable[[str], Optional[FileFacts]],
        mentioning: Callable[[bytes], list[str]],
        all_paths: Iterable[str] = (),
    ) -> None:
        self.module_paths = module_paths
        self.all_paths = sorted(all_paths)
        self.load = load
        self._mentioning = mentioning
        self._mentions: dict[bytes, list[str]] = {}
        self.failed: set[str] = set()
        """Files that could not be loaded (unreadable or unparsable): not in the index."""

    def searched(self, word: bytes) -> None:
        """Record that every file mentioning `word` is loaded already."""
        self._mentions[word] = []

    def searched_words(self) -> list[bytes]:
        """The words every file mentioning them was loaded for."""
        return sorted(self._mentions)

    def mentioning(self, word: bytes) -> list[str]:
        """The project files whose bytes contain `word`."""
        if word not in self._mentions:
            self._mentions[word] = self._mentioning(word)
        return self._mentions[word]


class _LazyModules(dict):  # type: ignore[type-arg]
    """Module name -> facts, loading a module's file on first access."""

    def __init__(self, index: ProjectIndex) -> None:
        super().__init__()
        self._index = index

    def __missing__(self, name: str) -> FileFacts:
        facts = self._index._load_module(name)
        if facts is None:
            raise KeyError(name)
        return facts

    def get(self, name: str, default: Optional[FileFacts] = None) -> Optional[FileFacts]:  # type: ignore[override]
        found: Optional[FileFacts] = dict.get(self, name)
        # Most names asked are not project modules: answered here, without a KeyError or a call.
        if found is None and name in self._index.lazy.module_paths:  # type: ignore[union-attr]
            found = self._index._load_module(name)
        return default if found is None else found

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None


def _shadowed_endpoint(
    facts: FileFacts, route: RouteFact, endpoint: FunctionFact
) -> Optional[FunctionFact]:
    """The earlier `def` of the endpoint's name that a route decorator decorates, if it is one."""
    if not route.definition_line or endpoint.line == route.definition_line:
        return None
    if endpoint.module != facts.module:
        return None
    for fact in facts.shadowed_functions:
        if fact.line == route.definition_line and fact.qualname == endpoint.qualname:
            return fact
    return None


def _defined_in(resolved: Resolved, module: str) -> bool:
    """Whether a resolved target is (an instance of) a function or class of `module`."""
    if isinstance(resolved, Instance):
        resolved = resolved.of
    return isinstance(resolved, (Function, Class)) and resolved.fact.module == module


def strongly_connected(graph: dict[str, set[str]]) -> list[set[str]]:
    """Tarjan's strongly connected components, iteratively (deep import chains are common)."""
    index_of: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[set[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index_of:
            continue
        work: list[tuple[str, Iterator[str]]] = [(root, iter(sorted(graph.get(root, ()))))]
        index_of[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            advanced = False
            for child in children:
                if child not in graph:
                    continue
                if child not in index_of:
                    index_of[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                    advanced = True
                    break
                if child in on_stack:
                    low[node] = min(low[node], index_of[child])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index_of[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                components.append(component)
    return components
