"""The order Python runs a module's top level in, and the import cycles that really fail.

An import cycle is harmless unless some module, while another one is still running, takes a name
from it that it has not bound yet: `from x import name`, or `x.name` read at import time (a
decorator, a default, a class body, a module-level statement). Which of those happens depends on the
module imported first. So each file's facts hold the steps its top level takes, in order (`steps`),
and `cycle_verdicts` runs them the way the import system does, once for every member of every import
cycle as the first module imported, to tell the cycles that fail from the ones that cannot.

What the steps follow: imports at the top level, in `if`/`try`/`with`/loops and class bodies
(both branches of an `if` may run, except under `if TYPE_CHECKING:`, `if __name__ == "__main__":`
and a constant test); function bodies do not run. `import a.b` runs `a`, then `a.b`, and binds `a`; `from p import s`
imports the submodule `p.s` when `p` has no attribute `s` yet; a submodule becomes an attribute of
its package when it has finished running. A failure inside a `try` whose handler catches it
(`except ImportError` for a from-import, `except AttributeError` for an attribute) is not one.
Annotations count as evaluated unless the module has `from __future__ import annotations` (as
Python does before 3.14). What it cannot see (a name bound through `globals()` or only by a star
import, a module-level `__getattr__`, code a decorator or a called function runs) never makes a
failure: it answers "cannot tell", which is "does not fail".
"""

from __future__ import annotations

import ast
import dataclasses
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Optional, cast

if TYPE_CHECKING:
    from depfix.facts import FileFacts
    from depfix.index import ProjectIndex

IMPORT = "import"
"""`import module` (binds the top package) or `import module as name` (binds the module)."""
FROM = "from"
"""`from module import names`: `bound` holds the local names, `names` what they take."""
STAR = "star"
BIND = "bind"
"""Top-level names bound by a definition, an assignment, a loop, a `with`."""
READ = "read"
"""`local.attr.attr` read while the module runs, `local` bound by an import."""

IMPORT_ERRORS = frozenset({"ImportError", "Exception", "BaseException", "*"})
ATTRIBUTE_ERRORS = frozenset({"AttributeError", "Exception", "BaseException", "*"})


@dataclass(frozen=True)
class Step:
    """One thing a module's top level does when it runs."""

    kind: str
    line: int
    module: str = ""
    """IMPORT, FROM, STAR: the absolute module imported; READ: the local name read."""
    names: tuple[str, ...] = ()
    """FROM: the names taken; BIND: the names bound; READ: the attributes read, in order."""
    bound: tuple[str, ...] = ()
    """FROM: the local name of each taken name; IMPORT: `(name,)` for `import module as name`."""
    caught: tuple[str, ...] = ()
    """The exceptions an enclosing `try` catches ("*" for a bare `except:`)."""


# ---- the steps of one module ---------------------------------------------------------------------
def top_level_steps(
    tree: ast.Module,
    resolve: Callable[[int, Optional[str]], str],
    type_alias_lines: frozenset[int] = frozenset(),
) -> tuple[Step, ...]:
    """The steps a module's top level takes, in order; `resolve(level, module)` makes a
    from-import's module absolute. `type_alias_lines`: where `depfix.lowering` wrote a
    `type X = V` statement as `(X)= -V` (read as the statement: V is evaluated lazily)."""
    walker = _Walker(resolve)
    walker.type_alias_lines = type_alias_lines
    walker.future_annotations = any(
        isinstance(node, ast.ImportFrom)
        and node.module == "__future__"
        and any(alias.name == "annotations" for alias in node.names)
        for node in tree.body
    )
    walker.block(tree.body)
    return tuple(walker.steps)


class _Walker:
    def __init__(self, resolve: Callable[[int, Optional[str]], str]) -> None:
        self.resolve = resolve
        self.steps: list[Step] = []
        self.caught: tuple[str, ...] = ()
        self.in_class = 0
        self.future_annotations = False
        self.type_alias_lines: frozenset[int] = frozenset()
        self.imported: set[str] = set()
        """Module-level names bound by an import so far: the ones whose attributes are read."""

    # -- statements
    def block(self, body: Iterable[ast.stmt]) -> None:
        for statement in body:
            self.statement(statement)

    def statement(self, node: ast.stmt) -> None:
        if isinstance(node, ast.Import):
            for alias in node.names:
                bound: tuple[str, ...] = (alias.asname,) if alias.asname else ()
                if self.in_class:  # bound in the class, not the module: "" binds nothing
                    bound = ("",)
                self.steps.append(Step(IMPORT, node.lineno, alias.name, (), bound, self.caught))
                self.bind_import(alias.asname or alias.name.split(".")[0])
        elif isinstance(node, ast.ImportFrom):
            module = self.resolve(node.level, node.module)
            if module == "__future__":
                return
            if any(alias.name == "*" for alias in node.names):
                self.steps.append(Step(STAR, node.lineno, module, (), (), self.caught))
                return
            names = tuple(alias.name for alias in node.names)
            bound = tuple(
                "" if self.in_class else alias.asname or alias.name for alias in node.names
            )
            self.steps.append(Step(FROM, node.lineno, module, names, bound, self.caught))
            for name in bound:
                self.bind_import(name)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            self.expressions(node.lineno, node.decorator_list)
            arguments = node.args
            self.expressions(node.lineno, [*arguments.defaults, *arguments.kw_defaults])
            if not self.future_annotations:
                every = [
                    *arguments.posonlyargs,
                    *arguments.args,
                    *arguments.kwonlyargs,
                    *filter(None, (arguments.vararg, arguments.kwarg)),
                ]
                self.expressions(node.lineno, [arg.annotation for arg in every])
                self.expressions(node.lineno, [node.returns])
            self.bind(node.lineno, [node.name])
        elif isinstance(node, ast.ClassDef):
            self.expressions(node.lineno, [*node.decorator_list, *node.bases])
            self.expressions(node.lineno, [keyword.value for keyword in node.keywords])
            self.in_class += 1
            self.block(node.body)
            self.in_class -= 1
            self.bind(node.lineno, [node.name])
        elif isinstance(node, ast.If):
            self.expressions(node.lineno, [node.test])
            skipped = _skipped_branch(node.test)
            if skipped != "body":
                self.block(node.body)
            if skipped != "orelse":
                self.block(node.orelse)
        elif isinstance(node, _TRY_TYPES):
            self.try_statement(cast(ast.Try, node))
        elif isinstance(node, (ast.For, ast.AsyncFor)):
            self.expressions(node.lineno, [node.iter])
            self.targets(node.lineno, [node.target])
            self.block(node.body)
            self.block(node.orelse)
        elif isinstance(node, ast.While):
            self.expressions(node.lineno, [node.test])
            self.block(node.body)
            self.block(node.orelse)
        elif isinstance(node, (ast.With, ast.AsyncWith)):
            self.expressions(node.lineno, [item.context_expr for item in node.items])
            self.targets(node.lineno, [item.optional_vars for item in node.items])
            self.block(node.body)
        elif (
            isinstance(node, ast.Assign)
            and node.lineno in self.type_alias_lines
            and len(node.targets) == 1
            and isinstance(node.targets[0], ast.Name)
        ):  # a lowered `type X = V`, as below
            self.bind(node.lineno, [node.targets[0].id])
        elif isinstance(node, ast.Assign):
            self.expressions(node.lineno, [node.value])
            self.targets(node.lineno, node.targets)
        elif isinstance(node, ast.AnnAssign):
            evaluated = [] if self.future_annotations else [node.annotation]
            self.expressions(node.lineno, [node.value, *evaluated])
            if node.value is not None:
                self.targets(node.lineno, [node.target])
        elif isinstance(node, ast.AugAssign):
            self.expressions(node.lineno, [node.value])
            self.targets(node.lineno, [node.target])
        elif _MATCH is not None and isinstance(node, _MATCH):
            self.expressions(node.lineno, [node.subject])  # type: ignore[attr-defined]
            for case in node.cases:  # type: ignore[attr-defined]
                captured = [
                    name
                    for child in ast.walk(case.pattern)
                    for name in (getattr(child, "name", None), getattr(child, "rest", None))
                    if isinstance(name, str)
                ]
                self.bind(node.lineno, captured)
                self.expressions(node.lineno, [case.guard])
                self.block(case.body)
        elif isinstance(node, (ast.Expr, ast.Return, ast.Raise, ast.Assert, ast.Delete)):
            self.expressions(node.lineno, [child for child in ast.iter_child_nodes(node)])
        elif type(node).__name__ == "TypeAlias":  # `type X = ...`: its value is evaluated lazily
            self.bind(node.lineno, [getattr(getattr(node, "name", None), "id", "")])
        else:  # pass, global, a statement of a newer Python: what it reads is left unknown
            pass

    def try_statement(self, node: ast.Try) -> None:
        outer = self.caught
        caught: set[str] = set(outer)
        for handler in node.handlers:
            caught.update(_exception_names(handler.type))
        self.caught = tuple(sorted(caught))
        self.block(node.body)
        self.caught = outer
        for handler in node.handlers:
            if handler.name:
                self.bind(handler.lineno, [handler.name])
            self.block(handler.body)
        self.block(node.orelse)
        self.block(node.finalbody)

    # -- bindings
    def bind_import(self, name: str) -> None:
        if not self.in_class:
            self.imported.add(name)

    def bind(self, line: int, names: list[str]) -> None:
        if self.in_class or not names:
            return
        self.imported.difference_update(names)
        self.steps.append(Step(BIND, line, names=tuple(names), caught=self.caught))

    def targets(self, line: int, targets: Sequence[Optional[ast.expr]]) -> None:
        names: list[str] = []
        for target in targets:
            if target is None:
                continue
            if isinstance(target, ast.Name):
                names.append(target.id)
            elif isinstance(target, (ast.Tuple, ast.List)):
                self.targets(line, list(target.elts))
            elif isinstance(target, ast.Starred):
                self.targets(line, [target.value])
            else:  # `x.attr = ...`, `x[key] = ...`: reads x
                self.expressions(line, [target])
        self.bind(line, names)

    # -- expressions evaluated while the module runs
    def expressions(self, line: int, nodes: Iterable[Optional[ast.AST]]) -> None:
        seen: set[tuple[str, tuple[str, ...]]] = set()
        walrus: list[str] = []
        for node in nodes:
            if node is not None:
                for local, chain, at in _reads(node, self.imported, walrus):
                    if (local, chain) not in seen:
                        seen.add((local, chain))
                        self.steps.append(Step(READ, at or line, local, chain, (), self.caught))
        self.bind(line, walrus)


_TRY_TYPES: tuple[type[ast.stmt], ...]
if sys.version_info >= (3, 11):
    _TRY_TYPES = (ast.Try, ast.TryStar)
else:  # pragma: no cover
    _TRY_TYPES = (ast.Try,)
_MATCH: Optional[type[ast.stmt]] = getattr(ast, "Match", None)


def _reads(
    node: ast.AST, imported: set[str], walrus: list[str]
) -> Iterator[tuple[str, tuple[str, ...], int]]:
    """The `local.attr...` chains an expression reads when it is evaluated (lambda bodies and
    generator expressions past their first iterable run later)."""
    stack: list[ast.AST] = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, ast.Attribute):
            chain: list[str] = []
            base: ast.expr = current
            while isinstance(base, ast.Attribute):
                chain.append(base.attr)
                base = base.value
            if isinstance(base, ast.Name):
                if base.id in imported:
                    yield base.id, tuple(reversed(chain)), current.lineno
                continue
            stack.append(base)
            continue
        if isinstance(current, ast.Lambda):
            stack.extend(current.args.defaults)
            stack.extend(filter(None, current.args.kw_defaults))
            continue
        if isinstance(current, ast.GeneratorExp):
            stack.append(current.generators[0].iter)
            continue
        if isinstance(current, ast.NamedExpr) and isinstance(current.target, ast.Name):
            walrus.append(current.target.id)
        stack.extend(reversed(list(ast.iter_child_nodes(current))))


def _skipped_branch(test: ast.expr) -> Optional[str]:
    """The branch that does not run on import: "body" for `if TYPE_CHECKING:`,
    `if __name__ == "__main__":` and `if False:`, "orelse" for `if not TYPE_CHECKING:` and
    `if True:`, else None (either may run)."""
    if isinstance(test, ast.Constant):  # `if False:`, `if 1:`
        return "orelse" if test.value else "body"
    negated = isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not)
    inner = test.operand if isinstance(test, ast.UnaryOp) and negated else test
    name = inner.id if isinstance(inner, ast.Name) else getattr(inner, "attr", None)
    if name == "TYPE_CHECKING":
        return "orelse" if negated else "body"
    if (
        isinstance(test, ast.Compare)
        and len(test.ops) == 1
        and isinstance(test.ops[0], ast.Eq)
        and {_constant(test.left), _constant(test.comparators[0])} == {"__name__", "'__main__'"}
    ):
        return "body"
    return None


def _constant(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return repr(node.value)
    return ""


def _exception_names(node: Optional[ast.expr]) -> list[str]:
    if node is None:
        return ["*"]
    if isinstance(node, ast.Tuple):
        return [name for element in node.elts for name in _exception_names(element)]
    if isinstance(node, ast.Name):
        return [node.id]
    if isinstance(node, ast.Attribute):
        return [node.attr]
    return []


# ---- running the steps ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Failure:
    """How importing one module first fails: a step that takes a name not bound yet."""

    entry: str
    path: str
    """The file whose step fails."""
    line: int
    statement: str
    """What the step runs, as source: `from app.users import find`, `users.find`."""
    partial: str
    """The module still running."""
    partial_path: str
    stopped_at: int
    """The line of `partial` that is still running (the import that led here)."""
    name: str
    bound_at: Optional[int]
    """The line of `partial` that binds `name`; None for a submodule that has not finished."""
    chain: tuple[str, ...] = ()
    """The modules of the cycle that failed, sorted: the unfinished one, the one it was importing
    when it stopped, and so on up to the one whose step fails."""

    @property
    def unfinished(self) -> str:
        """The module that had not finished running: `partial`, or its submodule `name`."""
        return self.partial if self.bound_at is not None else f"{self.partial}.{self.name}"

    def describe(self) -> str:
        verb = "runs" if self.statement.startswith("from ") else "reads"
        where = f"{self.path}:{self.line} {verb} `{self.statement}`"
        if self.bound_at is None:
            return (
                f"importing {self.entry} first fails: {where} before {self.partial}.{self.name} "
                f"has finished running"
            )
        running = (
            f"importing {self.entry} first fails: {where} while {self.partial} is still running"
        )
        if self.bound_at == self.stopped_at:  # a re-export: `from .auth import get_user`
            return f"{running} its line {self.stopped_at}, which binds {self.name} once it finishes"
        return f"{running} its line {self.stopped_at}, before its line {self.bound_at} binds {self.name}"


@dataclass(frozen=True)
class CycleVerdict:
    """An import cycle (a strongly connected component of the eager import graph) and, for each
    member that fails when imported first, how."""

    members: tuple[str, ...]
    failures: tuple[Failure, ...]
    takes_names: bool
    """Whether some member takes a name from another while running (the cycles that look risky)."""

    @property
    def fails(self) -> bool:
        return bool(self.failures)

    @property
    def failing(self) -> tuple[str, ...]:
        """The members on the cycles that fail (a cycle through a package's `__init__` can hold
        many more modules than the few whose imports fail), sorted."""
        return tuple(sorted({module for failure in self.failures for module in failure.chain}))


class _Failed(Exception):
    def __init__(self, failure: Failure, caught_by: frozenset[str]) -> None:
        super().__init__(failure.describe())
        self.failure = failure
        self.caught_by = caught_by
        """The handlers that catch it: IMPORT_ERRORS or ATTRIBUTE_ERRORS."""


@dataclass
class _Running:
    """A module in the simulated `sys.modules`."""

    name: str
    facts: Optional[FileFacts]
    namespace: dict[str, Optional[str]] = field(default_factory=dict)
    """Bound names; the value is the project module a name refers to, or None."""
    done: bool = False
    line: int = 0


class _Simulation:
    """`import entry` in a fresh interpreter.

    It runs the steps of the cycle's members and of the modules that may import one of them (the
    packages around the entry run first and may enter the cycle elsewhere); every other module is
    taken as already run: a module the cycle imports and that cannot import a member back never
    sees a member half-run.
    """

    def __init__(
        self,
        index: ProjectIndex,
        members: frozenset[str],
        simulated: frozenset[str],
        entry: str,
    ) -> None:
        self.index = index
        self.members = members
        self.simulated = simulated
        self.entry = entry
        self.modules: dict[str, _Running] = {}
        self.stack: list[_Running] = []
        """The modules running, outermost first."""
        self.asked: Optional[dict[str, Optional[FileFacts]]] = None
        """When set: each module name looked up in the index, first asked first, with its facts."""

    def run(self) -> Optional[Failure]:
        try:
            self.load(self.entry)
        except _Failed as failed:
            return failed.failure
        return None

    def facts(self, name: str) -> Optional[FileFacts]:
        found = self.index.modules.get(name)
        if self.asked is not None and name not in self.asked:
            self.asked[name] = found
        return found

    def load(self, name: str) -> None:
        """`import name`: each package on the way, then the module."""
        parts = name.split(".")
        for cut in range(1, len(parts) + 1):
            self.start(".".join(parts[:cut]))

    def start(self, name: str) -> None:
        if name in self.modules:
            return
        facts = self.facts(name)
        running = _Running(name, facts)
        self.modules[name] = running
        if facts is not None and facts.module in self.simulated:
            self.stack.append(running)
            for step in facts.steps:
                running.line = step.line
                self.step(running, step)
            self.stack.pop()
        elif facts is not None:
            running.namespace.update((bound, None) for bound in bound_lines(facts))
        running.done = True
        parent, _, last = name.rpartition(".")
        if parent in self.modules and facts is not None:
            self.modules[parent].namespace[last] = name

    def reference(self, name: str) -> Optional[str]:
        """The module a name refers to once imported, when it is a project module."""
        return name if name in self.modules and self.modules[name].facts is not None else None

    def step(self, running: _Running, step: Step) -> None:
        if step.kind in (IMPORT, FROM, STAR):
            try:
                self.import_step(running, step)
            except _Failed as failed:  # raised by a module this import runs
                if not failed.caught_by.intersection(step.caught):
                    raise
                # the modules that did not finish are dropped from sys.modules, as Python does
                position = next(i for i, item in enumerate(self.stack) if item is running)
                for unfinished in self.stack[position + 1 :]:
                    self.modules.pop(unfinished.name, None)
                del self.stack[position + 1 :]
        elif step.kind == BIND:
            for name in step.names:
                running.namespace[name] = None
        elif step.kind == READ:
            self.read(running, step)

    def import_step(self, running: _Running, step: Step) -> None:
        namespace = running.namespace
        if step.kind == IMPORT:
            self.load(step.module)
            if step.bound:
                namespace[step.bound[0]] = self.reference(step.module)
            else:
                top = step.module.split(".")[0]
                namespace[top] = self.reference(top)
        elif step.kind == FROM:
            self.take(running, step)
        elif step.kind == STAR:
            self.load(step.module)
            source = self.modules[step.module]
            namespace.update(
                (name, value) for name, value in source.namespace.items() if name[:1] != "_"
            )

    def take(self, running: _Running, step: Step) -> None:
        self.load(step.module)
        source = self.modules[step.module]
        facts = source.facts
        if facts is None:
            running.namespace.update((bound, None) for bound in step.bound)
            return
        if facts.is_package:  # `_handle_fromlist`: names the package lacks are tried as submodules
            for name in step.names:
                submodule = f"{step.module}.{name}"
                if name not in source.namespace and self.facts(submodule) is not None:
                    self.load(submodule)
        for name, bound in zip(step.names, step.bound):
            if name in source.namespace:
                running.namespace[bound] = source.namespace[name]
                continue
            submodule = f"{step.module}.{name}"
            if submodule in self.modules:  # IMPORT_FROM falls back to sys.modules
                running.namespace[bound] = self.reference(submodule)
                continue
            line = bound_lines(facts).get(name)
            if (
                not source.done
                and line is not None
                and facts.module in self.members
                and "__getattr__" not in source.namespace
                and not IMPORT_ERRORS.intersection(step.caught)
            ):
                statement = f"from {step.module} import {name}"
                failure = self.failure(running, step, statement, source, name, line)
                raise _Failed(failure, IMPORT_ERRORS)
            running.namespace[bound] = None

    def read(self, running: _Running, step: Step) -> None:
        current = running.namespace.get(step.module)
        for position, attribute in enumerate(step.names):
            source = self.modules.get(current) if current is not None else None
            if source is None:  # not a module, or one that failed and was dropped
                return
            if attribute in source.namespace:
                current = source.namespace[attribute]
                continue
            if ATTRIBUTE_ERRORS.intersection(step.caught) or "__getattr__" in source.namespace:
                return
            text = ".".join((step.module, *step.names[: position + 1]))
            submodule = f"{current}.{attribute}"
            partial = self.modules.get(submodule)
            if partial is not None and not partial.done:
                if partial.facts is None or partial.facts.module not in self.members:
                    return
                raise _Failed(
                    self.failure(running, step, text, partial, "", None), ATTRIBUTE_ERRORS
                )
            line = bound_lines(source.facts).get(attribute) if source.facts else None
            if source.done or line is None or source.facts is None:
                return
            if source.facts.module not in self.members:
                return
            raise _Failed(
                self.failure(running, step, text, source, attribute, line), ATTRIBUTE_ERRORS
            )

    def failure(
        self,
        running: _Running,
        step: Step,
        statement: str,
        partial: _Running,
        name: str,
        bound_at: Optional[int],
    ) -> Failure:
        assert running.facts is not None and partial.facts is not None
        # the cycle that failed: the unfinished module, what it is importing, ..., the failing one
        start = next((i for i, item in enumerate(self.stack) if item is partial), 0)
        chain = tuple(sorted({item.facts.module for item in self.stack[start:] if item.facts}))
        if bound_at is None:  # a submodule not finished: name it as an attribute of its package
            parent, _, name = partial.name.rpartition(".")
            partial = self.modules.get(parent, partial)
        return Failure(
            self.entry,
            running.facts.path,
            step.line,
            statement,
            partial.name,
            partial.facts.path if partial.facts else "",
            partial.line,
            name,
            bound_at,
            chain,
        )


_BOUND: dict[int, tuple[FileFacts, dict[str, int]]] = {}


def bound_lines(facts: FileFacts) -> dict[str, int]:
    """Each name a module's top level binds, with the first line that binds it."""
    known = _BOUND.get(id(facts))
    if known is not None and known[0] is facts:
        return known[1]
    lines: dict[str, int] = {}
    for step in facts.steps:
        if step.kind == BIND:
            names: tuple[str, ...] = step.names
        elif step.kind == FROM:
            names = step.bound
        elif step.kind == IMPORT:
            names = step.bound or (step.module.split(".")[0],)
        else:
            continue
        for name in names:
            if name:
                lines.setdefault(name, step.line)
    if len(_BOUND) > 100_000:
        _BOUND.clear()
    _BOUND[id(facts)] = (facts, lines)
    return lines


def _takes_names(index: ProjectIndex, members: frozenset[str]) -> bool:
    """Whether a member takes a name off another member while it runs: the only way a cycle can
    fail (importing a module, or a submodule through its package, never does)."""
    for module in members:
        facts = index.modules.get(module)
        if facts is None:
            continue
        modules: set[str] = set()  # local names bound to a module object
        for step in facts.steps:
            if step.kind == FROM:
                target = index.modules.get(step.module)
                inside = target is not None and target.module in members
                for name, bound in zip(step.names, step.bound):
                    if index.modules.get(f"{step.module}.{name}") is not None:
                        modules.add(bound)
                    elif inside:
                        return True
            elif step.kind == IMPORT:
                modules.add(step.bound[0] if step.bound else step.module.split(".")[0])
            elif step.kind == READ and step.module in modules:
                return True
    return False


def _upstream(importers: dict[str, set[str]], members: frozenset[str]) -> frozenset[str]:
    """The members and every module that may import one of them, directly or not."""
    found = set(members)
    stack = list(members)
    while stack:
        for importer in importers.get(stack.pop(), ()):
            if importer not in found:
                found.add(importer)
                stack.append(importer)
    return frozenset(found)


_FAILURES: dict[
    tuple[frozenset[str], frozenset[str]],
    tuple[tuple[tuple[str, Optional[FileFacts]], ...], list[Failure]],
] = {}
_FAILURES_LIMIT = 4096


def _first_import_failures(
    index: ProjectIndex, members: frozenset[str], simulated: frozenset[str]
) -> list[Failure]:
    """`_simulated_failures`, remembered: the simulations depend only on the facts of the modules
    they look up, so an index holding the same facts for each of them (planning verifies each
    fix on an index where only the edited files differ) gets the same answer. The look-ups are
    made again, in the same order, as the simulations would (a lazy index loads modules on them).
    """
    key = (members, simulated)
    known = _FAILURES.get(key)
    if known is not None:
        asked, failures = known
        if all(index.modules.get(name) is facts for name, facts in asked):
            return failures
    recorded: dict[str, Optional[FileFacts]] = {}
    failures = _simulated_failures(index, members, simulated, recorded)
    if len(_FAILURES) >= _FAILURES_LIMIT:
        _FAILURES.clear()
    _FAILURES[key] = (tuple(recorded.items()), failures)
    return failures


def _simulated_failures(
    index: ProjectIndex,
    members: frozenset[str],
    simulated: frozenset[str],
    asked: Optional[dict[str, Optional[FileFacts]]] = None,
) -> list[Failure]:
    """How importing each member first fails, for the members that fail.

    `import a.b.c` runs `a` first: when `a` is the first package on the way whose steps run (a
    member, or a module that may import one), importing `a.b.c` first runs exactly as importing
    `a` first does, whenever that has run `a.b.c` too (a package's `__init__` that imports its
    modules) or failed. So `import a` runs once for all of them.
    """
    runs: dict[str, tuple[Optional[Failure], frozenset[str]]] = {}

    def run(name: str) -> tuple[Optional[Failure], frozenset[str]]:
        known = runs.get(name)
        if known is None:
            parts = name.split(".")
            for cut in range(1, len(parts)):
                ancestor = ".".join(parts[:cut])
                if ancestor in simulated:
                    failure, loaded = run(ancestor)
                    if failure is not None or name in loaded:
                        known = failure, loaded
                    break
            if known is None:
                simulation = _Simulation(index, members, simulated, name)
                simulation.asked = asked
                known = simulation.run(), frozenset(simulation.modules)
            runs[name] = known
        return known

    failures = []
    for entry in sorted(members):
        failure = run(entry)[0]
        if failure is not None:
            failures.append(dataclasses.replace(failure, entry=entry))
    return failures


def cycle_verdicts(index: ProjectIndex) -> list[CycleVerdict]:
    """Every import cycle among the modules the index holds, with how it fails, sorted.

    A cycle fails when some member, imported first in a fresh interpreter, makes a step take a
    name not bound yet. Modules outside a cycle cannot change that: whatever imports the cycle
    first enters it through one member, and the cycle runs the same from there.
    """
    cached = index.memo.get("import_order:verdicts")
    if isinstance(cached, list):
        return cached
    from depfix.index import strongly_connected

    graph = index.import_graph()
    importers: dict[str, set[str]] = {}
    for module, imported in graph.items():
        for target in imported:
            importers.setdefault(target, set()).add(module)
    verdicts = []
    for component in strongly_connected(graph):
        if len(component) < 2:
            continue
        members = frozenset(component)
        takes = _takes_names(index, members)
        failures: list[Failure] = []
        if takes:
            failures = _first_import_failures(index, members, _upstream(importers, members))
        verdicts.append(CycleVerdict(tuple(sorted(members)), tuple(failures), takes))
    verdicts.sort(key=lambda verdict: verdict.members)
    index.memo["import_order:verdicts"] = verdicts
    return verdicts


def failing_cycles(index: ProjectIndex) -> list[CycleVerdict]:
    """The import cycles in which some first import fails."""
    return [verdict for verdict in cycle_verdicts(index) if verdict.fails]


def first_import_failure(index: ProjectIndex, module: str) -> Optional[Failure]:
    """How `import module` fails in a fresh interpreter, running every project module's steps
    (slower than `cycle_verdicts`, which runs only a cycle's: for tests and explanations)."""
    everything = frozenset(facts.module for facts in index.files.values())
    return _Simulation(index, everything, everything, module).run()
