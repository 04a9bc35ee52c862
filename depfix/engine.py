"""Runs the selected rules over a project and produces diagnostics and new file contents.

Phase 1 reads every project file once, parses it with `ast` and extracts facts (in parallel). The parent
merges them into the index in path order. Project rules then plan cross-file changesets, which are
applied to an in-memory overlay. Phase 2 parses with libcst only the target files some rule can act on
(byte needles, then the index) and runs every selected rule in one traversal. Nothing is written here:
the caller decides whether to write, diff or only report.
"""

from __future__ import annotations

import ast
import multiprocessing
import os
import sys
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, TypeVar

import libcst as cst
from libcst.metadata import MetadataWrapper

from depfix.config import Settings
from depfix.discovery import discover
from depfix.facts import FileFacts, extract_facts
from depfix.imports import add_from_import, remove_imports_made_unused
from depfix.index import ProjectIndex
from depfix.io import SourceError, SourceFile, decode_source, read_source
from depfix.modules import module_names
from depfix.rules import SAFE, Changeset, FileContext, FileRule, Finding, Rule, RuleInfo, Span
from depfix.suppress import NEEDLE as SUPPRESS_NEEDLE
from depfix.suppress import parse_suppressions

MAX_PASSES = 4
MAX_ROUNDS = 3
"""Project planning and file rules alternate until nothing changes (a project rule may act on
what a file rule rewrote: DF007 aliases the parameters DF006 has just put in `Annotated`)."""
SERIAL_BELOW = 48
T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class FixInfo:
    safety: str
    applied: bool
    reason: str = ""


@dataclass(frozen=True)
class Diagnostic:
    path: str
    line: int
    column: int
    end_line: int
    end_column: int
    code: str
    name: str
    message: str
    fix: Optional[FixInfo] = None

    def sort_key(self) -> tuple[str, int, int, str]:
        return self.path, self.line, self.column, self.code


@dataclass(frozen=True)
class FileError:
    path: str
    line: Optional[int]
    column: Optional[int]
    message: str


@dataclass
class FileOutcome:
    path: str
    diagnostics: list[Diagnostic] = field(default_factory=list)
    errors: list[FileError] = field(default_factory=list)
    new_data: Optional[bytes] = None
    original: Optional[SourceFile] = None
    fixes: int = 0


@dataclass
class Change:
    """A file the run rewrites (`old` is None for a file it creates)."""

    path: str
    absolute: Path
    original: Optional[SourceFile]
    new: bytes
    group: int
    """Changes with the same group are written all-or-nothing."""


@dataclass
class RunResult:
    files_scanned: int = 0
    diagnostics: list[Diagnostic] = field(default_factory=list)
    errors: list[FileError] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)
    fixes: int = 0
    unindexed: list[FileError] = field(default_factory=list)
    """Project files outside the given paths that could not be read: the index lacks their facts."""
    notes: list[Diagnostic] = field(default_factory=list)
    """Information from rules that is not a problem (it does not count and sets no exit code)."""


Progress = Callable[[str, int, int], None]
"""Called as (stage, done, total) while a stage runs."""


@dataclass(frozen=True)
class RunOptions:
    rules: Sequence[Rule]
    settings: Settings
    apply_fixes: bool = True
    """Whether fixes count as applied (apply and dry-run) or only as available (check)."""
    unsafe: bool = False
    jobs: int = 1
    suppress: bool = True
    root: Optional[Path] = None
    progress: Optional[Progress] = None


@dataclass
class _Job:
    absolute: str
    path: str
    module: str
    aliases: list[str]
    is_package: bool


def display_path(path: Path, cwd: Path) -> str:
    try:
        return os.path.relpath(path, cwd).replace(os.sep, "/")
    except ValueError:  # another drive on Windows
        return path.as_posix()


# ---- phase 1: facts ---------------------------------------------------------------------------
def _extract(
    job: _Job, data: Optional[bytes] = None
) -> tuple[Optional[FileFacts], Optional[FileError]]:
    try:
        if data is None:
            data = read_source(Path(job.absolute)).data
        text = decode_source(Path(job.path), data)
        tree = ast.parse(text, filename=job.path)
    except SourceError as error:
        return None, FileError(job.path, error.line, error.column, error.message)
    except SyntaxError as error:
        message = f"syntax error: {error.msg}"
        if data is not None and b"\x00" in data:  # reported without a position by CPython
            at = data.index(b"\x00")
            line = data.count(b"\n", 0, at) + 1
            column = at - (data.rfind(b"\n", 0, at) + 1) + 1
            return None, FileError(job.path, line, column, "contains a NUL byte; not Python source")
        nesting = "nested" in str(error.msg) or "too many" in str(error.msg)
        if data is not None and not nesting and _newer_python_syntax(data):
            running = ".".join(map(str, sys.version_info[:2]))
            message += f" (valid for a newer Python: run depfix with it; this is Python {running})"
        return None, FileError(job.path, error.lineno, error.offset, message)
    except (ValueError, RecursionError, MemoryError) as error:
        return None, FileError(job.path, None, None, f"cannot parse: {error}")
    return extract_facts(job.path, job.module, job.is_package, tree, text), None


def _newer_python_syntax(data: bytes) -> bool:
    """Whether libcst, which knows newer grammars than this interpreter, accepts the file."""
    try:
        cst.parse_module(data)
    except (cst.ParserSyntaxError, RecursionError, MemoryError, ValueError):
        return False
    return True


# ---- phase 2: rules ---------------------------------------------------------------------------
@dataclass
class _State:
    index: ProjectIndex
    options: RunOptions
    overlay: dict[str, bytes]
    jobs: dict[str, _Job]


_STATE: Optional[_State] = None


def _rule_name(code: str, rules: Sequence[Rule]) -> str:
    return next((rule.NAME for rule in rules if code == rule.CODE), code)


def _process(path: str) -> FileOutcome:
    assert _STATE is not None
    return process_file(path, _STATE.index, _STATE.options, _STATE.overlay, _STATE.jobs[path])


def _fixable(finding: Finding, unsafe: bool) -> bool:
    return finding.replacement is not None and (finding.safety == SAFE or unsafe)


def _non_overlapping(findings: Iterable[Finding]) -> tuple[list[Finding], int]:
    """The fixes to apply now: no two edits overlap; the rest wait for the next pass.

    Findings that share one edit (same target and replacement) are taken or left together.
    """
    accepted: list[Finding] = []
    taken: set[tuple[int, int]] = set()
    dropped = 0
    for finding in sorted(findings, key=_edit_position):
        edit = (id(finding.target), id(finding.replacement))
        span = finding.target_span or finding.span
        if edit in taken:
            accepted.append(finding)
        elif any(_overlaps(span, other.target_span or other.span) for other in accepted):
            dropped += 1
        else:
            accepted.append(finding)
            taken.add(edit)
    return accepted, dropped


def _edit_position(finding: Finding) -> tuple[int, int]:
    span = finding.target_span or finding.span
    return span.line, span.column


def _overlaps(a: Span, b: Span) -> bool:
    return (a.line, a.column) < (b.end_line, b.end_column) and (b.line, b.column) < (
        a.end_line,
        a.end_column,
    )


class _ReplaceNodes(cst.CSTTransformer):
    def __init__(self, replacements: dict[cst.CSTNode, cst.CSTNode]) -> None:
        super().__init__()
        self.replacements = replacements

    def on_leave(self, original_node: Any, updated_node: Any) -> Any:
        return self.replacements.get(original_node, updated_node)


def _run_rules(
    module: cst.Module, rules: Sequence[type[FileRule]], context: FileContext
) -> list[Finding]:
    wrapper = MetadataWrapper(module, unsafe_skip_copy=True)
    visitors = [rule(context) for rule in rules]
    wrapper.visit_batched(visitors)
    return list(context.findings)


def _enclosing_def_lines(facts: FileFacts, line: int) -> tuple[int, ...]:
    return tuple(
        fact.line for fact in facts.functions.values() if fact.line <= line <= fact.end_line
    )


def process_file(
    path: str, index: ProjectIndex, options: RunOptions, overlay: dict[str, bytes], job: _Job
) -> FileOutcome:
    """Run the file rules on one file; return its diagnostics and, when fixed, its new bytes."""
    outcome = FileOutcome(path)
    facts = index.file(path)
    if facts is None:
        return outcome
    if path in overlay and not os.path.lexists(job.absolute):
        data = overlay[path]  # a file a changeset creates
    else:
        try:
            outcome.original = read_source(Path(job.absolute))
        except SourceError as error:
            outcome.errors.append(FileError(path, error.line, error.column, error.message))
            return outcome
        data = overlay.get(path, outcome.original.data)
    rules = [
        rule
        for rule in options.rules
        if issubclass(rule, FileRule)
        and (not rule.NEEDLES or any(needle in data for needle in rule.NEEDLES))
        and rule.wants(facts, index)
    ]
    if not rules:
        return outcome
    suppressions = (
        parse_suppressions(data.decode("utf-8", "replace")) if SUPPRESS_NEEDLE in data else None
    )
    if suppressions is not None and options.suppress and suppressions.skip_file:
        return outcome
    try:
        module = cst.parse_module(data)
    except cst.ParserSyntaxError as error:
        outcome.errors.append(
            FileError(
                path, error.raw_line, error.raw_column + 1, f"libcst cannot parse: {error.message}"
            )
        )
        return outcome
    except (RecursionError, MemoryError) as error:
        outcome.errors.append(FileError(path, None, None, f"libcst cannot parse: {error!r}"))
        return outcome

    def kept(finding: Finding) -> bool:
        if suppressions is None or not options.suppress:
            return True
        return not suppressions.ignores(
            finding.code, finding.span.line, _enclosing_def_lines(facts, finding.span.line)
        )

    original = module
    current_index = index
    first_findings: list[Finding] = []
    applied: set[int] = set()
    deferred: set[int] = set()  # first-pass fixes that overlapped another and wait for a later pass
    converged = True
    for attempt in range(MAX_PASSES):
        context = FileContext(
            path, current_index.file(path) or facts, current_index, options.settings
        )
        findings = [f for f in _run_rules(module, rules, context) if kept(f)]
        if attempt == 0:
            first_findings = findings
        fixable = [f for f in findings if _fixable(f, options.unsafe)]
        accepted, dropped = _non_overlapping(fixable)
        if not accepted:
            break
        edits = {f.target: f.replacement for f in accepted if f.target and f.replacement}
        module = cst.ensure_type(module.visit(_ReplaceNodes(edits)), cst.Module)
        first_party = current_index.top_level_packages()
        for source, name in sorted({i for f in accepted for i in f.imports}):
            module = add_from_import(module, source, name, first_party)
        outcome.fixes += len(accepted)
        if attempt == 0:
            applied.update(id(f) for f in accepted)
            deferred.update(id(f) for f in fixable if id(f) not in applied)
        if not dropped:
            break
        converged = False
        new_facts, _ = _extract(job, module.bytes)
        if new_facts is None:
            break
        current_index = current_index.with_file(new_facts)
        converged = attempt + 1 < MAX_PASSES
    if converged:
        applied |= deferred
    if module is not original:
        keep = current_index.names_imported_from(facts.module)
        if keep is not None:
            keep |= frozenset(facts.all_names or ())
            module = remove_imports_made_unused(original, module, keep)
    if module is not original:
        new_data = module.bytes
        problem = _unparsable(path, new_data)
        if problem is not None:
            outcome.errors.append(problem)
            outcome.fixes = 0
            applied.clear()
        elif new_data != data:
            outcome.new_data = new_data
    for finding in first_findings:
        fix = None
        if finding.replacement is not None and finding.safety is not None:
            fix = FixInfo(
                finding.safety, id(finding) in applied and options.apply_fixes, finding.reason
            )
        message = finding.message
        if finding.replacement is None and finding.reason:
            message = f"{message} (no fix: {finding.reason})"
        span = finding.span
        outcome.diagnostics.append(
            Diagnostic(
                path,
                span.line,
                span.column,
                span.end_line,
                span.end_column,
                finding.code,
                _rule_name(finding.code, options.rules),
                message,
                fix,
            )
        )
    return outcome


def _unparsable(path: str, data: bytes) -> Optional[FileError]:
    try:
        compile(data, path, "exec", dont_inherit=True, flags=ast.PyCF_ONLY_AST)
    except (SyntaxError, ValueError) as error:
        line = getattr(error, "lineno", None)
        return FileError(
            path,
            line,
            None,
            f"internal error: a fix produced code that does not parse ({error}); file left unchanged",
        )
    return None


# ---- orchestration ----------------------------------------------------------------------------
def _map(
    function: Callable[[T], R],
    items: Sequence[T],
    jobs: int,
    stage: str = "",
    progress: Optional[Progress] = None,
) -> list[R]:
    """`function` over `items` in order: in worker processes when there are enough items."""
    results: list[R] = []
    if (
        jobs <= 1
        or len(items) < SERIAL_BELOW
        or "fork" not in multiprocessing.get_all_start_methods()
    ):
        iterator: Iterable[R] = (function(item) for item in items)
        pool = None
    else:
        # fork: workers inherit the index instead of receiving a pickled copy of it
        context = multiprocessing.get_context("fork")
        pool = ProcessPoolExecutor(max_workers=jobs, mp_context=context)
        iterator = pool.map(function, items, chunksize=max(1, len(items) // (jobs * 8)))
    try:
        for result in iterator:
            results.append(result)
            if progress is not None:
                progress(stage, len(results), len(items))
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    return results


def _extract_job(job: _Job) -> tuple[Optional[FileFacts], Optional[FileError]]:
    return _extract(job)


def _jobs_for(files: Sequence[Path], root: Path, cwd: Path) -> list[_Job]:
    relative = {}
    for path in files:
        try:
            relative[path] = path.relative_to(root).as_posix()
        except ValueError:
            relative[path] = path.name
    package_dirs = frozenset(
        rel.rsplit("/", 1)[0] if "/" in rel else ""
        for rel in relative.values()
        if rel.endswith("__init__.py")
    )
    jobs = []
    for path in files:
        module, aliases = module_names(relative[path], package_dirs)
        jobs.append(
            _Job(str(path), display_path(path, cwd), module, aliases, path.name == "__init__.py")
        )
    return jobs


def build_index(jobs: Sequence[_Job], facts: Iterable[FileFacts]) -> ProjectIndex:
    aliases = {alias: job.path for job in jobs for alias in job.aliases}
    return ProjectIndex(facts, aliases)


def run(paths: Sequence[Path], options: RunOptions, cwd: Optional[Path] = None) -> RunResult:
    """Check (and compute fixes for) every file under `paths`, using the whole project for the index."""
    global _STATE
    cwd = cwd or Path.cwd()
    found = discover(paths, options.settings.exclude, options.root)
    result = RunResult()
    for problem_path, message in found.problems:
        result.errors.append(FileError(display_path(problem_path, cwd), None, None, message))
    jobs = _jobs_for(found.project, found.root, cwd)
    target_paths = [display_path(path, cwd) for path in found.targets]
    target_set = set(target_paths)
    extracted = _map(_extract_job, jobs, options.jobs, "indexing", options.progress)
    facts_list = []
    for job, (facts, error) in zip(jobs, extracted):
        if facts is not None:
            facts_list.append(facts)
        elif error is not None and job.path in target_set:
            result.errors.append(error)
        elif error is not None:
            result.unindexed.append(error)
    index = build_index(jobs, facts_list)
    project = _Project(found.project, found.root, cwd, jobs, {f.path: f for f in facts_list}, index)
    project.given = [Path(os.path.abspath(cwd / path)) for path in paths]
    planners = [rule for rule in options.rules if _plans_projects(rule)]
    originals: dict[str, Optional[SourceFile]] = {}
    changed: set[str] = set()
    for round_number in range(MAX_ROUNDS if planners else 1):
        touched: set[str] = set()
        if planners:
            touched = _plan_projects(planners, project, options, result, round_number)
            project.refresh(touched, result)
            target_paths.extend(
                sorted(p for p in touched if p in project.created and p not in target_set)
            )
            target_set.update(touched & project.created)
        _STATE = _State(project.index, options, project.overlay, project.by_path)
        try:
            checked = [path for path in target_paths if path in project.by_path]
            if round_number and not touched:
                # Nothing new was planned: only the files the last round rewrote can hold more.
                checked = [path for path in checked if path in changed]
            outcomes = _map(_process, checked, options.jobs, "checking", options.progress)
        finally:
            _STATE = None
        changed = set()
        for outcome in outcomes:
            if round_number == 0:
                result.diagnostics.extend(outcome.diagnostics)
                result.errors.extend(outcome.errors)
            else:  # a later round reports only what it fixed (the rest was reported already)
                result.diagnostics.extend(d for d in outcome.diagnostics if d.fix and d.fix.applied)
                result.errors.extend(e for e in outcome.errors if e not in result.errors)
            result.fixes += outcome.fixes
            originals.setdefault(outcome.path, outcome.original)
            if outcome.new_data is not None:
                project.overlay[outcome.path] = outcome.new_data
                changed.add(outcome.path)
        if not (touched or changed):
            break
        project.refresh(changed, result)
    result.files_scanned = len(target_paths)
    for number, path in enumerate(sorted(project.overlay)):
        job = project.by_path[path]
        original = None if path in project.created else originals.get(path)
        if original is None and path not in project.created:
            try:
                original = read_source(Path(job.absolute))
            except SourceError as error:
                result.errors.append(FileError(path, error.line, error.column, error.message))
                continue
        if original is None or original.data != project.overlay[path]:
            group = project.groups.get(path, -1 - number)
            result.changes.append(
                Change(path, Path(job.absolute), original, project.overlay[path], group)
            )
    result.diagnostics.sort(key=Diagnostic.sort_key)
    result.errors.sort(key=lambda e: (e.path, e.line or 0, e.column or 0, e.message))
    return result


def _plans_projects(rule: Rule) -> bool:
    """Whether a rule overrides `plan_project` (project rules, and file rules with a project part)."""
    return rule.plan_project.__func__ is not RuleInfo.plan_project.__func__  # type: ignore[attr-defined]


class _Project:
    """The project as this run sees it: files, the overlay of new contents, and the index of both."""

    def __init__(
        self,
        files: Sequence[Path],
        root: Path,
        cwd: Path,
        jobs: list[_Job],
        facts: dict[str, FileFacts],
        index: ProjectIndex,
    ) -> None:
        self.files = list(files)
        self.root = root
        self.cwd = cwd
        self.jobs = jobs
        self.by_path = {job.path: job for job in jobs}
        self.facts = facts
        self.index = index
        self.overlay: dict[str, bytes] = {}
        self.created: set[str] = set()
        self.groups: dict[str, int] = {}
        self.given: list[Path] = []
        """The paths the run was given: nothing outside them is written."""

    def allows(self, path: Path) -> bool:
        absolute = Path(os.path.abspath(path))
        return any(absolute == given or given in absolute.parents for given in self.given)

    def refresh(self, paths: set[str], result: RunResult) -> None:
        """Re-read the facts of changed or created files and rebuild the index."""
        if not paths:
            return
        new = sorted(p for p in paths if p not in self.by_path)
        if new:
            self.created.update(new)
            self.files.extend(Path(os.path.abspath(self.cwd / path)) for path in new)
            self.jobs = _jobs_for(sorted(set(self.files)), self.root, self.cwd)
            self.by_path = {job.path: job for job in self.jobs}
        for path in sorted(paths):
            new_facts, error = _extract(self.by_path[path], self.overlay[path])
            if new_facts is not None:
                self.facts[path] = new_facts
            elif error is not None and error not in result.errors:
                result.errors.append(error)
        self.index = build_index(self.jobs, self.facts.values())


def _plan_projects(
    planners: Sequence[Rule],
    project: _Project,
    options: RunOptions,
    result: RunResult,
    round_number: int,
) -> set[str]:
    """Run the project planning of rules and apply their changesets to the overlay.

    A changeset is taken whole or not at all: one that touches a file an earlier changeset of this
    round touched, or a path outside the project, is reported without being applied. Later rounds
    report only the changesets they apply.
    """
    sources = _SourceView(project.by_path, project.overlay, project)
    touched: set[str] = set()
    taken: list[Changeset] = []
    for number, rule in enumerate(planners):
        for finding in rule.plan_project(project.index, options.settings, sources):
            changeset = finding.changeset
            fix = None
            applied = False
            outside: list[str] = []
            if changeset is not None and finding.safety is not None:
                wanted = finding.safety == SAFE or options.unsafe
                conflict = changeset not in taken and any(
                    path in touched for path in changeset.files
                )
                outside = [p for p in changeset.files if not project.allows(project.cwd / p)]
                applied = wanted and not conflict and not outside
                if applied and changeset not in taken:  # findings sharing a changeset: one edit
                    taken.append(changeset)
                    for path, data in changeset.files.items():
                        project.overlay[path] = data
                        touched.add(path)
                        project.groups.setdefault(path, 1_000_000 * (round_number + 1) + number)
                result.fixes += applied
                fix = FixInfo(finding.safety, applied and options.apply_fixes, finding.reason)
            if round_number and not applied:
                continue
            span = finding.span
            message = finding.message
            if finding.info:
                if round_number == 0:
                    result.notes.append(
                        Diagnostic(
                            finding.path,
                            span.line,
                            span.column,
                            span.end_line,
                            span.end_column,
                            finding.code,
                            rule.NAME,
                            message,
                        )
                    )
                continue
            if changeset is None and finding.reason:
                message = f"{message} (no fix: {finding.reason})"
            elif changeset is not None and outside:
                message = (
                    f"{message} (not applied: it would write {outside[0]}, outside the given paths)"
                )
            result.diagnostics.append(
                Diagnostic(
                    finding.path,
                    span.line,
                    span.column,
                    span.end_line,
                    span.end_column,
                    finding.code,
                    rule.NAME,
                    message,
                    fix,
                )
            )
    return touched


class _SourceView(dict):  # type: ignore[type-arg]
    """Read-only bytes of project files by display path, overlay first, loaded lazily."""

    def __init__(
        self, jobs: dict[str, _Job], overlay: dict[str, bytes], project: Optional[_Project] = None
    ) -> None:
        super().__init__()
        self._jobs = jobs
        self._overlay = overlay
        self._project = project

    def writable(self, path: str) -> bool:
        """Whether the run may write this path (it lies inside the paths it was given)."""
        return self._project is None or self._project.allows(self._project.cwd / path)

    def __missing__(self, path: str) -> bytes:
        if path in self._overlay:
            return self._overlay[path]
        data = read_source(Path(self._jobs[path].absolute)).data
        self[path] = data
        return data
