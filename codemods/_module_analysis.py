"""What one module defines and uses at its top level, by libcst scope analysis.

DF008 moves top-level definitions between modules; it needs, for each top-level statement, the global
names it defines and the global names it uses (at definition time and inside function bodies), and
for each global name whether it is defined once, rebound, bound conditionally, or bound by an import.
"""

from __future__ import annotations

import ast
import builtins
import hashlib
import re
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Optional, Union, cast

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

from depfix.facts import ast_dotted, resolve_relative
from depfix.imports import dotted

BUILTIN_NAMES = frozenset(dir(builtins)) | {"__file__", "__name__", "__doc__", "__spec__"}
MODULE_DUNDERS = frozenset({"__name__", "__file__", "__spec__", "__package__", "__loader__"})


_MOVABLE_KINDS = frozenset({"def", "class", "assign"})


def _cst_kind(node: cst.CSTNode) -> str:
    """What a libcst top-level statement is: "def", "class", "assign" (one plain assignment on its
    line), "line" (any other simple statement line) or "block" (any other compound statement)."""
    if isinstance(node, cst.FunctionDef):
        return "def"
    if isinstance(node, cst.ClassDef):
        return "class"
    if isinstance(node, cst.SimpleStatementLine):
        if len(node.body) == 1 and isinstance(node.body[0], (cst.Assign, cst.AnnAssign)):
            return "assign"
        return "line"
    return "block"


@dataclass
class Statement:
    """One top-level statement of a module."""

    position: int
    """The index of the statement in the libcst module's `body`."""
    kind: str
    """"def", "class", "assign", "line" or "block" (see `_cst_kind`)."""
    defines: set[str] = field(default_factory=set)
    definition_uses: set[str] = field(default_factory=set)
    """Global names it reads when it runs (decorators, defaults, annotations, class bodies)."""
    body_uses: set[str] = field(default_factory=set)
    """Global names read inside its functions' bodies (only when they are called)."""
    dunders: set[str] = field(default_factory=set)
    _node: Optional[Union[cst.SimpleStatementLine, cst.BaseCompoundStatement]] = field(
        default=None, repr=False, compare=False
    )
    _owner: Optional[ModuleAnalysis] = field(default=None, repr=False, compare=False)

    @property
    def node(self) -> Union[cst.SimpleStatementLine, cst.BaseCompoundStatement]:
        """The libcst statement (the module is parsed with libcst on first use)."""
        if self._node is not None:
            return self._node
        assert self._owner is not None
        # not kept: the tree lives in the bounded cache of parsed sources
        node = self._owner.tree.body[self.position]
        assert isinstance(node, (cst.SimpleStatementLine, cst.BaseCompoundStatement))
        return node

    @property
    def movable(self) -> bool:
        """A function, a class, or a single plain assignment."""
        return self.kind in _MOVABLE_KINDS

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
    _tree: Optional[cst.Module] = field(repr=False, compare=False)
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
    _source: Optional[bytes] = field(default=None, repr=False, compare=False)
    _matched: bool = field(default=False, repr=False, compare=False)
    """Whether the libcst statements of `_source` were found to match `statements`."""

    @property
    def tree(self) -> cst.Module:
        """The libcst module, parsed on first use when the analysis came from `ast`."""
        if self._tree is not None:
            return self._tree
        assert self._source is not None
        # Not kept on the analysis (analyses are remembered in numbers, trees are large): parsed
        # sources are remembered by content, a bounded number of them.
        tree = parse_module_cached(self._source)
        if not self._matched:
            if len(tree.body) != len(self.statements) or any(
                _cst_kind(node) != statement.kind
                for node, statement in zip(tree.body, self.statements)
            ):
                raise RuntimeError(
                    f"the ast analysis of {self.module} does not match its libcst statements"
                )
            self._matched = True
        return tree


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


_ANALYSED: OrderedDict[tuple[str, bool, bytes], ModuleAnalysis] = OrderedDict()
_ANALYSED_LIMIT = 4096
"""Analyses hold no libcst tree when they come from `ast` (small): many are kept."""
_TREES: OrderedDict[bytes, tuple[cst.Module, int]] = OrderedDict()
_TREES_SOURCE_LIMIT = 1_000_000
"""libcst trees take 30 to 80 times the bytes of their source: the most recently used trees are
kept up to this many bytes of source (about 50 MB of trees)."""
_trees_source = 0


def parse_module_cached(data: bytes) -> cst.Module:
    """`cst.parse_module(data)`, remembered by content for the most recently used sources (trees
    are immutable: every user of the same bytes may share one; parse errors propagate)."""
    global _trees_source
    key = hashlib.blake2b(data, digest_size=16).digest()
    known = _TREES.get(key)
    if known is not None:
        _TREES.move_to_end(key)
        return known[0]
    tree = cst.parse_module(data)
    _TREES[key] = (tree, len(data))
    _trees_source += len(data)
    while _trees_source > _TREES_SOURCE_LIMIT and len(_TREES) > 1:
        _trees_source -= _TREES.popitem(last=False)[1][1]
    return tree


def analyse_source(module: str, is_package: bool, data: bytes) -> ModuleAnalysis:
    """`analyse` of a module's bytes, remembered by content.

    Built from `ast` (`_analyse_ast`: the same result, 40 to 50 times faster), libcst parsing
    the module only when a consumer asks for a statement's node or the tree (its parse errors
    surface there); or by libcst's scope analysis, for a module with a construct the ast analysis
    does not mirror or that `ast` cannot parse (libcst parse errors propagate).

    Planning runs again in every round of a run, and verification analyses the same files again.
    Analyses are never modified by their users.
    """
    key = (module, is_package, hashlib.blake2b(data, digest_size=16).digest())
    found = _ANALYSED.get(key)
    if found is not None:
        _ANALYSED.move_to_end(key)
        return found
    try:
        found = _analyse_ast(module, is_package, data)
    except _Unsupported:
        found = analyse(module, is_package, parse_module_cached(data))
        # kept without its tree, which is found again by content (as for an ast analysis)
        found._tree, found._source, found._matched = None, data, True
        for statement in found.statements:
            statement._node, statement._owner = None, found
    _ANALYSED[key] = found
    if len(_ANALYSED) > _ANALYSED_LIMIT:
        _ANALYSED.popitem(last=False)
    return found


def analyse(module: str, is_package: bool, tree: cst.Module) -> ModuleAnalysis:
    """Scope analysis of one module's top level."""
    wrapper = MetadataWrapper(tree, unsafe_skip_copy=True)
    scopes = wrapper.resolve(ScopeProvider)
    parents = wrapper.resolve(ParentNodeProvider)
    result = ModuleAnalysis(module, is_package, tree)
    position_of: dict[int, int] = {}
    for position, top in enumerate(tree.body):
        result.statements.append(Statement(position, _cst_kind(top), _node=top))
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


# ---- the same analysis from the standard library's ast ------------------------------------------
# libcst's ScopeProvider is exact but slow (most of a cold DF008 run). `_AstScopes` replays what its
# ScopeVisitor records (scopes, assignments and accesses, with the per-scope assignment counter that
# orders them) on an `ast` tree, and `_analyse_ast` derives the same `ModuleAnalysis` from them. A
# module with a construct it does not mirror raises `_Unsupported`: `analyse_source` then uses the
# libcst analysis. tests/test_module_analysis.py compares both on fixtures and snippets.


class _Unsupported(Exception):
    """A construct the ast analysis does not mirror: use the libcst analysis."""


class _Assignment:
    __slots__ = ("imported", "index", "name", "node", "position", "scope")

    def __init__(
        self,
        name: str,
        scope: _Scope,
        index: int,
        position: int,
        node: Optional[ast.AST],
        imported: Optional[Union[ast.Import, ast.ImportFrom]],
    ) -> None:
        self.name = name
        self.scope = scope
        self.index = index
        self.position = position
        self.node = node
        self.imported = imported

    def qualified_names(self, full_name: str) -> set[str]:
        """libcst's `get_qualified_names_for` of the assignment."""
        if self.scope.kind == "builtins":
            return {f"builtins.{self.name}"}
        if self.imported is None:
            prefix = self.scope.prefix
            return {f"{prefix}.{full_name}" if prefix else full_name}
        node = self.imported
        module = ""
        if isinstance(node, ast.ImportFrom):
            module = "." * node.level + (node.module or "")
        results: set[str] = set()
        for alias in node.names:
            parts = alias.name.split(".")
            for real in [".".join(parts[:i]) for i in range(len(parts), 0, -1)]:
                as_name = real
                if module and module.endswith("."):
                    real = f"{module}{real}"
                elif module:
                    real = f"{module}.{real}"
                if alias.asname:
                    as_name = alias.asname
                if full_name.startswith(as_name):
                    remaining = full_name.split(as_name, 1)[1]
                    if remaining and not remaining.startswith("."):
                        continue
                    remaining = remaining.lstrip(".")
                    results.add(f"{real}.{remaining}" if remaining else real)
                    break
        return results


class _Scope:
    __slots__ = ("assignments", "count", "kind", "parent", "prefix")

    def __init__(self, kind: str, parent: Optional[_Scope], prefix: str) -> None:
        self.kind = kind  # "builtins", "global", "function", "class", "comprehension"
        self.parent = parent
        self.prefix = prefix
        self.assignments: dict[str, list[_Assignment]] = {}
        self.count = 0

    def visible_parent(self) -> _Scope:
        parent = self.parent
        assert parent is not None
        while parent.kind == "class":  # a class's names are not visible in nested scopes
            assert parent.parent is not None
            parent = parent.parent
        return parent


_BUILTINS_SCOPE = _Scope("builtins", None, "")
_BUILTINS_ONLY = _Scope("global", _BUILTINS_SCOPE, "")
"""An empty module scope: resolving in it finds the builtins only."""


def _join(*parts: Optional[str]) -> str:
    return ".".join(part for part in parts if part)


def _resolve(scope: _Scope, name: str) -> list[_Assignment]:
    """libcst's `_resolve_scope_for_access`: the assignments of the nearest scope binding `name`."""
    current = scope
    while True:
        found = current.assignments.get(name)
        if found:
            return found
        if current.kind == "global":
            if hasattr(builtins, name):
                return [_Assignment(name, _BUILTINS_SCOPE, -1, -1, None, None)]
            return []
        current = current.visible_parent()


def _contains(scope: _Scope, name: str) -> bool:
    current = scope
    while True:
        if current.assignments.get(name):
            return True
        if current.kind == "global":
            return hasattr(builtins, name)
        current = current.visible_parent()


def _full_name(node: ast.AST) -> Optional[str]:
    """libcst's `get_full_name_for_node` on the ast equivalent."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_full_name(node.value)}.{node.attr}"
    if isinstance(node, ast.Call):
        return _full_name(node.func)
    if isinstance(node, ast.Subscript):
        return _full_name(node.value)
    return None


_Access = tuple[_Scope, int, str, Optional[list[str]], bool, int]
"""(scope, assignment count when read, name, dotted names to try first, a plain name (not inside a
parsed string annotation), top-level position)."""

_TYPING = ("typing.", "typing_extensions.")
_TRY: tuple[type[Union[ast.Try, ast.stmt]], ...] = (
    (ast.Try, ast.TryStar) if hasattr(ast, "TryStar") else (ast.Try,)
)
_NO_CHILDREN = (ast.expr_context, ast.operator, ast.boolop, ast.cmpop, ast.unaryop)


class _AstScopes:
    def __init__(self) -> None:
        self.globals = _Scope("global", _BUILTINS_SCOPE, "")
        self.scope = self.globals
        self.position = 0
        self.accesses: list[_Access] = []
        self.attribute: list[Optional[ast.Attribute]] = [None]
        self.annotation = False
        self.type_hint: list[bool] = [False]
        self.ignored = 0  # open Literal[...] subscripts
        self.in_string = 0

    # -- recording
    def assign(
        self,
        name: str,
        node: Optional[ast.AST],
        imported: Optional[Union[ast.Import, ast.ImportFrom]] = None,
    ) -> None:
        scope = self.scope
        scope.assignments.setdefault(name, []).append(
            _Assignment(name, scope, scope.count, self.position, node, imported)
        )

    def access(self, node: ast.Name) -> None:
        dotted_names: Optional[list[str]] = None
        top = self.attribute[-1]
        if top is not None:
            attributes: list[str] = []
            current: ast.expr = top
            while isinstance(current, ast.Attribute):
                attributes.append(current.attr)
                current = current.value
            if current is node:
                attributes.reverse()
                dotted_names = [
                    ".".join([node.id, *attributes[:size]])
                    for size in range(len(attributes), 0, -1)
                ]
        self.accesses.append(
            (
                self.scope,
                self.scope.count,
                node.id,
                dotted_names,
                self.in_string == 0,
                self.position,
            )
        )

    def qualified_names(self, full_name: Optional[str]) -> set[str]:
        prefix = full_name
        assignments: list[_Assignment] = []
        while prefix:
            if _contains(self.scope, prefix):
                assignments = _resolve(self.scope, prefix)
                break
            cut = prefix.rfind(".")
            prefix = None if cut == -1 else prefix[:cut]
        results: set[str] = set()
        assert full_name is not None or not assignments
        for assignment in assignments:
            results |= assignment.qualified_names(full_name or "")
        return results

    # -- statements
    def statements(self, body: list[ast.stmt]) -> None:
        for statement in body:
            self.statement(statement)

    def statement(self, node: ast.stmt) -> None:
        scope = self.scope
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            if getattr(node, "type_params", None):
                raise _Unsupported("type parameters")
            self.assign(node.name, node)
            function = _Scope("function", scope, _join(scope.prefix, node.name, "<locals>"))
            self.scope = function
            self.parameters(node.args)
            self.statements(node.body)
            self.scope = scope
            for decorator in node.decorator_list:
                self.expression(decorator)
            if node.returns is not None:
                self.annotated(node.returns)
            scope.count += 1
        elif isinstance(node, ast.ClassDef):
            if getattr(node, "type_params", None):
                raise _Unsupported("type parameters")
            self.assign(node.name, node)
            for decorator in node.decorator_list:
                self.expression(decorator)
            for base in node.bases:
                self.expression(base)
            for keyword in node.keywords:
                self.expression(keyword.value)
            self.scope = _Scope("class", scope, _join(scope.prefix, node.name))
            self.statements(node.body)
            self.scope = scope
            scope.count += 1
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                self.expression(target)
            self.expression(node.value)
            scope.count += 1
        elif isinstance(node, ast.AnnAssign):
            self.expression(node.target)
            self.annotated(node.annotation)
            if node.value is not None:
                self.expression(node.value)
            scope.count += 1
        elif isinstance(node, ast.AugAssign):
            self.expression(node.target)
            self.expression(node.value)
            scope.count += 1
        elif isinstance(node, ast.Expr):
            self.expression(node.value)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            self.imported(node)
            scope.count += 1
        elif isinstance(node, (ast.For, ast.AsyncFor)):
            self.expression(node.target)
            scope.count += 1
            self.expression(node.iter)
            self.statements(node.body)
            self.statements(node.orelse)
        elif isinstance(node, (ast.If, ast.While)):
            self.expression(node.test)
            self.statements(node.body)
            self.statements(node.orelse)
        elif isinstance(node, (ast.With, ast.AsyncWith)):
            for item in node.items:
                self.expression(item.context_expr)
                if item.optional_vars is not None:
                    self.expression(item.optional_vars)
                    scope.count += 1  # the AsName
                scope.count += 1  # the WithItem
            self.statements(node.body)
        elif isinstance(node, _TRY):
            attempt = cast(ast.Try, node)  # or ast.TryStar, the same fields
            self.statements(attempt.body)
            for handler in attempt.handlers:
                if handler.type is not None:
                    self.expression(handler.type)
                if handler.name is not None:
                    self.assign(handler.name, handler)
                    scope.count += 1  # the AsName
                self.statements(handler.body)
            self.statements(attempt.orelse)
            self.statements(attempt.finalbody)
        elif isinstance(node, ast.Return):
            if node.value is not None:
                self.expression(node.value)
        elif isinstance(node, ast.Delete):
            for target in node.targets:
                self.expression(target)
        elif isinstance(node, ast.Raise):
            if node.exc is not None:
                self.expression(node.exc)
            if node.cause is not None:
                self.expression(node.cause)
        elif isinstance(node, ast.Assert):
            self.expression(node.test)
            if node.msg is not None:
                self.expression(node.msg)
        elif isinstance(node, (ast.Pass, ast.Break, ast.Continue)):
            pass
        else:  # global, nonlocal, match, type aliases
            raise _Unsupported(type(node).__name__)

    def imported(self, node: Union[ast.Import, ast.ImportFrom]) -> None:
        for alias in node.names:
            if alias.name == "*":
                continue  # libcst binds nothing for a star import
            if alias.asname is not None:
                self.assign(alias.asname, None, node)
            elif isinstance(node, ast.Import):
                parts = alias.name.split(".")
                for size in range(len(parts), 0, -1):  # `import a.b` binds "a.b" and "a"
                    self.assign(".".join(parts[:size]), None, node)
            else:
                self.assign(alias.name, None, node)

    def parameters(self, arguments: ast.arguments) -> None:
        """In the new function scope: each parameter, its default and annotation read outside."""
        function = self.scope
        positional = [*arguments.posonlyargs, *arguments.args]
        defaults: list[Optional[ast.expr]] = [None] * (
            len(positional) - len(arguments.defaults)
        ) + list(arguments.defaults)
        pairs: list[tuple[ast.arg, Optional[ast.expr]]] = list(zip(positional, defaults))
        if arguments.vararg is not None:
            pairs.append((arguments.vararg, None))
        pairs.extend(zip(arguments.kwonlyargs, arguments.kw_defaults))
        if arguments.kwarg is not None:
            pairs.append((arguments.kwarg, None))
        for argument, default in pairs:
            self.assign(argument.arg, argument)
            assert function.parent is not None
            self.scope = function.parent
            if default is not None:
                self.expression(default)
            if argument.annotation is not None:
                self.annotated(argument.annotation)
            self.scope = function
        function.count += 1  # the Parameters node

    # -- expressions
    def annotated(self, node: ast.expr) -> None:
        outer = self.annotation
        self.annotation = True
        self.expression(node)
        self.annotation = outer

    def expression(self, node: ast.expr) -> None:
        if isinstance(node, ast.Name):
            if isinstance(node.ctx, ast.Store) and not self.in_string:
                self.assign(node.id, node)
            else:
                self.access(node)
        elif isinstance(node, ast.Attribute):
            attribute = self.attribute
            if attribute[-1] is None:
                attribute[-1] = node
            self.expression(node.value)
            if attribute[-1] is node:
                attribute[-1] = None
        elif isinstance(node, ast.Call):
            self.call(node)
        elif isinstance(node, ast.Constant):
            if isinstance(node.value, (str, bytes)):
                self.string(node.value)
        elif isinstance(node, ast.Subscript):
            self.subscript(node)
        elif isinstance(node, (ast.ListComp, ast.SetComp, ast.GeneratorExp, ast.DictComp)):
            self.comprehension(node)
        elif isinstance(node, ast.Lambda):
            scope = self.scope
            self.scope = _Scope("function", scope, _join(scope.prefix, "<locals>"))
            self.parameters(node.args)
            self.expression(node.body)
            self.scope = scope
        elif isinstance(node, ast.JoinedStr):
            if self._strings_parsed():
                raise _Unsupported("f-string in an annotation")
            for value in node.values:
                self.expression(value)
        elif isinstance(node, ast.NamedExpr):
            raise _Unsupported("assignment expression")
        else:
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.expr):
                    self.expression(child)
                elif not isinstance(child, _NO_CHILDREN):
                    if isinstance(child, ast.keyword):
                        self.expression(child.value)
                    else:
                        raise _Unsupported(type(child).__name__)

    def call(self, node: ast.Call) -> None:
        self.attribute.append(None)
        self.type_hint.append(False)
        names = self.qualified_names(_full_name(node))
        arguments: list[ast.expr] = [*node.args, *(keyword.value for keyword in node.keywords)]
        if node.keywords and any(isinstance(arg, ast.Starred) for arg in node.args):
            pairs: list[tuple[Union[ast.expr, ast.keyword], ast.expr]] = [
                *((arg, arg) for arg in node.args),
                *((keyword, keyword.value) for keyword in node.keywords),
            ]
            pairs.sort(key=lambda pair: (pair[0].lineno, pair[0].col_offset))
            arguments = [value for _, value in pairs]
        if "typing.NewType" in names or "typing.TypeVar" in names:
            self.expression(node.func)
            self.type_hint[-1] = True
            for argument in arguments[1:]:
                self.expression(argument)
        elif "typing.cast" in names:
            self.expression(node.func)
            if arguments:
                self.type_hint.append(True)
                self.expression(arguments[0])
                self.type_hint.pop()
                for argument in arguments[1:]:
                    self.expression(argument)
        else:
            self.expression(node.func)
            for argument in arguments:
                self.expression(argument)
        self.attribute.pop()
        self.type_hint.pop()

    def subscript(self, node: ast.Subscript) -> None:
        hint = literal = False
        if isinstance(node.value, ast.Name):
            names = self.qualified_names(node.value.id)
            hint = any(name.startswith(_TYPING) for name in names)
            literal = "typing.Literal" in names or "typing_extensions.Literal" in names
        self.ignored += literal
        self.type_hint.append(hint)
        self.expression(node.value)
        self.expression(node.slice)
        self.type_hint.pop()
        self.ignored -= literal

    def comprehension(
        self, node: Union[ast.ListComp, ast.SetComp, ast.GeneratorExp, ast.DictComp]
    ) -> None:
        first, *inner = node.generators
        self.expression(first.iter)  # the first iterable is read in the enclosing scope
        scope = self.scope
        comprehension = _Scope("comprehension", scope, _join(scope.prefix, "<comprehension>"))
        self.scope = comprehension
        self.expression(first.target)
        comprehension.count += 1
        for condition in first.ifs:
            self.expression(condition)
        for generator in inner:  # libcst counts each inner `for` only once it is left
            self.expression(generator.target)
            self.expression(generator.iter)
            for condition in generator.ifs:
                self.expression(condition)
        comprehension.count += len(inner)
        if isinstance(node, ast.DictComp):
            self.expression(node.key)
            self.expression(node.value)
        else:
            self.expression(node.elt)
        self.scope = scope

    def _strings_parsed(self) -> bool:
        return (self.type_hint[-1] or self.annotation) and not self.ignored

    def string(self, value: Union[str, bytes]) -> None:
        """libcst parses a string in an annotation or a typing subscript and reads its names."""
        if not value or not self._strings_parsed():
            return
        if not isinstance(value, str):
            raise _Unsupported("bytes in an annotation")
        try:
            parsed = ast.parse(value)
        except (SyntaxError, ValueError):
            try:
                cst.parse_module(value)
            except cst.ParserSyntaxError:
                return  # libcst ignores it too
            except Exception:  # whatever else libcst does, it does it itself
                raise _Unsupported("string annotation") from None
            raise _Unsupported("string annotation") from None
        self.in_string += 1
        for statement in parsed.body:
            if not isinstance(statement, ast.Expr):
                raise _Unsupported("string annotation")
            for inner in ast.walk(statement.value):
                if isinstance(
                    inner,
                    (
                        ast.Lambda,
                        ast.NamedExpr,
                        ast.ListComp,
                        ast.SetComp,
                        ast.GeneratorExp,
                        ast.DictComp,
                        ast.Await,
                        ast.Yield,
                        ast.YieldFrom,
                    ),
                ):
                    raise _Unsupported("string annotation")
            self.expression(statement.value)
        self.in_string -= 1


def _simple_statement_groups(data: bytes, body: list[ast.stmt]) -> list[list[ast.stmt]]:
    """The ast top-level statements grouped as libcst's `Module.body`: statements joined by `;`
    share one line."""
    lines = data.split(b"\n")
    groups: list[list[ast.stmt]] = []
    previous: Optional[ast.stmt] = None
    for statement in body:
        if previous is not None and _is_simple(previous) and _is_simple(statement):
            end_line, end_column = previous.end_lineno, previous.end_col_offset
            assert end_line is not None and end_column is not None
            if end_line == statement.lineno:
                gap = [lines[end_line - 1][end_column : statement.col_offset]]
            else:
                gap = [lines[end_line - 1][end_column:]]
                gap += lines[end_line : statement.lineno - 1]
                gap.append(lines[statement.lineno - 1][: statement.col_offset])
            # one logical line: a `;` between them, and every line break escaped by `\`
            continued = all(b"#" not in part and part.rstrip().endswith(b"\\") for part in gap[:-1])
            if continued and any(b";" in part.split(b"#", 1)[0] for part in gap):
                groups[-1].append(statement)
                previous = statement
                continue
        groups.append([statement])
        previous = statement
    return groups


def _is_simple(node: ast.stmt) -> bool:
    return not isinstance(node, _COMPOUND)


_COMPOUND = (
    ast.FunctionDef,
    ast.AsyncFunctionDef,
    ast.ClassDef,
    ast.If,
    ast.For,
    ast.AsyncFor,
    ast.While,
    ast.Try,
    ast.With,
    ast.AsyncWith,
    *((ast.TryStar,) if hasattr(ast, "TryStar") else ()),
    *((ast.Match,) if hasattr(ast, "Match") else ()),
)


def _ast_kind(group: list[ast.stmt]) -> str:
    if len(group) > 1:
        return "line"
    node = group[0]
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        return "def"
    if isinstance(node, ast.ClassDef):
        return "class"
    if isinstance(node, (ast.Assign, ast.AnnAssign)):
        return "assign"
    return "block" if isinstance(node, _COMPOUND) else "line"


def _ast_direct_targets(group: list[ast.stmt]) -> list[ast.AST]:
    """The Name nodes a plain top-level assignment binds directly (`_direct_targets`)."""
    if len(group) != 1:
        return []
    node = group[0]
    targets: list[ast.expr] = []
    if isinstance(node, ast.Assign):
        targets = list(node.targets)
    elif isinstance(node, ast.AnnAssign) and node.value is not None:
        targets = [node.target]
    found: list[ast.AST] = []
    for target in targets:
        if isinstance(target, ast.Name):
            found.append(target)
        elif isinstance(target, (ast.Tuple, ast.List)):
            for element in target.elts:
                if isinstance(element, ast.Starred):
                    element = element.value
                if isinstance(element, ast.Name):
                    found.append(element)
    return found


def _ast_type_checking_block(group: list[ast.stmt]) -> bool:
    node = group[0]
    if len(group) != 1 or not isinstance(node, ast.If) or node.orelse:
        return False
    test = ast_dotted(node.test)
    return test is not None and test.split(".")[-1] == "TYPE_CHECKING"


def _ast_import_binding(
    name: str,
    node: Union[ast.Import, ast.ImportFrom],
    position: int,
    module: str,
    is_package: bool,
) -> Optional[ImportBinding]:
    if isinstance(node, ast.Import):
        for alias in node.names:
            if alias.asname is not None:
                if alias.asname == name:
                    return ImportBinding(name, alias.name, None, position, False)
            elif alias.name.split(".")[0] == name:
                return ImportBinding(name, alias.name, None, position, False)
        return None
    absolute = resolve_relative(module, is_package, node.level, node.module)
    for alias in node.names:
        if (alias.asname or alias.name) == name:
            return ImportBinding(name, absolute, alias.name, position, bool(node.level))
    return None


def _scope_is_definition_time_ast(scope: _Scope) -> bool:
    current: Optional[_Scope] = scope
    while current is not None and current.kind != "global":
        if current.kind == "function":
            return False
        current = current.parent
    return True


_CODING = re.compile(rb"^[ \t\f]*#.*?coding[:=][ \t]*([-\w.]+)", re.MULTILINE)


def _analyse_ast(module: str, is_package: bool, data: bytes) -> ModuleAnalysis:
    """`analyse` from the standard library's ast; raises `_Unsupported` where it does not mirror
    libcst's scope analysis (and SyntaxError where ast cannot parse the module)."""
    if data.startswith(b"\xef\xbb\xbf") or b"\r" in data.replace(b"\r\n", b""):
        raise _Unsupported("byte order mark or old Mac line ends")
    cookie = _CODING.search(b"\n".join(data.split(b"\n", 2)[:2]))
    if cookie is not None and cookie.group(1).lower().replace(b"_", b"-") not in (
        b"utf-8",
        b"utf8",
    ):
        raise _Unsupported("not UTF-8")  # ast's columns would not be offsets in these bytes
    try:
        data.decode("utf-8")
        tree = ast.parse(data)
    except (SyntaxError, ValueError, UnicodeDecodeError):
        raise _Unsupported("not parsed by ast") from None
    groups = _simple_statement_groups(data, tree.body)
    scopes = _AstScopes()
    for position, group in enumerate(groups):
        scopes.position = position
        scopes.statements(group)
    result = ModuleAnalysis(module, is_package, None, _source=data)
    for position, group in enumerate(groups):
        result.statements.append(Statement(position, _ast_kind(group), _owner=result))
    direct_targets = {id(target) for group in groups for target in _ast_direct_targets(group)}
    for name, assignments in scopes.globals.assignments.items():
        for assignment in assignments:
            position = assignment.position
            statement = result.statements[position]
            group = groups[position]
            if assignment.imported is not None:
                binding = _ast_import_binding(
                    name, assignment.imported, position, module, is_package
                )
                previous = result.imports.get(name)
                if binding is not None and previous is None:
                    result.imports[name] = binding
                elif binding is not None and previous != binding:
                    result.mutated.add(name)
                if _ast_type_checking_block(group):
                    result.type_checking.add(name)
                elif statement.kind == "block":
                    result.conditional.add(name)
                continue
            direct = (len(group) == 1 and assignment.node is group[0]) or id(
                assignment.node
            ) in direct_targets
            if direct and statement.movable:
                result.definitions.setdefault(name, []).append(position)
                statement.defines.add(name)
            elif statement.kind != "block":
                result.mutated.add(name)
            else:
                result.conditional.add(name)
    resolved: dict[tuple[int, str], list[_Assignment]] = {}
    for scope, index, name, dotted_names, plain, position in scopes.accesses:
        accessed: Optional[str] = name if plain else None
        if dotted_names:
            for dotted_name in dotted_names:
                if _contains(scope, dotted_name):
                    name = dotted_name
                    accessed = None
                    break
        key = (id(scope), name)
        found = resolved.get(key)
        if found is None:
            found = resolved[key] = _resolve(scope, name)
        assignments = found
        referents = [a for a in assignments if a.scope is not scope or a.index < index]
        if not referents and assignments:
            # libcst then takes what the parent scope binds (the builtins for the module)
            parent = scope.parent
            assert parent is not None
            if parent.kind == "builtins":
                referents = _resolve(_BUILTINS_ONLY, name)
            else:
                referents = _resolve(parent, name)
        statement = result.statements[position]
        if accessed in MODULE_DUNDERS:
            statement.dunders.add(accessed)
        if not referents:
            if accessed is not None and accessed not in BUILTIN_NAMES:
                result.unresolved.add(accessed)
            continue
        if any(referent.scope is scopes.globals for referent in referents):
            result.used_by.setdefault(name, set()).add(position)
            if _scope_is_definition_time_ast(scope):
                statement.definition_uses.add(name)
            else:
                statement.body_uses.add(name)
    return result
