"""What a rule is, and the registry rules add themselves to.

A file rule is a libcst batchable visitor: the engine parses a file once and runs every selected rule
in one traversal (as Fixit does). A rule reports findings with `report()`, optionally with a replacement
node and the safety of that fix. A project rule sees the whole index and returns changesets that edit
several files or create new ones. The engine knows no rule by name; rules know nothing of the CLI.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import ClassVar, Optional

import libcst as cst
from libcst.metadata import PositionProvider, ProviderT

from depfix.codegen import code_for_node
from depfix.config import Settings
from depfix.facts import FileFacts
from depfix.imports import dotted
from depfix.index import ProjectIndex, Resolved, Unresolved

SAFE = "safe"
UNSAFE = "unsafe"
_EMPTY_MODULE = cst.Module(body=[])


def source_of(node: cst.CSTNode) -> str:
    """The code of a node as it is written (comments and layout included)."""
    return code_for_node(_EMPTY_MODULE, node)


def has_comment(node: cst.CSTNode) -> bool:
    """Whether a node's code holds a comment (which moving or dropping it would lose)."""
    return "#" in source_of(node)


@dataclass(frozen=True)
class Span:
    line: int
    column: int
    end_line: int
    end_column: int


@dataclass(frozen=True)
class Finding:
    """One reported problem.

    With a fix, `replacement` takes the place of `target` (the reported node itself unless the rule
    rewrites a larger one, such as a whole signature) and `imports` lists the `from module import
    name` statements the fix needs. Findings that share the same target and replacement object are
    one edit.
    """

    code: str
    span: Span
    message: str
    target: Optional[cst.CSTNode] = None
    target_span: Optional[Span] = None
    replacement: Optional[cst.CSTNode] = None
    safety: Optional[str] = None
    reason: str = ""
    imports: tuple[tuple[str, str], ...] = ()


@dataclass
class FileContext:
    """What a rule may know about the file it visits."""

    path: str
    facts: FileFacts
    index: ProjectIndex
    settings: Settings
    findings: list[Finding] = field(default_factory=list)
    module: Optional[cst.Module] = None
    """The tree the rules visit (set by the engine): `FileRule.def_line` numbers its functions."""
    _def_lines: Optional[dict[int, int]] = None


class RuleInfo:
    """The documentation and identity every rule declares."""

    CODE: ClassVar[str]
    NAME: ClassVar[str]
    SUMMARY: ClassVar[str]
    FIX: ClassVar[str]
    """The best safety the rule's fixes reach: "safe", "unsafe" or "none" (diagnostic only)."""

    FASTAPI_ONLY: ClassVar[bool] = False
    """Whether the rule can only act on what matters to FastAPI (a route or dependency, a marker,
    a name a project module re-exports from FastAPI). When not, a file rule gets every target file
    holding one of its NEEDLES indexed, and a project rule the whole project."""

    INDEX_NEEDLES: ClassVar[Optional[tuple[bytes, ...]]] = ()
    """Files the index must load for this rule besides those that touch FastAPI (and what they
    import, call and re-export): the ones whose bytes contain one of these. None: every file."""

    @classmethod
    def plan_project(
        cls, index: ProjectIndex, settings: Settings, sources: Mapping[str, bytes]
    ) -> Iterable[ProjectFinding]:
        """Cross-file changes planned from the whole index (a rule may define this as well)."""
        return ()

    @classmethod
    def inactive(cls, settings: Settings) -> Optional[str]:
        """Why the rule does nothing for this project (its FastAPI or Python version), or None."""
        return None

    @classmethod
    def documentation(cls) -> str:
        module = inspect.getmodule(cls)
        return inspect.cleandoc((module.__doc__ if module else None) or cls.__doc__ or "")


@functools.cache
def _visitor_names(cls: type) -> tuple[str, ...]:
    """The `visit_*`/`leave_*` methods of a visitor class that are not libcst's empty stubs."""
    names = []
    for name in dir(cls):
        if not name.startswith(("visit_", "leave_")):
            continue
        attribute = getattr(cls, name)  # a function, or a method for a classmethod
        function = getattr(attribute, "__func__", attribute)
        if inspect.isfunction(function) and not getattr(function, "_is_no_op", False):
            names.append(name)
    return tuple(names)


class FileRule(RuleInfo, cst.BatchableCSTVisitor):
    """A rule that inspects one file at a time through libcst."""

    NEEDLES: ClassVar[tuple[bytes, ...]] = ()
    """A file is parsed for this rule only when its bytes contain one of these."""

    METADATA_DEPENDENCIES: ClassVar[tuple[ProviderT, ...]] = (PositionProvider,)

    def __init__(self, context: FileContext) -> None:
        super().__init__()
        self.context = context

    @classmethod
    def wants(cls, facts: FileFacts, index: ProjectIndex) -> bool:
        """Whether the index says this file can hold a finding (checked after the needles)."""
        return True

    def get_visitors(self) -> Mapping[str, Callable[[cst.CSTNode], None]]:
        """libcst's, with the method names found once per class (libcst inspects every instance)."""
        return {name: getattr(self, name) for name in _visitor_names(type(self))}

    @property
    def index(self) -> ProjectIndex:
        return self.context.index

    def resolve_expression(self, node: cst.BaseExpression) -> Resolved:
        """What a module-level name or dotted name (`SessionLocal`, `httpx.Client`) refers to."""
        name = dotted(node)
        if name is None:
            return Unresolved("not a dotted name")
        return self.resolve_name(name)

    def resolve_name(self, name: str) -> Resolved:
        """`resolve_expression` of a dotted name given as text."""
        return self.index.resolve_top_level(self.context.facts, name)

    def def_line(self, node: cst.FunctionDef) -> int:
        """The line of a function's `def` keyword, as `span(node).line` gives it.

        Without libcst positions, which cost a code generation of the whole file: the n-th function
        of the tree is the n-th `def` line of the file's facts. Where the counts disagree (a tree that
        is not the facts' text), the positions answer.
        """
        context = self.context
        if context._def_lines is None:
            nodes = list(_functions(context.module)) if context.module is not None else []
            lines = context.facts.def_lines
            context._def_lines = (
                {id(function): line for function, line in zip(nodes, lines)}
                if len(nodes) == len(lines)
                else {}
            )
        line = context._def_lines.get(id(node))
        return line if line is not None else self.span(node).line

    def span(self, node: cst.CSTNode) -> Span:
        position = self.get_metadata(PositionProvider, node)
        return Span(
            position.start.line,
            position.start.column + 1,
            position.end.line,
            position.end.column + 1,
        )

    def report(
        self,
        node: cst.CSTNode,
        message: str,
        *,
        replacement: Optional[cst.CSTNode] = None,
        target: Optional[cst.CSTNode] = None,
        safety: Optional[str] = None,
        reason: str = "",
        imports: tuple[tuple[str, str], ...] = (),
    ) -> None:
        """Report a finding at `node`; with `replacement`, offer the fix graded `safety`.

        The replacement takes the place of `target` (default: `node`). Without a replacement,
        `reason` says why no fix is offered; with one, why it is unsafe.
        """
        if replacement is not None and safety is None:
            safety = SAFE
        target = target if target is not None else node
        self.context.findings.append(
            Finding(
                self.CODE,
                self.span(node),
                message,
                target if replacement is not None else None,
                self.span(target) if replacement is not None else None,
                replacement,
                safety,
                reason,
                imports,
            )
        )


_SUITES: tuple[type[cst.CSTNode], ...] = (
    cst.BaseSuite,
    cst.BaseStatement,
    cst.ExceptHandler,
    cst.ExceptStarHandler,
    cst.Else,
    cst.Finally,
    cst.MatchCase,
)


def _functions(node: cst.CSTNode) -> Iterator[cst.FunctionDef]:
    """Every function definition under `node`, in source order, looking only through statements."""
    for child in node.children:
        if isinstance(child, cst.FunctionDef):
            yield child
        if isinstance(child, _SUITES):
            yield from _functions(child)


@dataclass(frozen=True)
class Changeset:
    """New contents for several files at once, by display path; a path that does not exist is created."""

    files: Mapping[str, bytes]


@dataclass(frozen=True)
class ProjectFinding:
    code: str
    path: str
    span: Span
    message: str
    changeset: Optional[Changeset] = None
    safety: Optional[str] = None
    reason: str = ""
    info: bool = False
    """A note rather than a problem: shown, but it neither counts as a diagnostic nor sets the exit code."""
    verbose: bool = False
    """For a note: shown only with `--verbose` (about code FastAPI never calls, or nothing to do)."""
    key: str = ""
    """What the finding is about, the same in every round (an alias group, a cycle): when a later
    round fixes it, that replaces what an earlier round reported of it at another position."""


class ProjectRule(RuleInfo):
    """A rule that needs the whole project at once and may edit or create several files."""

    def __init__(
        self, index: ProjectIndex, settings: Settings, sources: Mapping[str, bytes]
    ) -> None:
        self.index = index
        self.settings = settings
        self.sources = sources

    def plan(self) -> Iterable[ProjectFinding]:
        raise NotImplementedError

    @classmethod
    def plan_project(
        cls, index: ProjectIndex, settings: Settings, sources: Mapping[str, bytes]
    ) -> Iterable[ProjectFinding]:
        return cls(index, settings, sources).plan()


Rule = type[RuleInfo]
_REGISTRY: dict[str, Rule] = {}


def register(rule: type[RuleInfo]) -> type[RuleInfo]:
    """Class decorator: make a rule known under its code."""
    existing = _REGISTRY.get(rule.CODE)
    if existing is not None and existing is not rule:
        raise ValueError(
            f"rule code {rule.CODE} registered twice: {existing.__name__}, {rule.__name__}"
        )
    _REGISTRY[rule.CODE] = rule
    return rule


def registered_rules() -> list[Rule]:
    """Every rule, in the run order the `codemods` package declares."""
    import codemods  # importing the package registers its rules

    return [_REGISTRY[code] for code in codemods.run_order(list(_REGISTRY))]


def select_rules(
    select: Optional[Iterable[str]], ignore: Iterable[str], rules: Optional[list[Rule]] = None
) -> list[Rule]:
    """The rules whose codes match a `select` prefix (all when None) and no `ignore` prefix."""
    candidates = rules if rules is not None else registered_rules()
    chosen_prefixes = ["ALL"] if select is None else list(select)
    ignored = list(ignore)

    def matches(code: str, prefixes: list[str]) -> bool:
        return any(prefix == "ALL" or code.startswith(prefix) for prefix in prefixes)

    return [
        rule
        for rule in candidates
        if matches(rule.CODE, chosen_prefixes) and not matches(rule.CODE, ignored)
    ]
