"""The imports between the modules of a cycle, as DF008 lists them, and the cycles through lazy imports.

A module runs the modules it imports when it runs; a cycle of such edges can fail only where one
module takes a name from another that may still be running (`from x import name`, or `Depends(x.name)`
evaluated at import time). Whether an eager cycle really fails is `depfix.import_order`'s question:
here, `cycle_edges` names the imports of a cycle (the names they take are what DF008 moves), and
`name_import_cycles` finds the cycles that exist only through function-local or `TYPE_CHECKING`
imports, which DF008 mentions with `--verbose`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, cast

from depfix.facts import FileFacts, ImportFact
from depfix.index import EAGER, ProjectIndex, strongly_connected
from depfix.modules import imported_names
from depfix.values import Name


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
    modules = index.modules
    found: set[str] = set()
    for name in imported_names(fact.target, fact.names):
        target = modules.get(name)
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
        file_runs, file_fetches = _file_edges(index, facts, kinds)
        runs.setdefault(facts.module, set()).update(file_runs)
        fetches.update(file_fetches)
    graph = ImportGraph(runs, fetches)
    index.memo[key] = graph
    return graph


@dataclass
class _FileEdges:
    """One file's imports as edges, for every kind at once, with the module lookups they came from."""

    facts: FileFacts
    seen: dict[str, Optional[str]]
    """Each module name looked up, with the module it found (None: not a project module)."""
    by_import: list[tuple[str, set[str], Optional[str]]]
    """Per import statement: its kind, the modules it runs, the module it fetches names from."""
    attribute: list[str]
    """Modules read through `Depends(module.name)` while the file runs (edges of every kind)."""
    by_kinds: dict[frozenset[str], tuple[set[str], set[tuple[str, str]]]]


_EDGES: dict[int, _FileEdges] = {}
"""By the id of the facts they were computed from (an entry holds those facts: the id stays theirs)."""


class _RecordingIndex:
    """The index as one file's edges see it: its module lookups, each recorded with its result."""

    def __init__(self, index: ProjectIndex) -> None:
        self.index = index
        self.modules = self
        self.seen: dict[str, Optional[str]] = {}

    def get(self, name: str, default: Optional[FileFacts] = None) -> Optional[FileFacts]:
        found = self.index.modules.get(name)
        self.seen[name] = None if found is None else found.module
        return default if found is None else found

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def imported_modules(self, facts: FileFacts, kinds: frozenset[str] = EAGER) -> set[str]:
        return ProjectIndex.imported_modules(cast(ProjectIndex, self), facts, kinds)


def _still_found(index: ProjectIndex, seen: dict[str, Optional[str]]) -> bool:
    for name, module in seen.items():
        found = index.modules.get(name)
        if (None if found is None else found.module) != module:
            return False
    return True


def _file_edges(
    index: ProjectIndex, facts: FileFacts, kinds: frozenset[str]
) -> tuple[set[str], set[tuple[str, str]]]:
    """The modules one file runs and the ones it fetches names from, through imports of `kinds`.

    They depend on the file's facts and on what its module lookups find, nothing else: they are
    kept with those lookups, and reused while every lookup still finds the same module (planning
    rounds change a few files, and a module a run creates is looked up by few files).
    """
    edges = _edges_of(index, facts)
    known = edges.by_kinds.get(kinds)
    if known is not None:
        return known
    runs: set[str] = set()
    fetches: set[tuple[str, str]] = set()
    for kind, modules, fetched in edges.by_import:
        if kind in kinds:
            runs.update(modules)
            if fetched is not None:
                fetches.add((facts.module, fetched))
    fetches.update((facts.module, module) for module in edges.attribute)
    edges.by_kinds[kinds] = (runs, fetches)
    return runs, fetches


def _edges_of(index: ProjectIndex, facts: FileFacts) -> _FileEdges:
    """The edges of every import of a file: computed once, checked once per state of the index.

    A lazy index only grows: while it holds the same number of files, its lookups answer the same.
    """
    key = f"DF008:edges checked:{len(index.files)}"
    checked = cast(set[int], index.memo.setdefault(key, set()))
    known = _EDGES.get(id(facts))
    if (
        known is not None
        and known.facts is facts
        and (id(facts) in checked or _still_found(index, known.seen))
    ):
        checked.add(id(facts))
        return known
    recording = _RecordingIndex(index)
    view = cast(ProjectIndex, recording)
    by_import: list[tuple[str, set[str], Optional[str]]] = []
    for fact in facts.imports:
        target = recording.get(fact.target)
        fetched = None
        if target is not None and target.module != facts.module and _fetches_names(view, fact):
            fetched = target.module
        by_import.append((fact.kind, _runs(view, facts, fact), fetched))
    attribute = [edge.imported for edge in _attribute_edges(view, facts)]
    if len(_EDGES) > 100_000:  # another project's run in this process: start over
        _EDGES.clear()
    edges = _FileEdges(facts, recording.seen, by_import, attribute, {})
    _EDGES[id(facts)] = edges
    checked.add(id(facts))
    return edges


def name_import_cycles(index: ProjectIndex, kinds: frozenset[str]) -> list[list[str]]:
    """The cycles of imports of the given kinds with an import taking a name inside, sorted."""
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
            target = index.modules.get(fact.target)
            if (
                target is not None
                and target.module in members
                and target.module != module
                and _fetches_names(index, fact)
            ):  # a package's own submodule taking names from it is an edge too
                names = tuple(n for n in fact.names if f"{fact.target}.{n}" not in index.modules)
                edges.append(Edge(facts.path, fact.line, module, target.module, names or ("*",)))
                continue
            reached = sorted(_runs(index, facts, fact) & members - {module})
            if reached:
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
