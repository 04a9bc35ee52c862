"""Runs the selected rules over a project and produces diagnostics and new file contents.

Phase 1 reads every project file once, parses it with `ast` and extracts facts (in parallel). The parent
merges them into the index in path order. Project rules then plan cross-file changesets, which are
applied to an in-memory overlay. Phase 2 parses with libcst only the target files some rule can act on
(byte needles, then the index) and runs every selected rule in one traversal. Nothing is written here:
the caller decides whether to write, diff or only report.
"""

from __future__ import annotations

import ast
import bisect
import dataclasses
import gc
import multiprocessing
import os
import sys
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, TypeVar, Union

import libcst as cst
from libcst.metadata import CodeRange, MetadataWrapper, PositionProvider

from depfix.cache import Cache, digest
from depfix.codegen import code, positions
from depfix.config import Settings, consulted_files, with_project_facts
from depfix.discovery import Discovery, discover
from depfix.facts import FileFacts, extract_facts, fingerprint, parse_source
from depfix.imports import add_from_import, module_code, remove_imports_made_unused
from depfix.index import External, LazySource, ProjectIndex, strongly_connected
from depfix.io import SourceError, SourceFile, decode_source, read_source
from depfix.lowering import VERSION as LOWERING
from depfix.modules import (
    Layout,
    Scope,
    display_path,
    imported_names,
    module_names_at,
    split_scopes,
)
from depfix.positions import DiskPositions
from depfix.prefilter import IDENTIFIER, matters
from depfix.replay import RACY_NS
from depfix.roots import ROOT_MARKERS
from depfix.rules import SAFE, Changeset, FileContext, FileRule, Finding, Rule, RuleInfo, Span
from depfix.suppress import NEEDLE as SUPPRESS_NEEDLE
from depfix.suppress import parse_suppressions
from depfix.traversal import replace_descendants, visit_batched

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
    taken: bool = False
    """Whether the run made the fix in its new contents (also when `check` only reports it)."""


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
    key: str = field(default="", compare=False)
    """What a project finding is about across rounds (see `ProjectFinding.key`)."""

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
    details: list[Diagnostic] = field(default_factory=list)
    """Notes shown only with `--verbose`."""
    inputs: list[str] = field(default_factory=list)
    """Every file and directory whose presence or content decided this result (absolute paths)."""
    replay: Optional[ReplayScope] = None
    skipped: list[tuple[str, str]] = field(default_factory=list)
    """What `--verbose` explains, as (display path, what and why): directories named like build
    output or virtualenvs (skipped or kept), scopes checked as projects of their own, and files
    whose module name another file claims too."""


@dataclass
class ReplayScope:
    """What decides whether an edited file can change a run's result (see `depfix.replay`).

    `files` holds the project files the result does not depend on beyond their facts: no rule ran on
    them, no project rule read them, nothing is reported or changed in them. By absolute path: display
    path, module, is_package, the fingerprint of their facts (None: not indexed) and the needles of
    the file rules their facts would let run. An unindexed file stays out of the index while it
    matches none of `needles` (the prefilter's extra needles) and mentions none of `words`.
    """

    files: dict[str, tuple[str, str, bool, Optional[str], list[str]]]
    needles: list[str]
    words: list[str]


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
    cache: bool = False
    """Read and write `.depfix_cache/` under the project root (the CLI's default)."""
    replay: bool = False
    """Fill `RunResult.replay`: what tells an edit that cannot change the result (`depfix.replay`)."""


@dataclass
class _Job:
    absolute: str
    path: str
    module: str
    aliases: list[str]
    is_package: bool


# ---- phase 1: facts ---------------------------------------------------------------------------
def _extract(
    job: _Job, data: Optional[bytes] = None
) -> tuple[Optional[FileFacts], Optional[FileError]]:
    try:
        if data is None:
            data = read_source(Path(job.absolute)).data
        text, tree = parse_source(job.path, data)
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


def _check_syntax(job: _Job, data: bytes) -> Optional[FileError]:
    """The error `_extract` would report for a file, without building its facts.

    Compiling is cheaper than building the `ast` tree; only a file that fails it is parsed again,
    for the same message.
    """
    try:
        text = decode_source(Path(job.path), data)
        compile(text, job.path, "exec", dont_inherit=True)
    except SourceError as error:
        return FileError(job.path, error.line, error.column, error.message)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return _extract(job, data)[1]
    return None


def _newer_python_syntax(data: bytes) -> bool:
    """Whether libcst, which knows newer grammars than this interpreter, accepts the file."""
    try:
        cst.parse_module(data)
    except Exception:  # a syntax error, recursion or memory, or one of libcst's own
        # (`CSTLogicError` for t-strings concatenated)
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
        self.replaced: set[cst.CSTNode] = set()

    def on_leave(self, original_node: Any, updated_node: Any) -> Any:
        replacement = self.replacements.get(original_node)
        if replacement is None:
            return updated_node
        self.replaced.add(original_node)
        return replacement


def _replace(
    module: cst.Module, edits: dict[cst.CSTNode, cst.CSTNode], spans: list[Span]
) -> cst.Module:
    """`module` with each edit's target replaced, rebuilding only the targets' ancestors.

    A transformer rebuilds every node it visits; most nodes of a file are not on the way to an edit.
    The search for the targets stays inside the top-level statements that hold one: a statement
    owns the lines after the previous statement's last line up to its own (its decorators and leading
    comments included), so an edit whose span starts there lies inside it.
    """
    positions = _positions_of(module)
    if not spans or any(statement not in positions for statement in module.body):
        return cst.ensure_type(module.visit(_ReplaceNodes(edits)), cst.Module)
    ends = [positions[statement].end.line for statement in module.body]
    holding = {bisect.bisect_left(ends, span.line) for span in spans}
    replaced: set[cst.CSTNode] = set()
    body: list[cst.BaseStatement] = []
    for number, statement in enumerate(module.body):
        new = replace_descendants(statement, edits, replaced) if number in holding else statement
        if not isinstance(new, cst.BaseStatement):  # unreadable, or not a statement any more
            return cst.ensure_type(module.visit(_ReplaceNodes(edits)), cst.Module)
        body.append(new)
    if len(replaced) < len(edits):  # a target outside its statement's lines
        return cst.ensure_type(module.visit(_ReplaceNodes(edits)), cst.Module)
    return module.with_changes(body=body)


_POSITION_MAPS: dict[int, tuple[cst.Module, Mapping[cst.CSTNode, CodeRange]]] = {}
"""The position map of the module last run through the rules (a pass replaces in that module)."""


def _positions_of(module: cst.Module) -> Mapping[cst.CSTNode, CodeRange]:
    known = _POSITION_MAPS.get(id(module))
    if known is not None and known[0] is module:
        return known[1]
    return positions(module)


class _LazyPositions(Mapping[cst.CSTNode, CodeRange]):
    """Positions computed on the first question: a pass that reports nothing never needs them."""

    def __init__(self, module: cst.Module) -> None:
        self._module = module
        self._positions: Optional[Mapping[cst.CSTNode, CodeRange]] = None

    def _resolved(self) -> Mapping[cst.CSTNode, CodeRange]:
        if self._positions is None:
            self._positions = positions(self._module)
        return self._positions

    def __getitem__(self, node: cst.CSTNode) -> CodeRange:
        return self._resolved()[node]

    def __iter__(self) -> Iterator[cst.CSTNode]:
        return iter(self._resolved())

    def __len__(self) -> int:
        return len(self._resolved())


def _wrap(module: cst.Module) -> MetadataWrapper:
    """A metadata wrapper whose positions are computed directly, and only when asked for.

    libcst resolves a provider that is not batchable (positions come from a code generation pass),
    then walks the whole tree once more for the batchable ones, even when there are none: a third
    of the rules' time. Positions are the only metadata the rules use, so they are computed directly,
    on the first finding (most passes over most files find nothing).
    """
    wrapper = MetadataWrapper(module, unsafe_skip_copy=True)
    metadata = getattr(wrapper, "_metadata", None)
    mapping: Mapping[cst.CSTNode, CodeRange]
    if isinstance(metadata, dict):
        mapping = metadata[PositionProvider] = _LazyPositions(module)
    else:  # a libcst without this private path: resolve the public way
        mapping = wrapper.resolve(PositionProvider)
    _POSITION_MAPS.clear()
    _POSITION_MAPS[id(module)] = (module, mapping)
    return wrapper


def _run_rules(
    module: cst.Module, rules: Sequence[type[FileRule]], context: FileContext
) -> list[Finding]:
    wrapper = _wrap(module)
    context.module = wrapper.module
    visit_batched(wrapper, [rule(context) for rule in rules])
    return list(context.findings)


def _enclosing_def_lines(facts: FileFacts, line: int) -> tuple[int, ...]:
    return tuple(fact.line for fact in facts.every_function() if fact.line <= line <= fact.end_line)


def _has_needle(rule: type[FileRule], data: bytes) -> bool:
    """Whether a file's bytes let a rule run (a rule without needles runs on any file)."""
    return not rule.NEEDLES or any(needle in data for needle in rule.NEEDLES)


def _file_rules_for(
    facts: FileFacts, data: bytes, index: ProjectIndex, options: RunOptions
) -> list[type[FileRule]]:
    """The file rules that can act on a file: active under the run's settings (an inactive rule's
    visitor returns at once), its bytes hold a needle and the index agrees."""
    return [
        rule
        for rule in options.rules
        if issubclass(rule, FileRule)
        and _has_needle(rule, data)
        and not rule.inactive(options.settings)
        and rule.wants(facts, index)
    ]


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
    rules = _file_rules_for(facts, data, index, options)
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
        spans = [f.target_span or f.span for f in accepted if f.target and f.replacement]
        module = _replace(module, edits, spans)
        first_party = index.top_level_packages()  # the same for every pass of one file
        for source, name in sorted({i for f in accepted for i in f.imports}):
            module = add_from_import(module, source, name, first_party)
        outcome.fixes += len(accepted)
        if attempt == 0:
            applied.update(id(f) for f in accepted)
            deferred.update(id(f) for f in fixable if id(f) not in applied)
        if not dropped:
            break
        converged = False
        rewritten = code(module).encode(module.encoding)
        new_facts, _ = _extract(job, rewritten)
        if new_facts is None:
            break
        current_index = current_index.with_file(new_facts)
        # the gates of the next pass read the text this pass made (a fix may open another rule)
        admitted = set(rules) | set(_file_rules_for(new_facts, rewritten, current_index, options))
        rules = [rule for rule in options.rules if rule in admitted]
        converged = attempt + 1 < MAX_PASSES
    if converged:
        applied |= deferred
    if module is not original:
        keep = index.names_imported_from(facts.module)  # other files' imports: unchanged
        if keep is not None:
            keep |= frozenset(facts.all_names or ())
            # the original tree's code is the text it was parsed from
            text = data.decode(original.encoding, "surrogateescape")
            module = remove_imports_made_unused(original, module, keep, text)
    if module is not original:
        new_data = module_code(module).encode(module.encoding)
        problem = _unparsable(path, new_data)
        problem = problem or _newer_than_target(path, data, new_data, options.settings)
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
                finding.safety,
                id(finding) in applied and options.apply_fixes,
                finding.reason,
                taken=id(finding) in applied,
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
        if isinstance(error, SyntaxError) and _reads_lowered(path, data):
            return None  # syntax newer than this Python, which libcst and the lowered text accept
        line = getattr(error, "lineno", None)
        return FileError(
            path,
            line,
            None,
            f"internal error: a fix produced code that does not parse ({error}); file left unchanged",
        )
    return None


def _newer_than_target(
    path: str, before: bytes, after: bytes, settings: Settings
) -> Optional[FileError]:
    """A fix that wrote syntax the project's declared Python cannot parse, when the file's own code
    could (only grammars up to this Python's are known here; no rule is meant to do it)."""
    target = settings.target_version
    # the fix's text first: it almost always parses, and then the file's own need not be parsed
    if (
        target >= sys.version_info[:2]
        or _parses_for(after, target)
        or not _parses_for(before, target)
    ):
        return None
    version = ".".join(map(str, target))
    return FileError(
        path,
        None,
        None,
        f"internal error: a fix produced code that Python {version} (the target) cannot parse; "
        "file left unchanged",
    )


def _parses_for(data: bytes, version: tuple[int, int]) -> bool:
    try:
        ast.parse(data, feature_version=version)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False
    return True


def _reads_lowered(path: str, data: bytes) -> bool:
    """Whether `depfix.lowering` makes a file this Python's `ast` refuses readable."""
    try:
        parse_source(path, data)
    except (SourceError, SyntaxError, ValueError, RecursionError, MemoryError):
        return False
    return True


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
        iterator = pool.map(function, items, chunksize=max(1, min(8, len(items) // (jobs * 8))))
    try:
        for result in iterator:
            results.append(result)
            if progress is not None:
                progress(stage, len(results), len(items))
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    return results


def _jobs_for(files: Sequence[Path], root: Union[Path, Layout], cwd: Path) -> list[_Job]:
    """A job per file, named from `root`'s layout (a bare root: from the packages among `files`)."""
    layout = (root if isinstance(root, Layout) else Layout(str(root))).with_files(files)
    jobs = []
    for path in files:
        module, aliases = module_names_at(path, layout)
        jobs.append(
            _Job(str(path), display_path(path, cwd), module, aliases, path.name == "__init__.py")
        )
    return jobs


def build_index(
    jobs: Sequence[_Job], facts: Iterable[FileFacts], lazy: Optional[LazySource] = None
) -> ProjectIndex:
    aliases = {alias: job.path for job in jobs for alias in job.aliases}
    return ProjectIndex(facts, aliases, lazy)


def _module_paths(jobs: Sequence[_Job]) -> dict[str, list[str]]:
    """Module name -> the files that may be it, in the precedence a full index gives them.

    A name two files claim from different directories (`x.py` and `src/x.py`) is no file: it maps
    to an empty list, and the index resolves nothing through it (`x.py` beside a package `x/`
    is the package, as Python imports it).
    """
    paths: dict[str, list[str]] = {}
    for job in sorted(jobs, key=lambda j: j.path, reverse=True):  # the last file of a name wins
        paths.setdefault(job.module, []).append(job.path)
    for claims in paths.values():
        folders = {_module_folder(path) for path in claims}
        if len(folders) > 1:
            claims.clear()
    for alias, path in {alias: job.path for job in jobs for alias in job.aliases}.items():
        if paths.get(alias) != []:
            paths.setdefault(alias, []).append(path)
    return paths


def _module_folder(path: str) -> str:
    """`a/x` for `a/x.py` and `a/x/__init__.py`: where a module is, as a name of the folder."""
    folder, name = os.path.split(path)
    return folder if name == "__init__.py" else os.path.join(folder, name[:-3])


_DATA: dict[str, bytes] = {}
"""The bytes of the project's files, for worker processes (inherited by fork)."""


def _extract_read(job: _Job) -> tuple[Optional[FileFacts], Optional[FileError]]:
    return _extract(job, _DATA[job.path])


def _check_read(job: _Job) -> Optional[FileError]:
    return _check_syntax(job, _DATA[job.path])


class _Loader:
    """Facts of project files on demand: from the cache, or parsed (in parallel for batches)."""

    def __init__(
        self,
        jobs: Sequence[_Job],
        data: dict[str, bytes],
        options: RunOptions,
        cache: Optional[Cache],
    ) -> None:
        self.by_path = {job.path: job for job in jobs}
        self.data = data
        self.options = options
        self.cache = cache
        self.hashes = {path: digest(content) for path, content in data.items()} if cache else {}
        self.facts: dict[str, FileFacts] = {}
        self.errors: dict[str, FileError] = {}
        self._tokens: dict[str, frozenset[bytes]] = {}
        self._interfaces: dict[int, tuple[FileFacts, str]] = {}
        self._fingerprints: dict[int, tuple[FileFacts, str]] = {}
        self._facts_keys: dict[int, tuple[FileFacts, str]] = {}
        """The cache key of facts read from the project's files (their digests are cached too)."""
        self.source = LazySource(_module_paths(jobs), self.load, self.mentioning, data)

    def key(self, job: _Job, kind: str, content_hash: Optional[str] = None) -> str:
        content_hash = content_hash or self.hashes[job.path]
        return digest(kind, content_hash, job.path, job.module, job.is_package, LOWERING)

    def extract(self, job: _Job, content: bytes) -> tuple[Optional[FileFacts], Optional[FileError]]:
        """The facts of a file's new content (a fix's), from the cache when a run saw it before."""
        if self.cache is None:
            return _extract(job, content)
        key = self.key(job, "facts", digest(content))
        hit = self.cache.get("facts", key)
        found = hit if isinstance(hit, tuple) else _extract(job, content)
        if found is not hit:
            self.cache.put("facts", key, found)
        if found[0] is not None:
            self._facts_keys[id(found[0])] = (found[0], key)
        return found

    def _record(self, path: str, facts: Optional[FileFacts], error: Optional[FileError]) -> None:
        if facts is not None:
            self.facts[path] = facts
            if self.cache is not None:
                self._facts_keys[id(facts)] = (facts, self.key(self.by_path[path], "facts"))
        else:
            self.source.failed.add(path)
            if error is not None:
                self.errors[path] = error

    def load_many(self, paths: Sequence[str], stage: str = "") -> None:
        global _DATA
        misses = []
        for path in paths:
            if path in self.facts or path in self.source.failed:
                continue
            job = self.by_path[path]
            hit = self.cache.get("facts", self.key(job, "facts")) if self.cache else None
            if isinstance(hit, tuple):
                self._record(path, *hit)
            else:
                misses.append(job)
        _DATA = self.data
        try:
            results = _map(_extract_read, misses, self.options.jobs, stage, self.options.progress)
        finally:
            _DATA = {}
        for job, result in zip(misses, results):
            if self.cache is not None:
                self.cache.put("facts", self.key(job, "facts"), result)
            self._record(job.path, *result)

    def load(self, path: str) -> Optional[FileFacts]:
        """One file's facts (the lazy index's loader); None when it cannot be read or parsed."""
        if path not in self.data:
            return None
        self.load_many([path])
        return self.facts.get(path)

    def tokens(self, path: str) -> frozenset[bytes]:
        """The identifiers (and keywords) a file's bytes contain, comments and strings included."""
        found = self._tokens.get(path)
        if found is None:
            found = self._tokens[path] = frozenset(IDENTIFIER.findall(self.data[path]))
        return found

    def mentioning(self, word: bytes) -> list[str]:
        """The files not loaded yet whose bytes hold `word` (as a whole identifier when it is one)."""
        unloaded = [path for path in self.data if path not in self.facts]
        if IDENTIFIER.fullmatch(word):
            return [path for path in unloaded if word in self.tokens(path)]
        return [path for path in unloaded if word in self.data[path]]

    def interface(self, facts: FileFacts) -> str:
        """The digest of what other files see of a file."""
        return self._digest("interface", self._interfaces, facts, lambda f: digest(_interface(f)))

    def fingerprint(self, facts: FileFacts) -> str:
        """The fingerprint of a file's facts, positions included."""
        return self._digest("fingerprint", self._fingerprints, facts, fingerprint)

    def _digest(
        self,
        kind: str,
        table: dict[int, tuple[FileFacts, str]],
        facts: FileFacts,
        compute: Callable[[FileFacts], str],
    ) -> str:
        """Memoized per facts object, and cached with the facts of a file as it is on disk."""
        known = table.get(id(facts))
        if known is not None and known[0] is facts:  # an id is reused once its object is gone
            return known[1]
        loaded = self._facts_keys.get(id(facts))
        key = loaded[1] if loaded is not None and loaded[0] is facts else None
        value = self.cache.get(kind, key) if self.cache is not None and key else None
        if not isinstance(value, str):
            value = compute(facts)
            if self.cache is not None and key:
                self.cache.put(kind, key, value)
        table[id(facts)] = (facts, value)
        return value

    def check_syntax(self, paths: Sequence[str]) -> list[FileError]:
        """Errors of files that are not indexed (decoding and syntax only)."""
        global _DATA
        found: list[FileError] = []
        misses = []
        for path in paths:
            job = self.by_path[path]
            hit = self.cache.get("syntax", self.key(job, "syntax")) if self.cache else None
            if isinstance(hit, tuple):
                found.extend(e for e in hit if e is not None)
            else:
                misses.append(job)
        _DATA = self.data
        try:
            results = _map(_check_read, misses, self.options.jobs)
        finally:
            _DATA = {}
        for job, error in zip(misses, results):
            if self.cache is not None:
                self.cache.put("syntax", self.key(job, "syntax"), (error,))
            if error is not None:
                found.append(error)
        return found


def _call_name(key: tuple[str, str]) -> bytes:
    """What a direct call of a function (or of its class, for `__init__`) writes."""
    return key[1].removesuffix(".__init__").rsplit(".", 1)[-1].encode()


def _exports_fastapi(index: ProjectIndex, facts: FileFacts) -> bool:
    """Whether a module binds a FastAPI or Starlette name, or an app or router, for others to import."""
    for value in facts.bindings.values():
        resolved = index.resolve(value)
        if isinstance(resolved, External) and resolved.qname.split(".")[0] in (
            "fastapi",
            "starlette",
        ):
            return True
        if index.is_fastapi_object(resolved):
            return True
    return False


def _load_imported(loader: _Loader) -> bool:
    """Load every project module the loaded files import, transitively (and their packages).

    Whether it loaded any file.
    """
    module_paths = loader.source.module_paths
    scanned: set[str] = set()
    loaded = False
    while True:
        wanted: set[str] = set()
        for path, facts in list(loader.facts.items()):
            if path in scanned:
                continue
            scanned.add(path)
            for fact in facts.imports:
                for name in imported_names(fact.target, fact.names):
                    wanted.update(module_paths.get(name, ()))
        new = sorted(p for p in wanted if p not in loader.facts and p not in loader.source.failed)
        if not new:
            return loaded
        loader.load_many(new, "indexing")
        loaded = True


def _lazy_index(
    loader: _Loader,
    jobs: Sequence[_Job],
    targets: set[str],
    acts_on: Callable[[FileFacts, ProjectIndex], bool],
) -> ProjectIndex:
    """The index of the files that matter, grown until nothing it answers depends on another file.

    Starting from the files the prefilter keeps, it adds: every project module they import (the
    import closure holds every provider, base class and cycle through them); every file that names a
    function FastAPI calls (a direct call, for the fix grading); every file that names a target module
    a file rule acts on (its imports, kept when a fix removes an unused one); every file that names a
    module re-exporting FastAPI names or routers (it may use them without mentioning FastAPI). The
    index also loads on demand what a question needs beyond that.
    """
    acted_on: set[str] = set()  # kept once found: loading more files only adds to the index
    while True:
        _load_imported(loader)  # first: resolving names below would load them one by one
        index = build_index(jobs, loader.facts.values(), loader.source)
        words: set[bytes] = set()
        for facts in list(index.files.values()):
            for function in facts.functions.values():
                key = (function.module, function.qualname)
                if index.fastapi_role(key) is not None:
                    words.add(_call_name(key))
            if facts.path in targets and facts.path not in acted_on and acts_on(facts, index):
                acted_on.add(facts.path)
            if facts.path in acted_on or _exports_fastapi(index, facts):
                words.add(facts.module.rsplit(".", 1)[-1].encode())
                if facts.is_package:
                    words.add(b"from .")
        relative = b"from ." in words
        words.discard(b"from .")
        wanted: set[str] = set()
        for path, content in loader.data.items():
            if path not in index.files and (
                not loader.tokens(path).isdisjoint(words) or (relative and b"from ." in content)
            ):
                wanted.add(path)
        new = sorted(p for p in wanted if p not in index.files and p not in loader.source.failed)
        # files the questions above loaded on demand bring their imports too
        if not new and not _load_imported(loader):
            for word in words | ({b"from ."} if relative else set()):
                loader.source.searched(word)  # every file naming it is loaded
            return index
        loader.load_many(new, "indexing")


def run(paths: Sequence[Path], options: RunOptions, cwd: Optional[Path] = None) -> RunResult:
    """Check (and compute fixes for) every file under `paths`, using the whole project for the index."""
    enabled = gc.isenabled()
    # Until the index is built, almost everything allocated is facts that live until the run ends:
    # collections would walk them over and over (a third of a warm run's indexing), to free nothing.
    gc.disable()
    try:
        return _run(paths, options, cwd, enabled)
    finally:
        gc.unfreeze()
        if enabled:
            gc.enable()


def _run(
    paths: Sequence[Path], options: RunOptions, cwd: Optional[Path], enabled: bool
) -> RunResult:
    cwd = cwd or Path.cwd()
    found = discover(paths, options.settings.exclude, options.root)
    layout = found.layout or Layout(str(found.root))
    cache = Cache(found.root) if options.cache else None
    scopes = split_scopes(found.project, layout)
    if len(scopes) == 1:
        result = _run_found(found, paths, options, cwd, enabled, cache)
    else:  # import roots that claim the same module names: each is its own project
        parts: list[RunResult] = []
        for scope in scopes:
            members = set(scope.files)
            targets = [path for path in found.targets if path in members]
            if targets or (scope is scopes[-1] and not parts):
                part = dataclasses.replace(
                    found,
                    targets=targets,
                    project=scope.files,
                    problems=[] if parts else found.problems,
                    layout=scope.layout,
                )
                scope_options, consulted = _scope_options(scope, options)
                part_result = _run_found(part, paths, scope_options, cwd, enabled, cache)
                if consulted:  # a copy: the result may be the cache's own entry
                    part_result = dataclasses.replace(
                        part_result, inputs=[*part_result.inputs, *map(str, consulted)]
                    )
                parts.append(part_result)
        result = _merged(parts)
    skipped = [*result.skipped]  # a copy: the result may be the cache's own entry
    skipped += [(display_path(path, cwd) + "/", reason) for path, reason in found.skipped]
    for scope in scopes:
        if scope.layout.scope is not None and scope.collision is not None:
            name, other = scope.collision
            skipped.append(
                (
                    display_path(Path(scope.layout.scope), cwd) + "/",
                    f"checked as a project of its own: its module {name} is also "
                    f"{display_path(other, cwd)}, of another import root",
                )
            )
    result = dataclasses.replace(result, skipped=sorted(skipped))
    if cache is not None:
        cache.save()
    return result


def _scope_options(scope: Scope, options: RunOptions) -> tuple[RunOptions, list[Path]]:
    """The options a scope is checked with, and the files they were read from: a scope that is a
    project of its own (a `part-1/` with its own pyproject.toml) has its own FastAPI version and
    Python, as a run started there would read them; the lower FastAPI bound of the two when it
    declares none (never writing `Annotated` for a FastAPI that predates it)."""
    if scope.layout.scope is None:
        return options, []
    directory = Path(scope.layout.scope)
    if not any((directory / marker).is_file() for marker in ROOT_MARKERS):
        return options, []
    settings = with_project_facts(options.settings, directory)
    if settings.fastapi_version is None and options.settings.fastapi_version is not None:
        settings = dataclasses.replace(
            settings,
            fastapi_version=options.settings.fastapi_version,
            origins={
                **settings.origins,
                "fastapi-version": options.settings.origin("fastapi-version"),
            },
        )
    return dataclasses.replace(options, settings=settings), consulted_files(directory)


def _merged(parts: Sequence[RunResult]) -> RunResult:
    """One result of the runs of several scopes (their files are disjoint)."""
    result = RunResult()
    for number, part in enumerate(parts):
        result.files_scanned += part.files_scanned
        result.diagnostics.extend(part.diagnostics)
        result.errors.extend(part.errors)
        result.fixes += part.fixes
        result.unindexed.extend(part.unindexed)
        result.notes.extend(part.notes)
        result.inputs.extend(part.inputs)
        result.skipped.extend(part.skipped)
        # a group is written all-or-nothing: the groups of two scopes stay apart
        result.changes.extend(
            dataclasses.replace(change, group=change.group * len(parts) + number)
            for change in part.changes
        )
    result.diagnostics.sort(key=Diagnostic.sort_key)
    result.notes.sort(key=Diagnostic.sort_key)
    result.errors.sort(key=lambda e: (e.path, e.line or 0, e.column or 0, e.message))
    result.inputs = list(dict.fromkeys(result.inputs))
    scopes = [part.replay for part in parts]
    if all(scope is not None for scope in scopes):
        result.replay = ReplayScope(
            {path: entry for scope in scopes if scope for path, entry in scope.files.items()},
            sorted({needle for scope in scopes if scope for needle in scope.needles}),
            sorted({word for scope in scopes if scope for word in scope.words}),
        )
    return result


def _run_found(
    found: Discovery,
    paths: Sequence[Path],
    options: RunOptions,
    cwd: Path,
    enabled: bool,
    cache: Optional[Cache],
) -> RunResult:
    """The run of one scope of the project (all of it, unless import roots collide)."""
    global _STATE
    result = RunResult(inputs=[str(path) for path in (*found.inputs, *found.project)])
    for problem_path, message in found.problems:
        result.errors.append(FileError(display_path(problem_path, cwd), None, None, message))
    layout = found.layout or Layout(str(found.root))
    jobs = _jobs_for(found.project, layout, cwd)
    target_paths = [display_path(path, cwd) for path in found.targets]
    target_set = set(target_paths)
    run_key = _run_key(found, paths, options, cwd) if cache is not None else None
    if cache is not None and run_key is not None:
        hit = cache.get("run", run_key)
        if isinstance(hit, RunResult):  # nothing changed since a run with the same settings
            return hit
    data: dict[str, bytes] = {}
    for job in jobs:
        try:
            data[job.path] = read_source(Path(job.absolute)).data
        except SourceError as error:
            problem = FileError(job.path, error.line, error.column, error.message)
            (result.errors if job.path in target_set else result.unindexed).append(problem)
    loader = _Loader(jobs, data, options, cache)
    claimed = {name for name, paths in loader.source.module_paths.items() if not paths}
    for job in jobs:  # a name two files claim from different places: resolved to neither
        if job.module in claimed:
            others = [j.path for j in jobs if j.module == job.module and j is not job]
            result.skipped.append(
                (
                    job.path,
                    f"module {job.module} is also {', '.join(others)}: what imports it is not "
                    "resolved to either",
                )
            )
    extra = [rule.INDEX_NEEDLES for rule in options.rules]
    whole = any(needles is None for needles in extra) or any(
        _plans_projects(rule) and not rule.FASTAPI_ONLY for rule in options.rules
    )
    needles = tuple(needle for group in extra if group for needle in group)
    seed = [path for path, content in data.items() if whole or matters(content, needles)]
    for rule in options.rules:  # rules that may act on any file: the targets they can act on
        if issubclass(rule, FileRule) and not rule.FASTAPI_ONLY:
            seed += [p for p in target_paths if p in data and _has_needle(rule, data[p])]
    loader.load_many(seed, "indexing")
    index = _lazy_index(
        loader,
        jobs,
        target_set,
        lambda facts, index: (
            facts.path in data and bool(_file_rules_for(facts, data[facts.path], index, options))
        ),
    )
    # The bytes and facts of the project live until the run ends: spare the collector walking them
    # at every full collection (a run grew faster than its files) and touching the pages forked
    # workers share with this process.
    gc.freeze()
    if enabled:
        gc.enable()
    unchecked = [
        p for p in target_paths if p in data and p not in loader.facts and p not in loader.errors
    ]
    result.errors.extend(loader.check_syntax(unchecked))
    for path, problem in sorted(loader.errors.items()):
        (result.errors if path in target_set else result.unindexed).append(problem)
    project = _Project(found.project, layout, cwd, jobs, loader.facts, index)
    project.lazy = loader.source
    project.loader = loader
    project.given = [Path(os.path.abspath(cwd / path)) for path in paths]
    planners = [rule for rule in options.rules if _plans_projects(rule)]
    originals: dict[str, Optional[SourceFile]] = {}
    changed: set[str] = set()
    # What each target file's rules said when they last ran on it, and the key they ran under: a
    # file whose key has not moved since would be told the same (see `_outcome_keys`).
    latest: dict[str, tuple[str, FileOutcome]] = {}
    pending: list[Diagnostic] = []  # what the last planning found and did not apply
    planned: Optional[ProjectIndex] = None  # the index the last planning saw
    fixing_rounds = MAX_ROUNDS if planners else 1
    # apply reports what is left as a check of its result would (`_left`): once the fixing rounds
    # are over, when they changed anything, a last round re-runs the rules wherever a file's outcome
    # key moved since they last ran on it (and the planning, when the index moved since), fixing
    # nothing.
    verifying = False
    for round_number in range(fixing_rounds + 1):
        if round_number == fixing_rounds:
            verifying = True
        if verifying and not (options.apply_fixes and project.overlay):
            break
        touched: set[str] = set()
        if planners and not (verifying and project.index is planned):
            planned = project.index
            on_disk = _OnDisk(data, dict(project.overlay))  # what the planning reads
            touched, pending = _plan_projects(
                planners,
                project,
                options,
                result,
                round_number,
                take=not verifying,
                on_disk=on_disk,
            )
            project.refresh(touched, result)
            target_paths.extend(
                sorted(p for p in touched if p in project.created and p not in target_set)
            )
            target_set.update(touched & project.created)
        _STATE = _State(project.index, options, project.overlay, project.by_path)
        try:
            checked = [path for path in target_paths if path in project.by_path]
            if round_number and not touched and not verifying:
                # Nothing new was planned: only the files the last round rewrote can hold more.
                checked = [path for path in checked if path in changed]
            # only files some rule can act on are processed (and keyed, and sent to the workers)
            busy = [p for p in checked if _needs_rules(p, project, data, options)]
            on_disk = _OnDisk(data, dict(project.overlay))  # what the file rules read
            keys: dict[str, str] = {}
            if cache is not None or options.apply_fixes:  # `_left` compares them
                keys = _outcome_keys(busy, project.index, loader, options, project.overlay)
            for path in set(checked).difference(busy):
                latest[path] = ("", FileOutcome(path))
            if verifying:
                # The rules run again only where their answer may differ from the last time they
                # ran: the files the last round rewrote, and every file whose index facts moved.
                checked = busy = [p for p in busy if latest.get(p, ("",))[0] != keys.get(p)]
            cached = {p: cache.get("outcomes", keys[p]) for p in keys} if cache else {}
            misses = [p for p in busy if not isinstance(cached.get(p), FileOutcome)]
            computed = {p: FileOutcome(p) for p in set(checked).difference(busy)}
            computed.update(
                zip(misses, _map(_process, misses, options.jobs, "checking", options.progress))
            )
            outcomes = []
            for path in checked:
                if path in computed:
                    outcome = computed[path]
                    if cache is not None and path in keys and outcome.original is not None:
                        cache.put(
                            "outcomes", keys[path], dataclasses.replace(outcome, original=None)
                        )
                else:
                    outcome = dataclasses.replace(cached[path])
                    outcome.original = _source_file(project.by_path[path], data)
                outcomes.append(outcome)
                latest[path] = (keys.get(path, ""), outcome)
        finally:
            _STATE = None
        if verifying:
            break
        changed = set()
        later: list[Diagnostic] = []
        for outcome in outcomes:
            if round_number == 0:
                # a file this run creates has no place in the original tree to report at
                result.diagnostics.extend(
                    on_disk(d) for d in outcome.diagnostics if d.path not in project.created
                )
                result.errors.extend(outcome.errors)
            else:  # a later round reports only what it fixed (the rest was reported already)
                later.extend(on_disk(d) for d in outcome.diagnostics)
                result.errors.extend(e for e in outcome.errors if e not in result.errors)
            originals.setdefault(outcome.path, outcome.original)
            if outcome.new_data is not None:
                project.overlay[outcome.path] = outcome.new_data
                changed.add(outcome.path)
        if later:
            _report_later_fixes(result, later, project.created)
        if not (touched or changed):
            verifying = True  # the fixes are done: what is left comes next
            continue
        project.refresh(changed, result)
    if options.apply_fixes and project.overlay:
        result.diagnostics[:] = [
            *(d for d in result.diagnostics if d.fix is not None and d.fix.taken),
            *_left(latest, pending, target_paths, project),
        ]
    # A fix counts where it is reported: one inside a file the run creates is part of the fix
    # that creates it, and `check` lists exactly the fixes `apply` makes.
    result.fixes = sum(1 for d in result.diagnostics if d.fix is not None and d.fix.taken)
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
    if (
        options.replay
        and not whole
        and all(rule.FASTAPI_ONLY for rule in options.rules if issubclass(rule, FileRule))
    ):
        result.replay = _replay_scope(project, loader, result, needles)
    if cache is not None and run_key is not None:
        cache.put("run", run_key, result)
    return result


def _needs_rules(path: str, project: _Project, data: dict[str, bytes], options: RunOptions) -> bool:
    facts = project.index.file(path)
    if facts is None:
        return False
    content = project.overlay.get(path, data.get(path))
    if options.replay:  # which rules the facts let run, whatever the bytes
        wanting = [
            rule
            for rule in options.rules
            if issubclass(rule, FileRule) and rule.wants(facts, project.index)
        ]
        project.wanting.setdefault(path, set()).update(wanting)
        busy = content is None or any(_has_needle(rule, content) for rule in wanting)
    else:
        busy = content is None or bool(_file_rules_for(facts, content, project.index, options))
    if busy:
        project.busy.add(path)
    return busy


def _replay_scope(
    project: _Project, loader: _Loader, result: RunResult, needles: Sequence[bytes]
) -> ReplayScope:
    """The files an edit of which cannot change `result` while their facts stay the same."""
    involved = {*project.busy, *project.read, *project.overlay, *loader.source.failed}
    involved.update(d.path for d in (*result.diagnostics, *result.notes, *result.details))
    involved.update(e.path for e in (*result.errors, *result.unindexed))
    files: dict[str, tuple[str, str, bool, Optional[str], list[str]]] = {}
    for path in loader.data:
        job = project.by_path[path]
        wanting = project.wanting.get(path, set())
        if path in involved or any(not rule.NEEDLES for rule in wanting):
            continue
        facts = loader.facts.get(path)
        rule_needles = sorted({n.decode("latin-1") for rule in wanting for n in rule.NEEDLES})
        facts_print = loader.fingerprint(facts) if facts is not None else None
        files[job.absolute] = (path, job.module, job.is_package, facts_print, rule_needles)
    return ReplayScope(
        files,
        [needle.decode("latin-1") for needle in needles],
        [word.decode("latin-1") for word in loader.source.searched_words()],
    )


def _source_file(job: _Job, data: dict[str, bytes]) -> Optional[SourceFile]:
    try:
        source = read_source(Path(job.absolute))
    except SourceError:
        return None
    return source if source.data == data.get(job.path) else None


def _settings_key(options: RunOptions) -> str:
    return digest(
        options.settings,  # in its canonical form: sets sorted
        sorted(rule.CODE for rule in options.rules),
        options.apply_fixes,
        options.unsafe,
        options.suppress,
    )


def _run_key(
    found: Discovery, paths: Sequence[Path], options: RunOptions, cwd: Path
) -> Optional[str]:
    """The whole run's key: settings, paths, and the status of every file; None when racy.

    The change time is part of it: an edit that keeps the size and puts the modification time back
    still moves it.
    """
    stats = []
    limit = time.time_ns() - RACY_NS
    for path in found.project:
        try:
            stat = path.stat()
        except OSError:
            return None
        if stat.st_mtime_ns > limit:
            return None
        stats.append(
            (str(path), stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino, stat.st_mode)
        )
    return digest(
        _settings_key(options),
        LOWERING,
        str(cwd),
        [str(p) for p in paths],
        [str(p) for p in found.targets],
        [(str(p), m) for p, m in found.problems],
        str(found.root),
        found.layout.key() if found.layout is not None else None,
        stats,
    )


_POSITIONS = ("line", "column", "end_line", "end_column", "definition_line")


def _interface(facts: FileFacts) -> tuple[object, ...]:
    """What other files can see of a file, without positions (an edit that moves lines keeps it).

    Reprs are stable: facts hold tuples and dicts in source order; the one set is sorted here.
    """

    def plain(items: Iterable[Any]) -> list[str]:
        return [
            repr(dataclasses.replace(item, **{k: 0 for k in _POSITIONS if hasattr(item, k)}))
            for item in items
        ]

    classes = [
        dataclasses.replace(c, methods=frozenset()) if c.methods else c
        for c in facts.classes.values()
    ]
    return (
        facts.path,
        facts.module,
        facts.is_package,
        plain(facts.functions.values()),
        plain(classes),
        [sorted(c.methods) for c in facts.classes.values()],
        plain(facts.routes),
        plain(facts.dependency_refs),
        plain(facts.overrides),
        plain(facts.imports),
        repr(facts.bindings),
        sorted(facts.rebound),
        facts.star_imports,
        facts.all_names,
        plain(facts.steps),
    )


def _outcome_keys(
    paths: Sequence[str],
    index: ProjectIndex,
    loader: _Loader,
    options: RunOptions,
    overlay: dict[str, bytes],
) -> dict[str, str]:
    """Per file: its content, the settings, and the index facts its outcome can depend on.

    Those are the facts of the files it imports (transitively: a file rule sees other files only
    through the index, so an edit that keeps a module's facts keeps its importers' outcomes), the
    visible facts of every indexed file (routes, markers, signatures, imports: whatever decides what
    FastAPI calls or what a name is), the direct calls of its own routes and dependencies, and what
    other files import from it.
    """
    shared = digest(
        _settings_key(options),
        sorted(index.top_level_packages()),
        [loader.interface(facts) for facts in sorted(index.files.values(), key=lambda f: f.path)],
    )
    closures = _closure_digests(index, loader)
    hashes = dict(loader.hashes)
    hashes.update((path, digest(data)) for path, data in overlay.items())
    keys = {}
    for path in paths:
        if path not in hashes and path in loader.data:  # without a cache nothing is hashed yet
            hashes[path] = loader.hashes[path] = digest(loader.data[path])
        facts = index.file(path)
        if facts is None or path not in hashes or facts.module not in closures:
            continue
        calls = [
            index.direct_calls((f.module, f.qualname))
            for f in facts.functions.values()
            if index.fastapi_role((f.module, f.qualname)) is not None
        ]
        imported = index.names_imported_from(facts.module)
        keys[path] = digest(  # reprs: all of these are in a stable order already
            shared,
            hashes[path],
            closures[facts.module],
            repr(calls),
            repr(sorted(imported) if imported is not None else None),
        )
    return keys


def _closure_digests(index: ProjectIndex, loader: _Loader) -> dict[str, str]:
    """Per indexed module: a digest of the facts of every module it imports, transitively.

    A Merkle digest over the graph of import cycles: a cycle's digest covers its members' facts
    (positions included) and the digests of the cycles it imports, so it changes when any module
    its members reach changes, and each is computed once per round instead of once per file.
    """
    graph = index.import_graph(frozenset({"eager", "local", "type_checking"}))
    components = strongly_connected(graph)  # each after every component it reaches
    component_of = {
        module: number for number, members in enumerate(components) for module in members
    }
    digests: list[str] = []
    for number, members in enumerate(components):
        reached = {child for module in members for child in graph.get(module, ())}
        outside = sorted(c for c in reached if c not in component_of)  # not indexed: no own node
        facts = [index.modules[m] for m in (*sorted(members), *outside) if m in index.modules]
        imported = {component_of[c] for c in reached if c in component_of} - {number}
        digests.append(
            digest(
                repr([(f.path, loader.fingerprint(f)) for f in facts]),
                sorted(digests[component] for component in imported),
            )
        )
    return {module: digests[number] for module, number in component_of.items()}


def _report_later_fixes(
    result: RunResult, diagnostics: Iterable[Diagnostic], created: set[str]
) -> None:
    """Add what a later round fixed, replacing what an earlier round said of the same site.

    A site an earlier round could not fix (an alias that had to wait for an import cycle to go) is
    no longer left once a later round fixes it. Fixes inside a file the run creates belong to the
    change that creates it: they have no place in the original tree to be reported at.
    """
    fixed = [d for d in diagnostics if d.fix is not None and d.fix.taken]
    sites = {(d.path, d.line, d.column, d.code) for d in fixed}
    keys = {(d.code, d.key) for d in fixed if d.key}
    result.diagnostics[:] = [
        d
        for d in result.diagnostics
        if (d.fix is not None and d.fix.taken)
        or ((d.path, d.line, d.column, d.code) not in sites and (d.code, d.key) not in keys)
    ]
    result.diagnostics.extend(d for d in fixed if d.path not in created)


def _left(
    latest: Mapping[str, tuple[str, FileOutcome]],
    pending: Iterable[Diagnostic],
    target_paths: Iterable[str],
    project: _Project,
) -> list[Diagnostic]:
    """What a check of the run's result reports: the diagnostics of the last time the rules ran on
    each file (under the key the file still has) and of the last planning, none of them fixed."""
    left = list(pending)
    for path in dict.fromkeys(target_paths):
        if path in latest and path in project.by_path:
            left.extend(latest[path][1].diagnostics)
    return [
        d
        if d.fix is None
        else dataclasses.replace(d, fix=dataclasses.replace(d.fix, applied=False, taken=False))
        for d in left
    ]


def _plans_projects(rule: Rule) -> bool:
    """Whether a rule overrides `plan_project` (project rules, and file rules with a project part)."""
    return rule.plan_project.__func__ is not RuleInfo.plan_project.__func__  # type: ignore[attr-defined]


class _Project:
    """The project as this run sees it: files, the overlay of new contents, and the index of both."""

    def __init__(
        self,
        files: Sequence[Path],
        layout: Layout,
        cwd: Path,
        jobs: list[_Job],
        facts: dict[str, FileFacts],
        index: ProjectIndex,
    ) -> None:
        self.files = list(files)
        self.layout = layout
        """Where module names start from (the run's, from discovery)."""
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
        self.lazy: Optional[LazySource] = None
        self.loader: Optional[_Loader] = None
        self.busy: set[str] = set()
        """Files some file rule ran on, in any round."""
        self.wanting: dict[str, set[type[FileRule]]] = {}
        """The file rules the facts of a file let run, in any round (with `RunOptions.replay`)."""
        self.read: set[str] = set()
        """Files whose bytes project rules read."""

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
            added = [Path(os.path.abspath(self.cwd / path)) for path in new]
            self.files.extend(added)
            layout = self.layout.with_files(self.files)
            if any(path.name == "__init__.py" for path in added):  # module names may change
                self.jobs = _jobs_for(sorted(set(self.files)), layout, self.cwd)
            else:  # the packages stay: only the new files need a job
                jobs = _jobs_for(added, layout, self.cwd)
                self.jobs = sorted([*self.jobs, *jobs], key=lambda job: Path(job.absolute))
            self.by_path = {job.path: job for job in self.jobs}
        extract = self.loader.extract if self.loader is not None else _extract
        for path in sorted(paths):
            new_facts, error = extract(self.by_path[path], self.overlay[path])
            if new_facts is not None:
                self.facts[path] = new_facts
            elif error is not None and error not in result.errors:
                result.errors.append(error)
        if self.lazy is not None and new:
            self.lazy.module_paths = _module_paths(self.jobs)
        self.index = build_index(self.jobs, self.facts.values(), self.lazy)


def _plan_projects(
    planners: Sequence[Rule],
    project: _Project,
    options: RunOptions,
    result: RunResult,
    round_number: int,
    take: bool = True,
    on_disk: Optional[Callable[[Diagnostic], Diagnostic]] = None,
) -> tuple[set[str], list[Diagnostic]]:
    """Run the project planning of rules and apply their changesets to the overlay.

    A changeset is taken whole or not at all: one that touches a file an earlier changeset of this
    round touched, or a path outside the project, is reported without being applied. Later rounds
    report only the changesets they apply. Returns the files changed and what was found and not
    applied (all of it when `take` is false: a planning that only reports). What it reports goes
    through `on_disk` (to the files as they are on disk); what it returns keeps the positions of
    the text it read.
    """
    sources = _SourceView(project.by_path, project.overlay, project)
    touched: set[str] = set()
    pending: list[Diagnostic] = []
    taken: list[Changeset] = []
    for number, rule in enumerate(planners):
        for finding in rule.plan_project(project.index, options.settings, sources):
            changeset = finding.changeset
            fix = None
            applied = False
            outside: list[str] = []
            if changeset is not None and finding.safety is not None:
                wanted = take and (finding.safety == SAFE or options.unsafe)
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
                fix = FixInfo(
                    finding.safety, applied and options.apply_fixes, finding.reason, taken=applied
                )
            span = finding.span
            message = finding.message
            if changeset is None and finding.reason and not finding.info:
                message = f"{message} (no fix: {finding.reason})"
            elif changeset is not None and outside:
                message = (
                    f"{message} (not applied: it would write {outside[0]}, outside the given paths)"
                )
            diagnostic = Diagnostic(
                finding.path,
                span.line,
                span.column,
                span.end_line,
                span.end_column,
                finding.code,
                rule.NAME,
                message,
                fix,
                finding.key,
            )
            if finding.info:
                if round_number == 0:
                    (result.details if finding.verbose else result.notes).append(diagnostic)
                continue
            if not applied:
                pending.append(diagnostic)
                if round_number:
                    continue
            shown = on_disk(diagnostic) if on_disk is not None else diagnostic
            if round_number:
                _report_later_fixes(result, [shown], project.created)
            else:
                result.diagnostics.append(shown)
    return touched, pending


class _OnDisk:
    """A diagnostic of a text the run rewrote, at the same place in the file on disk (`check`
    reports about the files as they are; only `apply`'s list of what is left is about its result)."""

    def __init__(self, original: Mapping[str, bytes], texts: Mapping[str, bytes]) -> None:
        self.original = original
        self.texts = texts  # the rewritten texts the diagnostics were found in, by path
        self.maps: dict[str, DiskPositions] = {}

    def __call__(self, diagnostic: Diagnostic) -> Diagnostic:
        path = diagnostic.path
        text = self.texts.get(path)
        original = self.original.get(path)
        if text is None or original is None or text == original:
            return diagnostic
        if path not in self.maps:
            self.maps[path] = DiskPositions(text, original)
        line, column, end_line, end_column = self.maps[path].span(
            diagnostic.line, diagnostic.column, diagnostic.end_line, diagnostic.end_column
        )
        return dataclasses.replace(
            diagnostic, line=line, column=column, end_line=end_line, end_column=end_column
        )


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
        if self._project is not None:
            self._project.read.add(path)
        if path in self._overlay:
            return self._overlay[path]
        data = read_source(Path(self._jobs[path].absolute)).data
        self[path] = data
        return data
