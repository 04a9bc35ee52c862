"""The `depfix` command line: apply, check, rules, explain, config (see SPEC.md for the contract).

Reports and diffs go to stdout; the summary line, progress and logs go to stderr. Usage and
configuration problems exit 2 with one line naming the problem, before any file is touched.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.progress import Progress, TaskID

from depfix import __version__, replay
from depfix.bot import DEFAULT_AUTHOR, Bot, BotError, Committed
from depfix.config import (
    ConfigError,
    Settings,
    consulted_files,
    load_settings,
    parse_codes,
    parse_target_version,
    settings_as_json,
    settings_as_toml,
)
from depfix.diffing import unified_diff
from depfix.docs import explain_text
from depfix.engine import FileError, RunOptions, RunResult, run
from depfix.io import PendingWrite, SourceError, remove_stale_temporaries, write_atomically
from depfix.jobsummary import CommitNote, append_summary, render_summary
from depfix.report import FORMATS, error_line, render, summary_line
from depfix.roots import find_project_root
from depfix.rules import registered_rules, select_rules

app = typer.Typer(
    name="depfix",
    help="Find and fix FastAPI dependency-injection mistakes across a whole repository.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

PathsArgument = Annotated[
    Optional[list[Path]],
    typer.Argument(help="Files or directories (default: the current directory)."),
]
SelectOption = Annotated[
    Optional[str],
    typer.Option("--select", help="Comma list of rule codes or prefixes to run (DF00)."),
]
IgnoreOption = Annotated[
    Optional[str], typer.Option("--ignore", help="Comma list of codes to skip.")
]
FormatOption = Annotated[
    str, typer.Option("--format", help=f"Report format: {', '.join(FORMATS)}.")
]
TargetOption = Annotated[
    Optional[str],
    typer.Option("--target-version", help="Python version the code runs on (py38..py314)."),
]
ConfigOption = Annotated[
    Optional[Path],
    typer.Option("--config", help="A TOML file with depfix settings ([tool.depfix])."),
]
JobsOption = Annotated[
    int, typer.Option("--jobs", "-j", help="Worker processes (default: CPU count).")
]
NoCacheOption = Annotated[
    bool,
    typer.Option(
        "--no-cache",
        envvar="DEPFIX_NO_CACHE",
        help="Neither read nor write the cache (.depfix_cache/ at the project root).",
    ),
]
QuietOption = Annotated[bool, typer.Option("--quiet", "-q", help="No summary line on stderr.")]
VerboseOption = Annotated[
    bool, typer.Option("--verbose", "-v", help="Log each step and tracebacks.")
]
ExitZeroOption = Annotated[
    bool,
    typer.Option(
        "--exit-zero", help="Exit 0 even when diagnostics are found (errors still exit 2)."
    ),
]
NoSuppressOption = Annotated[
    bool, typer.Option("--no-suppress", help="Ignore `# depfix: ignore` comments (to audit them).")
]
SummaryOption = Annotated[
    Optional[Path],
    typer.Option(
        "--summary",
        help="Append a Markdown summary (counts per rule, the diff) to FILE, e.g. $GITHUB_STEP_SUMMARY.",
    ),
]


class UsageProblem(Exception):
    """Bad usage found before any file is touched: exit 2 with one line."""


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"depfix {__version__}")
        raise typer.Exit(0)


@app.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version_callback, is_eager=True, help="Print the version."
        ),
    ] = False,
) -> None:
    """Find and fix FastAPI dependency-injection mistakes across a whole repository."""


def _settings(
    paths: Sequence[Path],
    config: Optional[Path],
    select: Optional[str],
    ignore: Optional[str],
    target: Optional[str],
) -> Settings:
    root = find_project_root(paths)
    settings = load_settings(root, config)
    settings = settings.with_overrides(
        origin="--select", select=parse_codes(select, "--select") if select is not None else None
    )
    settings = settings.with_overrides(
        origin="--ignore", ignore=parse_codes(ignore, "--ignore") if ignore is not None else None
    )
    return settings.with_overrides(
        origin="--target-version",
        target_version=parse_target_version(target) if target is not None else None,
    )


def _prepare(
    paths: Optional[list[Path]],
    output_format: str,
    config: Optional[Path],
    select: Optional[str],
    ignore: Optional[str],
    target: Optional[str],
    jobs: int,
) -> tuple[list[Path], Settings]:
    chosen = list(paths) if paths else [Path(".")]
    missing = [str(path) for path in chosen if not os.path.lexists(path)]
    if missing:
        raise UsageProblem(f"no such file or directory: {', '.join(missing)}")
    if output_format not in FORMATS:
        raise UsageProblem(f"--format: expected one of {', '.join(FORMATS)}, got {output_format!r}")
    if jobs < 0:
        raise UsageProblem(f"--jobs: expected 0 (all CPUs) or more, got {jobs}")
    settings = _settings(chosen, config, select, ignore, target)
    _check_codes(settings)
    return chosen, settings


def _check_codes(settings: Settings) -> None:
    known = [rule.CODE for rule in registered_rules()]
    for code in (*(settings.select or ()), *settings.ignore):
        if code != "ALL" and not any(known_code.startswith(code) for known_code in known):
            raise UsageProblem(f"no rule matches {code!r} (known rules: {', '.join(known)})")


def _execute(
    paths: Sequence[Path],
    settings: Settings,
    *,
    apply_fixes: bool,
    unsafe: bool,
    jobs: int,
    suppress: bool,
    quiet: bool = False,
    cache: bool = True,
) -> RunResult:
    rules = select_rules(settings.select, settings.ignore)
    if not quiet:
        for rule in rules:
            reason = rule.inactive(settings)
            if reason:
                typer.echo(f"depfix: note: {rule.CODE} does nothing here: {reason}", err=True)
    with ProgressBar(enabled=sys.stderr.isatty() and not quiet) as progress:
        options = RunOptions(
            rules=rules,
            settings=settings,
            apply_fixes=apply_fixes,
            unsafe=unsafe or settings.unsafe,
            jobs=jobs or os.cpu_count() or 1,
            suppress=suppress,
            progress=progress.update if progress.enabled else None,
            cache=cache,
            replay=cache and replay.recording(),
        )
        return run(paths, options)


class ProgressBar:
    """A progress bar on stderr for long runs (a terminal only; it disappears when done)."""

    MIN_FILES = 200

    def __init__(self, enabled: bool, console: Optional[Console] = None) -> None:
        self.enabled = enabled
        self.console = console or Console(stderr=True)
        self._bar: Optional[Progress] = None
        self._tasks: dict[str, TaskID] = {}

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._bar is not None:
            self._bar.stop()

    def update(self, stage: str, done: int, total: int) -> None:
        if total < self.MIN_FILES:
            return
        if self._bar is None:
            self._bar = Progress(console=self.console, transient=True)
            self._bar.start()
        if stage not in self._tasks:
            self._tasks[stage] = self._bar.add_task(stage, total=total)
        self._bar.update(self._tasks[stage], completed=done)


def _write(result: RunResult) -> None:
    """Write every change, each group of files all-or-nothing; failures become file errors."""
    remove_stale_temporaries([change.absolute.parent for change in result.changes])
    groups: dict[int, list[PendingWrite]] = {}
    for change in result.changes:
        groups.setdefault(change.group, []).append(
            PendingWrite(change.absolute, change.new, change.original)
        )
    failed: set[str] = set()
    for group in sorted(groups):
        try:
            write_atomically(groups[group])
        except SourceError as error:
            paths = [change.path for change in result.changes if change.group == group]
            failed.update(paths)
            result.errors.append(FileError(paths[0], error.line, error.column, error.message))
    if failed:
        result.changes = [change for change in result.changes if change.path not in failed]


def _colour(diff: bytes) -> bytes:
    lines = []
    for line in diff.splitlines(keepends=True):
        if line.startswith((b"+++", b"---", b"diff --git", b"new file")):
            lines.append(b"\x1b[1m" + line.rstrip(b"\n") + b"\x1b[0m\n")
        elif line.startswith(b"+"):
            lines.append(b"\x1b[32m" + line.rstrip(b"\n") + b"\x1b[0m\n")
        elif line.startswith(b"-"):
            lines.append(b"\x1b[31m" + line.rstrip(b"\n") + b"\x1b[0m\n")
        elif line.startswith(b"@@"):
            lines.append(b"\x1b[36m" + line.rstrip(b"\n") + b"\x1b[0m\n")
        else:
            lines.append(line)
    return b"".join(lines)


def _emit_diff(result: RunResult) -> None:
    out = sys.stdout.buffer
    colour = sys.stdout.isatty() and not os.environ.get("NO_COLOR")
    for change in sorted(result.changes, key=lambda c: c.path):
        old = change.original.data if change.original is not None else None
        diff = unified_diff(change.path, old, change.new)
        out.write(_colour(diff) if colour else diff)
    out.flush()


def _finish(
    result: RunResult,
    *,
    output_format: str,
    quiet: bool,
    written: bool,
    diff: bool = False,
    unsafe: bool = False,
    verbose: bool = False,
) -> None:
    """Print the run: a diff or the report on stdout; errors and the summary on stderr.

    With a diff and the text format, diagnostics go to stderr so that stdout stays a clean patch.
    With `verbose`, stderr also says which directories named like build output or virtualenvs were
    skipped or checked, and why.
    """
    if verbose and not quiet:
        for path, reason in result.skipped:
            typer.echo(f"depfix: {path}: {reason}", err=True)
    shown = result
    if written and output_format == "text":  # after writing, list only what is left to do
        left = [d for d in result.diagnostics if d.fix is None or not d.fix.applied]
        shown = dataclasses.replace(result, diagnostics=left)
    report = render(shown, output_format, unsafe=unsafe)
    if diff and output_format == "text":
        _emit_diff(result)
        sys.stderr.write(report)
    elif report:
        sys.stdout.write(report)
        sys.stdout.flush()
    if output_format == "text":
        for error in result.errors:
            typer.echo(error_line(error), err=True)
        if not quiet:
            for note in (*result.notes, *(result.details if verbose else ())):
                typer.echo(
                    f"{note.path}:{note.line}:{note.column}: note: {note.code} {note.message}",
                    err=True,
                )
    if result.unindexed and not quiet:
        first = error_line(result.unindexed[0])
        count = len(result.unindexed)
        typer.echo(
            f"depfix: warning: {count} project file{'s' if count != 1 else ''} outside the given paths "
            f"could not be indexed, so facts from them are missing (first: {first})",
            err=True,
        )
    if not quiet:
        typer.echo(summary_line(result, written), err=True)


def _exit_code(result: RunResult, *, found: bool, exit_zero: bool) -> int:
    code = 1 if found and not exit_zero else 0
    return code | (2 if result.errors else 0)


@app.command("apply")
def apply_command(
    paths: PathsArgument = None,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", "--diff", help="Write nothing; print a unified diff to stdout."),
    ] = False,
    check: Annotated[
        bool, typer.Option("--check", help="Write nothing; exit 1 when a fix is available.")
    ] = False,
    unsafe: Annotated[
        bool, typer.Option("--unsafe", help="Also apply fixes graded unsafe.")
    ] = False,
    select: SelectOption = None,
    ignore: IgnoreOption = None,
    output_format: FormatOption = "text",
    target_version: TargetOption = None,
    config: ConfigOption = None,
    jobs: JobsOption = 0,
    no_cache: NoCacheOption = False,
    quiet: QuietOption = False,
    verbose: VerboseOption = False,
    exit_zero: ExitZeroOption = False,
    no_suppress: NoSuppressOption = False,
    summary: SummaryOption = None,
    commit: Annotated[
        bool,
        typer.Option(
            "--commit", help="Commit the fixes (only them) to the current git branch: the CI bot."
        ),
    ] = False,
    push: Annotated[
        bool, typer.Option("--push", help="With --commit: push the commit (to the upstream).")
    ] = False,
    remote: Annotated[
        Optional[str], typer.Option("--remote", help="With --push: the remote (default: upstream).")
    ] = None,
    branch: Annotated[
        Optional[str],
        typer.Option("--branch", help="With --push: the remote branch (default: upstream)."),
    ] = None,
    author: Annotated[
        Optional[str],
        typer.Option(
            "--author", help=f"With --commit: 'Name <email>' (default: {DEFAULT_AUTHOR})."
        ),
    ] = None,
) -> None:
    """Fix files in place (or show the fixes with --dry-run)."""
    chosen, settings = _prepare(paths, output_format, config, select, ignore, target_version, jobs)
    bot = _prepare_bot(chosen, commit, push, remote, branch, author, dry_run=dry_run, check=check)
    result = _execute(
        chosen,
        settings,
        apply_fixes=not check,
        unsafe=unsafe,
        jobs=jobs,
        suppress=not no_suppress,
        quiet=quiet,
        cache=not no_cache,
    )
    writes = not dry_run and not check
    if bot is not None:
        _refuse_dirty(bot, result)
    if writes:
        _write(result)
    committed = _bot_commit(bot, result, quiet=quiet) if bot is not None else None
    _finish(
        result,
        output_format=output_format,
        quiet=quiet,
        written=writes,
        diff=dry_run,
        unsafe=unsafe or settings.unsafe,
        verbose=verbose,
    )
    found = bool(result.changes) if check else bool(result.diagnostics)
    failed = committed is not None and committed.push_error is not None
    if summary is None and bot is None and not (writes and result.changes):
        _offer_replay(result, chosen, config)
    if summary is not None:
        mode = "apply" if writes else "dry-run" if dry_run else "check"
        failed |= not _append_summary(summary, result, mode, committed)
    raise typer.Exit(_exit_code(result, found=found, exit_zero=exit_zero) | (2 if failed else 0))


def _offer_replay(result: RunResult, paths: Sequence[Path], config: Optional[Path]) -> None:
    """A run that wrote nothing may be replayed until a file or directory it read changes."""
    consulted = consulted_files(find_project_root(paths), config)
    # shallow: the scope is stored as JSON, which takes tuples as lists (`asdict` copies each of
    # its thousands of tuples first)
    scope = dict(vars(result.replay)) if result.replay is not None else None
    replay.offer([*result.inputs, *(os.path.abspath(path) for path in consulted)], scope)


def _prepare_bot(
    paths: Sequence[Path],
    commit: bool,
    push: bool,
    remote: Optional[str],
    branch: Optional[str],
    author: Optional[str],
    *,
    dry_run: bool,
    check: bool,
) -> Optional[Bot]:
    """The checks of `--commit` that need no run: usage, the work tree, where to push."""
    if not commit:
        given = {
            "--push": push,
            "--remote": remote is not None,
            "--branch": branch is not None,
            "--author": author is not None,
        }
        misplaced = [name for name, value in given.items() if value]
        if misplaced:
            raise UsageProblem(f"{misplaced[0]} needs --commit")
        return None
    if dry_run or check:
        raise UsageProblem(
            f"--commit writes files: it cannot be combined with {'--dry-run' if dry_run else '--check'}"
        )
    if not push and (remote is not None or branch is not None):
        raise UsageProblem(f"{'--remote' if remote is not None else '--branch'} needs --push")
    try:
        return Bot.prepare(
            paths, author=author or DEFAULT_AUTHOR, push=push, remote=remote, branch=branch
        )
    except BotError as error:
        raise UsageProblem(str(error)) from None


def _refuse_dirty(bot: Bot, result: RunResult) -> None:
    try:
        bot.refuse_dirty(result.changes)
    except BotError as error:
        raise UsageProblem(str(error)) from None


def _bot_commit(bot: Bot, result: RunResult, *, quiet: bool) -> Committed:
    """Commit (and push) what was written; a push failure is reported, the commit stays."""
    try:
        committed = bot.commit(result)
    except BotError as error:
        raise UsageProblem(str(error)) from None
    if committed.push_error is not None:
        typer.echo(f"depfix: error: {committed.push_error}", err=True)
    if committed.sha is not None and not quiet:
        where = f" and pushed it to {committed.pushed}" if committed.pushed is not None else ""
        typer.echo(
            f"depfix: committed {committed.sha[:12]} ({committed.fixes} fixes in "
            f"{committed.files} files){where}",
            err=True,
        )
    return committed


def _append_summary(
    path: Path, result: RunResult, mode: str, committed: Optional[Committed] = None
) -> bool:
    note = None
    if committed is not None:
        pushed = str(committed.pushed) if committed.pushed is not None else None
        note = CommitNote(committed.sha, pushed, committed.push_error)
    try:
        append_summary(path, render_summary(result, mode=mode, commit=note))
    except OSError as error:
        typer.echo(f"depfix: error: --summary: cannot write {path}: {error.strerror}", err=True)
        return False
    return True


@app.command("check")
def check_command(
    paths: PathsArgument = None,
    unsafe: Annotated[
        bool, typer.Option("--unsafe", help="Grade unsafe fixes as applicable.")
    ] = False,
    select: SelectOption = None,
    ignore: IgnoreOption = None,
    output_format: FormatOption = "text",
    target_version: TargetOption = None,
    config: ConfigOption = None,
    jobs: JobsOption = 0,
    no_cache: NoCacheOption = False,
    quiet: QuietOption = False,
    verbose: VerboseOption = False,
    exit_zero: ExitZeroOption = False,
    no_suppress: NoSuppressOption = False,
    summary: SummaryOption = None,
) -> None:
    """Report diagnostics; never writes."""
    chosen, settings = _prepare(paths, output_format, config, select, ignore, target_version, jobs)
    result = _execute(
        chosen,
        settings,
        apply_fixes=False,
        unsafe=unsafe,
        jobs=jobs,
        suppress=not no_suppress,
        quiet=quiet,
        cache=not no_cache,
    )
    _finish(
        result,
        output_format=output_format,
        quiet=quiet,
        written=False,
        unsafe=unsafe or settings.unsafe,
        verbose=verbose,
    )
    failed = summary is not None and not _append_summary(summary, result, "check")
    if summary is None:
        _offer_replay(result, chosen, config)
    code = _exit_code(result, found=bool(result.diagnostics), exit_zero=exit_zero)
    raise typer.Exit(code | (2 if failed else 0))


@app.command("rules")
def rules_command() -> None:
    """Table of rules: code, name, fix safety, summary."""
    rules = registered_rules()
    width = max(len(rule.NAME) for rule in rules)
    typer.echo(f"{'code':<6}  {'name':<{width}}  {'fix':<6}  summary")
    for rule in rules:
        typer.echo(f"{rule.CODE:<6}  {rule.NAME:<{width}}  {rule.FIX:<6}  {rule.SUMMARY}")


@app.command("explain")
def explain_command(code: Annotated[str, typer.Argument(help="A rule code, e.g. DF005.")]) -> None:
    """A rule's documentation with a before/after example."""
    wanted = code.strip().upper()
    for rule in registered_rules():
        if wanted == rule.CODE or code.strip() == rule.NAME:
            sys.stdout.write(explain_text(rule))
            return
    known = ", ".join(rule.CODE for rule in registered_rules())
    raise UsageProblem(f"unknown rule {code!r} (known rules: {known})")


CONFIG_FORMATS = ("toml", "json")


@app.command("config")
def config_command(
    paths: PathsArgument = None,
    select: SelectOption = None,
    ignore: IgnoreOption = None,
    target_version: TargetOption = None,
    config: ConfigOption = None,
    unsafe: Annotated[bool, typer.Option("--unsafe", help="As if --unsafe were given.")] = False,
    output_format: Annotated[
        str, typer.Option("--format", help=f"Output format: {', '.join(CONFIG_FORMATS)}.")
    ] = "toml",
) -> None:
    """Print the merged configuration: defaults, then [tool.depfix] or --config, then flags."""
    if output_format not in CONFIG_FORMATS:
        raise UsageProblem(
            f"--format: expected one of {', '.join(CONFIG_FORMATS)}, got {output_format!r}"
        )
    chosen = list(paths) if paths else [Path(".")]
    missing = [str(path) for path in chosen if not os.path.lexists(path)]
    if missing:
        raise UsageProblem(f"no such file or directory: {', '.join(missing)}")
    settings = _settings(chosen, config, select, ignore, target_version)
    if unsafe:
        settings = settings.with_overrides(origin="--unsafe", unsafe=True)
    _check_codes(settings)
    if output_format == "json":
        sys.stdout.write(settings_as_json(settings))
    else:
        sys.stdout.write(settings_as_toml(settings))


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Console-script entry point: returns the exit code."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    verbose = "--verbose" in arguments or "-v" in arguments
    try:
        result = app(args=arguments, prog_name="depfix", standalone_mode=False)
    except UsageProblem as problem:
        typer.echo(f"depfix: error: {problem}", err=True)
        return 2
    except ConfigError as problem:
        typer.echo(f"depfix: error: {problem}", err=True)
        return 2
    except typer.Exit as done:
        return done.exit_code
    except typer.Abort:
        typer.echo("depfix: aborted", err=True)
        return 130
    except typer.TyperException as problem:  # usage errors from the command-line parser
        context = getattr(problem, "ctx", None)
        if type(problem).__name__ == "NoArgsIsHelpError" and context is not None:
            typer.echo(context.get_help(), err=True)
        else:
            typer.echo(f"depfix: error: {problem.format_message()}", err=True)
        return 2
    except KeyboardInterrupt:
        typer.echo("depfix: interrupted", err=True)
        return 130
    except Exception as error:  # a bug in depfix: one line, the traceback with --verbose
        typer.echo(f"depfix: internal error: {type(error).__name__}: {error}", err=True)
        if verbose:
            traceback.print_exc()
        return 2
    return result if isinstance(result, int) else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
