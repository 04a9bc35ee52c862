"""What one module defines and uses at its top level, by libcst scope analysis.

DF008 moves top-level definitions between modules; it needs, for each top-level statement, the global
names it defines and the global names it uses (at definition time and inside function bodies), and
for each global name whether it is defined once, rebound, bound conditionally, or bound by an import.
"""

from __future__ import annotations

import builtins
import hashlib
from dataclasses import dataclass, field
from typing import Optional, Union

import libcst as cst
from libcst.metadata import (
    Assignment,
    ClassScope,
    ComprehensionScope,
    FunctionScope,
    GlobalScope,
    ImportAssignment,
    MetadataWrapper,
    ParentNodeProvider,
    Scope,
    ScopeProvider,
)

from depfix.facts import resolve_relative
from depfix.imports import dotted

BUILTIN_NAMES = frozenset(dir(builtins)) | {"__file__", "__name__", "__doc__", "__spec__"}
MODULE_DUNDERS = frozenset({"__name__", "__file__", "__spec__", "__package__", "__loader__"})


@dataclass
class Statement:
    """One top-level statement of a module."""

    position: int
    node: Union[cst.SimpleStatementLine, cst.BaseCompoundStatement]
    defines: set[str] = field(default_factory=set)
    definition_uses: set[str] = field(default_factory=set)
    """Global names it reads when it runs (decorators, defaults, annotations, class bodies)."""
    body_uses: set[str] = field(default_factory=set)
    """Global names read inside its functions' bodies (only when they are called)."""
    dunders: set[str] = field(default_factory=set)

    @property
    def movable(self) -> bool:
        """A function, a class, or a single plain assignment."""
        if isinstance(self.node, (cst.FunctionDef, cst.ClassDef)):
            return True
        return (
            isinstance(self.node, cst.SimpleStatementLine)
            and len(self.node.body) == 1
            and isinstance(self.node.body[0], (cst.Assign, cst.AnnAssign))
        )

    @property
    def uses(self) -> set[str]:
        return self.definition_uses | self.body_uses


@dataclass(frozen=True)
class ImportBinding:
    """A global name bound by an import: `from module import original as name` or `import module`."""

    name: str
    module: str
    original: Optional[str]  # None when the module itself is bound
    position: int  # the top-level statement holding the import
    relative: bool


@dataclass
class ModuleAnalysis:
    module: str
    is_package: bool
    tree: cst.Module
    statements: list[Statement] = field(default_factory=list)
    definitions: dict[str, list[int]] = field(default_factory=dict)
    """Global name -> the top-level statements that define it directly."""
    conditional: set[str] = field(default_factory=set)
    """Global names bound inside a compound top-level statement (`if`, `try`, ...)."""
    type_checking: set[str] = field(default_factory=set)
    """Global names imported inside `if TYPE_CHECKING:` (bound for type checkers only)."""
    mutated: set[str] = field(default_factory=set)
    """Global names rebound elsewhere: `global x` in a function, `x += 1`."""
    imports: dict[str, ImportBinding] = field(default_factory=dict)
    used_by: dict[str, set[int]] = field(default_factory=dict)
    """Global name -> the top-level statements that read it."""
    unresolved: set[str] = field(default_factory=set)
    """Names read somewhere that nothing binds (and are not builtins)."""


def _scope_is_definition_time(scope: Scope) -> bool:
    current: Optional[Scope] = scope
    while current is not None and not isinstance(current, GlobalScope):
        if isinstance(current, FunctionScope):
            return False
        if not isinstance(current, (ClassScope, ComprehensionScope)):
            current = current.parent
            continue
        current = current.parent
    return True


def _is_type_checking_block(node: cst.CSTNode) -> bool:
    """`if TYPE_CHECKING:` or `if typing.TYPE_CHECKING:` without an `else`."""
    if not isinstance(node, cst.If) or node.orelse is not None:
        return False
    test = dotted(node.test)
    return test is not None and test.split(".")[-1] == "TYPE_CHECKING"


def _direct_targets(node: cst.BaseStatement) -> list[cst.CSTNode]:
    """The Name nodes a plain top-level assignment binds directly."""
    if not isinstance(node, cst.SimpleStatementLine) or len(node.body) != 1:
        return []
    small = node.body[0]
    targets: list[cst.BaseAssignTargetExpression] = []
    if isinstance(small, cst.Assign):
        targets = [target.target for target in small.targets]
    elif isinstance(small, cst.AnnAssign) and small.value is not None:
        targets = [small.target]
    found: list[cst.CSTNode] = []
    for target in targets:
        if isinstance(target, cst.Name):
            found.append(target)
        elif isinstance(target, (cst.Tuple, cst.List)):
            found.extend(
                element.value for element in target.elements if isinstance(element.value, cst.Name)
            )
    return found


def _import_binding(
    assignment: ImportAssignment, position: int, module: str, is_package: bool
) -> Optional[ImportBinding]:
    node = assignment.node
    if isinstance(node, cst.Import):
        for alias in node.names:
            full = dotted(alias.name)
            if full is None:
                continue
            if alias.asname is not None:
                bound = alias.asname.name
                if isinstance(bound, cst.Name) and bound.value == assignment.name:
                    return ImportBinding(assignment.name, full, None, position, False)
            elif full.split(".")[0] == assignment.name:
                return ImportBinding(assignment.name, full, None, position, False)
    elif isinstance(node, cst.ImportFrom) and not isinstance(node.names, cst.ImportStar):
        source = dotted(node.module) if node.module is not None else None
        absolute = resolve_relative(module, is_package, len(node.relative), source)
        for alias in node.names:
            original = dotted(alias.name)
            if original is None:
                continue
            as_node = alias.asname.name if alias.asname is not None else None
            bound_name = as_node.value if isinstance(as_node, cst.Name) else original
            if bound_name == assignment.name:
                return ImportBinding(
                    assignment.name, absolute, original, position, bool(node.relative)
                )
    return None


_ANALYSED: dict[tuple[str, bool, bytes], ModuleAnalysis] = {}
_ANALYSED_LIMIT = 256


def analyse_source(module: str, is_package: bool, data: bytes) -> ModuleAnalysis:
    """`analyse` of a module's bytes (libcst parse errors propagate), remembered by content.

    Planning runs again in every round of a run, and verification analyses the same files again:
    scope analysis is the slowest step of DF008 (about a second for a large module). Analyses are
    never modified by their users.
    """
    key = (module, is_package, hashlib.blake2b(data, digest_size=16).digest())
    found = _ANALYSED.get(key)
    if found is None:
        if len(_ANALYSED) >= _ANALYSED_LIMIT:
            _ANALYSED.clear()
        found = _ANALYSED[key] = analyse(module, is_package, cst.parse_module(data))
    return found


def analyse(module: str, is_package: bool, tree: cst.Module) -> ModuleAnalysis:
    """Scope analysis of one module's top level."""
    wrapper = MetadataWrapper(tree, unsafe_skip_copy=True)
    scopes = wrapper.resolve(ScopeProvider)
    parents = wrapper.resolve(ParentNodeProvider)
    result = ModuleAnalysis(module, is_package, tree)
    position_of: dict[int, int] = {}
    for position, top in enumerate(tree.body):
        result.statements.append(Statement(position, top))
        position_of[id(top)] = position

    def top_level(node: cst.CSTNode) -> Optional[int]:
        current: Optional[cst.CSTNode] = node
        while current is not None:
            found = position_of.get(id(current))
            if found is not None:
                return found
            current = parents.get(current)
        return None

    global_scope = next((s for s in scopes.values() if isinstance(s, GlobalScope)), None)
    if global_scope is None:
        return result
    for assignment in global_scope.assignments:
        if not isinstance(assignment, (Assignment, ImportAssignment)):
            continue
        name = assignment.name
        defined_at = top_level(assignment.node)
        if defined_at is None:
            continue
        position = defined_at
        statement = result.statements[position]
        if isinstance(assignment, ImportAssignment):
            binding = _import_binding(assignment, position, module, is_package)
            previous = result.imports.get(name)
            if binding is not None and previous is None:
                result.imports[name] = binding
            elif binding is not None and previous != binding:
                result.mutated.add(name)  # `import a.b` and `import a.c` both bind `a`
            if _is_type_checking_block(statement.node):
                result.type_checking.add(name)
            elif not isinstance(statement.node, cst.SimpleStatementLine):
                result.conditional.add(name)
            continue
        node = statement.node
        direct = assignment.node is node or any(
            assignment.node is target for target in _direct_targets(node)
        )
        if direct and statement.movable:
            result.definitions.setdefault(name, []).append(position)
            statement.defines.add(name)
        elif isinstance(node, (cst.FunctionDef, cst.ClassDef, cst.SimpleStatementLine)):
            result.mutated.add(name)
        else:
            result.conditional.add(name)
    for scope in {id(s): s for s in scopes.values() if s is not None}.values():
        for access in scope.accesses:
            accessed = access.node.value if isinstance(access.node, cst.Name) else None
            found = top_level(access.node)
            if found is None:
                continue
            position = found
            statement = result.statements[position]
            referents = list(access.referents)
            if accessed in MODULE_DUNDERS:
                statement.dunders.add(accessed)
            if not referents:
                if accessed is not None and accessed not in BUILTIN_NAMES:
                    result.unresolved.add(accessed)
                continue
            for referent in referents:
                if referent.scope is not global_scope:
                    continue
                used = referent.name
                result.used_by.setdefault(used, set()).add(position)
                if _scope_is_definition_time(access.scope):
                    statement.definition_uses.add(used)
                else:
                    statement.body_uses.add(used)
    return result
