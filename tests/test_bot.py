"""The CI bot end to end: `depfix apply --commit [--push]`, the job summary and the GitHub Action.

Every test works in a clone of a bare remote, both in a temporary directory, with git's global and
system configuration switched off. The key check: the pushed commit's tree is exactly the tree that
`depfix apply --dry-run`'s patch gives when applied to the original commit, nothing more.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import pytest
import yaml
from conftest import APP, APP_FIXED, CLEAN, PYPROJECT, run_depfix, write_tree

import depfix
from depfix.bot import DEFAULT_AUTHOR, commit_message
from depfix.engine import Change, Diagnostic, FixInfo, RunResult
from depfix.jobsummary import render_summary

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")

REPOSITORY = Path(__file__).resolve().parent.parent
DEMO_APP = REPOSITORY / "fixtures" / "demo_app"
DEVELOPER = "Developer <dev@example.com>"
SUBJECT = re.compile(r"^depfix: fix \d+ DF\d{3}(, \d+ DF\d{3})*$")


@pytest.fixture(autouse=True)
def _isolated_git(monkeypatch: pytest.MonkeyPatch) -> None:
    """No global or system git configuration, no variables that redirect git elsewhere."""
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for name in list(os.environ):
        if name.startswith("GIT_") and name not in ("GIT_CONFIG_GLOBAL", "GIT_CONFIG_NOSYSTEM"):
            monkeypatch.delenv(name)


def git(cwd: Path, *args: str, stdin: Optional[bytes] = None) -> str:
    process = subprocess.run(["git", *args], cwd=cwd, input=stdin, capture_output=True, check=False)
    assert process.returncode == 0, process.stderr.decode()
    return process.stdout.decode()


@dataclass(frozen=True)
class Clone:
    work: Path
    remote: Path
    initial: str

    def head(self) -> str:
        return git(self.work, "rev-parse", "HEAD").strip()

    def remote_head(self, branch: str = "main") -> str:
        return git(self.remote, "rev-parse", f"refs/heads/{branch}").strip()

    def message(self, revision: str = "HEAD") -> tuple[str, list[str]]:
        text = git(self.work, "log", "-1", "--format=%B", revision)
        subject, _, body = text.partition("\n")
        return subject, body.strip("\n").splitlines()

    def changed(self, revision: str) -> set[str]:
        names = git(self.work, "diff", "--name-only", "-z", f"{revision}~1", revision)
        return set(names.split("\0")) - {""}

    def status(self) -> set[str]:
        return set(git(self.work, "status", "--porcelain", "--untracked-files=all").splitlines())


def make_clone(
    tmp_path: Path, files: Optional[dict[str, str]] = None, tree: Optional[Path] = None
) -> Clone:
    """A bare remote and a clone with one pushed commit holding `files` (or a copy of `tree`)."""
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "--quiet", "--bare", str(remote))
    git(remote, "symbolic-ref", "HEAD", "refs/heads/main")
    work = tmp_path / "work"
    git(tmp_path, "clone", "--quiet", str(remote), str(work))
    git(work, "symbolic-ref", "HEAD", "refs/heads/main")
    git(work, "config", "user.name", "Developer")
    git(work, "config", "user.email", "dev@example.com")
    if tree is not None:
        shutil.copytree(tree, work, dirs_exist_ok=True)
    write_tree(work, files or {})
    git(work, "add", "--all")
    git(work, "commit", "--quiet", "--message", "initial")
    git(work, "push", "--quiet", "--set-upstream", "origin", "main")
    return Clone(work, remote, git(work, "rev-parse", "HEAD").strip())


def simple_clone(tmp_path: Path, app: str = APP) -> Clone:
    return make_clone(tmp_path, {"pyproject.toml": PYPROJECT, "app.py": app})


def tree_after_patch(tmp_path: Path, clone: Clone, patch: bytes) -> str:
    """The tree of the original commit with `patch` applied (in a checkout of its own)."""
    check = tmp_path / "check"
    git(tmp_path, "clone", "--quiet", str(clone.remote), str(check))
    git(check, "checkout", "--quiet", clone.initial)
    git(check, "apply", "--whitespace=nowarn", "-", stdin=patch)
    git(check, "add", "--all")
    return git(check, "write-tree").strip()


def applied_counts(report: dict[str, Any]) -> Counter[str]:
    return Counter(
        d["code"] for d in report["diagnostics"] if d["fix"] is not None and d["fix"]["applied"]
    )


def expected_subject(counts: Counter[str]) -> str:
    ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return "depfix: fix " + ", ".join(f"{count} {code}" for code, count in ordered)


# ---- depfix apply --commit ------------------------------------------------------------------
def test_pushed_commit_holds_exactly_the_fixes(tmp_path: Path) -> None:
    clone = make_clone(tmp_path, tree=DEMO_APP)
    work = clone.work
    # local changes that are not depfix's: they must stay out of the commit, and stay as they are
    with open(work / "MISTAKES.md", "a", encoding="utf-8") as notes:
        notes.write("\nA local note.\n")
    write_tree(work, {"tests/staged.txt": "staged\n", "scratch.py": "x = 1\n"})
    git(work, "add", "tests/staged.txt")
    before = clone.status()
    patch = run_depfix(work, "apply", "--dry-run")
    report = json.loads(run_depfix(work, "apply", "--dry-run", "--format", "json").stdout)
    assert patch.code == 1 and patch.stdout.startswith(b"diff --git"), patch

    run = run_depfix(work, "apply", "--commit", "--push")

    assert run.code == 1, run  # diagnostics found (some are left); no error
    commit = clone.head()
    assert commit != clone.initial
    assert clone.remote_head() == commit
    assert git(work, "rev-parse", f"{commit}~1").strip() == clone.initial
    assert git(work, "rev-parse", f"{commit}^{{tree}}").strip() == tree_after_patch(
        tmp_path, clone, patch.stdout
    )
    assert clone.status() == before  # the unrelated changes are still there, uncommitted
    subject, body = clone.message()
    assert SUBJECT.match(subject)
    assert subject == expected_subject(applied_counts(report))
    listed = {line.removesuffix(" (new file)") for line in body if line and not line[0].isspace()}
    assert listed - {f"Made by depfix {report['version']} (`depfix apply --commit`)."} == (
        clone.changed(commit)
    )
    fix_lines = [line for line in body if line.startswith("  ")]
    assert len(fix_lines) == sum(applied_counts(report).values())
    assert "app/dependencies.py (new file)" in body
    author = git(work, "log", "-1", "--format=%an <%ae>|%cn <%ce>").strip()
    assert author == f"{DEFAULT_AUTHOR}|{DEFAULT_AUTHOR}"
    assert f"committed {commit[:12]}" in run.err and "pushed it to origin main" in run.err
    # the fixed tree is final: a second bot run finds nothing more to commit
    again = run_depfix(work, "apply", "--commit", "--push")
    assert clone.head() == commit and clone.remote_head() == commit, again


def test_clean_repository_makes_no_commit(tmp_path: Path) -> None:
    clone = simple_clone(tmp_path, CLEAN)
    run = run_depfix(clone.work, "apply", "--commit", "--push")
    assert run.code == 0, run
    assert clone.head() == clone.initial and clone.remote_head() == clone.initial
    assert "committed" not in run.err
    assert clone.status() == set()


def test_commit_without_push_stays_local(tmp_path: Path) -> None:
    clone = simple_clone(tmp_path)
    run = run_depfix(clone.work, "apply", "--commit", "--author", "CI Bot <ci@example.com>")
    assert run.code == 1, run
    assert clone.head() != clone.initial and clone.remote_head() == clone.initial
    assert clone.message() == (
        "depfix: fix 1 DF005",
        [
            "app.py",
            "  11:13 DF005 called-dependency",
            "",
            f"Made by depfix {depfix.__version__} (`depfix apply --commit`).",
        ],
    )
    assert git(clone.work, "log", "-1", "--format=%an <%ae>").strip() == "CI Bot <ci@example.com>"
    assert (clone.work / "app.py").read_text() == APP_FIXED
    assert clone.status() == set()


@pytest.mark.parametrize("state", ["modified", "staged", "untracked"])
def test_refuses_when_a_file_to_fix_has_uncommitted_changes(tmp_path: Path, state: str) -> None:
    clone = simple_clone(tmp_path)
    work = clone.work
    target = "app.py"
    if state == "untracked":
        target = "other.py"
        write_tree(work, {target: APP})
    else:
        write_tree(work, {target: "# a local edit\n" + APP})
        if state == "staged":
            git(work, "add", target)
    contents = (work / target).read_bytes()

    run = run_depfix(work, "apply", "--commit", "--push")

    assert run.code == 2, run
    assert run.err.startswith("depfix: error: --commit: 1 file depfix would change"), run
    assert target in run.err and "commit or stash them first" in run.err
    assert (work / target).read_bytes() == contents  # nothing written
    assert clone.head() == clone.initial and clone.remote_head() == clone.initial


def test_detached_head_needs_a_branch(tmp_path: Path) -> None:
    clone = simple_clone(tmp_path)
    git(clone.work, "checkout", "--quiet", "--detach")

    refused = run_depfix(clone.work, "apply", "--commit", "--push")
    assert refused.code == 2 and "HEAD is detached" in refused.err and "--branch" in refused.err
    assert (clone.work / "app.py").read_text() == APP

    run = run_depfix(clone.work, "apply", "--commit", "--push", "--branch", "fixes")
    assert run.code == 1, run
    assert clone.remote_head("fixes") == clone.head() != clone.initial
    assert clone.remote_head("main") == clone.initial


def test_rejected_push_keeps_the_commit_and_fails(tmp_path: Path) -> None:
    clone = simple_clone(tmp_path)
    other = tmp_path / "other"
    git(tmp_path, "clone", "--quiet", str(clone.remote), str(other))
    write_tree(other, {"README": "moved on\n"})
    git(other, "add", "README")
    git(other, "-c", "user.name=Other", "-c", "user.email=o@example.com", "commit", "-qm", "ahead")
    git(other, "push", "--quiet", "origin", "HEAD:main")
    ahead = git(other, "rev-parse", "HEAD").strip()

    run = run_depfix(clone.work, "apply", "--commit", "--push")

    assert run.code == 3, run  # fixes made (1) and the push failed (2)
    assert "depfix: error: --push to origin main: `git push` failed" in run.err
    assert clone.head() != clone.initial  # the commit is there, ready for another push
    assert clone.remote_head() == ahead


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--push"], "--push needs --commit"),
        (["--author", DEVELOPER], "--author needs --commit"),
        (["--commit", "--dry-run"], "cannot be combined with --dry-run"),
        (["--commit", "--check"], "cannot be combined with --check"),
        (["--commit", "--branch", "x"], "--branch needs --push"),
        (["--commit", "--author", "nobody"], "--author: expected 'Name <email>'"),
        (["--commit", "--push", "--remote", "nowhere"], "`git push` failed"),
    ],
)
def test_bot_usage_errors(tmp_path: Path, args: list[str], message: str) -> None:
    clone = simple_clone(tmp_path)
    run = run_depfix(clone.work, "apply", *args)
    assert run.code & 2, run
    assert message in run.err, run
    if "git push" not in message:  # refused before anything was written
        assert (clone.work / "app.py").read_text() == APP
        assert run.err.count("\n") == 1
    assert clone.remote_head() == clone.initial


def test_commit_outside_a_git_work_tree(project: Any, tmp_path: Path) -> None:
    root: Path = project({"app.py": APP})
    run = run_depfix(root, "apply", "--commit")
    assert run.code == 2 and "is not inside a git work tree" in run.err, run
    assert (root / "app.py").read_text() == APP


def test_commit_message_lists_fixes_per_file() -> None:
    def fix(path: str, line: int, code: str) -> Diagnostic:
        return Diagnostic(path, line, 5, line, 9, code, f"name-{code}", "m", FixInfo("safe", True))

    fixed = [
        fix("b.py", 9, "DF002"),
        fix("a.py", 7, "DF006"),
        fix("a.py", 3, "DF006"),
        fix("b.py", 2, "DF006"),
    ]
    message = commit_message(fixed, [("b.py", False), ("a.py", False), ("deps.py", True)])
    assert message.splitlines()[:9] == [
        "depfix: fix 3 DF006, 1 DF002",
        "",
        "a.py",
        "  3:5 DF006 name-DF006",
        "  7:5 DF006 name-DF006",
        "b.py",
        "  2:5 DF006 name-DF006",
        "  9:5 DF002 name-DF002",
        "deps.py (new file)",
    ]
    many = [fix("a.py", line, "DF006") for line in range(1, 500)]
    long = commit_message(many, [("a.py", False)]).splitlines()
    assert long[0] == "depfix: fix 499 DF006" and len(long) < 210
    assert long[-3] == "... and 301 more lines"


# ---- the job summary --------------------------------------------------------------------------
def fenced_diff(summary: str) -> str:
    match = re.search(r"^(`{3,})diff\n(.*?)\n\1$", summary, re.MULTILINE | re.DOTALL)
    assert match, summary
    return match.group(2) + "\n"


def test_dry_run_summary_has_counts_and_the_diff(project: Any, tmp_path: Path) -> None:
    root: Path = project({"app.py": APP, "other.py": APP})
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step\n")
    patch = run_depfix(root, "apply", "--dry-run")

    run = run_depfix(root, "apply", "--dry-run", "--summary", str(summary))

    assert run.code == 1 and run.stdout == patch.stdout, run
    text = summary.read_text()
    assert text.startswith("earlier step\n## depfix\n")
    assert "2 files scanned: 2 fixes available in 2 files, 0 diagnostics left, 0 errors." in text
    assert "| DF005 | `called-dependency` | 2 | 2 | 0 |" in text
    assert "| Rule | Name | Found | Fixable | Left |" in text
    assert "<details>\n<summary>Diff: 2 files</summary>" in text
    assert fenced_diff(text) == patch.out
    assert (root / "app.py").read_text() == APP


def test_apply_and_check_summaries(project: Any, tmp_path: Path) -> None:
    root: Path = project({"app.py": APP})
    checked = tmp_path / "check.md"
    assert run_depfix(root, "check", "--summary", str(checked)).code == 1
    text = checked.read_text()
    assert "| Rule | Name | Found | With a fix | Left |" in text
    assert "| DF005 | `called-dependency` | 1 | 1 | 0 |" in text
    assert fenced_diff(text) == run_depfix(root, "apply", "--dry-run").out
    applied = tmp_path / "apply.md"
    assert run_depfix(root, "apply", "--summary", str(applied)).code == 1
    assert "1 fix applied in 1 file, 0 diagnostics left" in applied.read_text()
    clean = tmp_path / "clean.md"
    assert run_depfix(root, "check", "--summary", str(clean)).code == 0
    assert clean.read_text() == "## depfix\n\n1 file scanned: nothing to fix.\n\n"


def test_unwritable_summary_is_an_error(project: Any, tmp_path: Path) -> None:
    root: Path = project({"app.py": APP})
    run = run_depfix(root, "check", "--summary", str(tmp_path))  # a directory
    assert run.code == 3 and "depfix: error: --summary: cannot write" in run.err, run


def test_summary_fences_backticks_and_cuts_long_diffs(tmp_path: Path) -> None:
    changes = [
        Change(f"m{i}.py", tmp_path / f"m{i}.py", None, b"x = '````'\n" * 50, i) for i in range(3)
    ]
    result = RunResult(files_scanned=3, changes=changes)
    text = render_summary(result, mode="dry-run", budget=1500)
    assert "`````diff\n" in text  # longer than any run of backticks inside
    assert fenced_diff(text).count("diff --git") == 2
    assert "Diff cut to 2 of 3 files; `depfix apply --dry-run` shows it all." in text
    with pytest.raises(ValueError, match="mode"):
        render_summary(result, mode="written")


# ---- the GitHub Action -------------------------------------------------------------------------
ACTION_TEXT = (REPOSITORY / "action.yml").read_text(encoding="utf-8")
ACTION: dict[str, Any] = yaml.safe_load(ACTION_TEXT)
EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")
STEPS = {step["id"]: step for step in ACTION["runs"]["steps"]}


def test_action_is_a_consistent_composite_action() -> None:
    assert ACTION["runs"]["using"] == "composite"
    inputs = ACTION["inputs"]
    used: set[str] = set()
    for expression in EXPRESSION.findall(ACTION_TEXT):
        parts = expression.split(".")
        if parts[0] == "inputs":
            assert parts[1] in inputs, expression
            used.add(parts[1])
        else:
            assert parts[0] == "steps" and parts[2] == "outputs", expression
            assert f'echo "{parts[3]}=' in STEPS[parts[1]]["run"], expression
    assert used == set(inputs)  # every input does something
    for step in STEPS.values():
        assert step["shell"] == "bash"
        assert "${{" not in step["run"]  # values reach scripts through env, never interpolated
    assert '"$GITHUB_ACTION_PATH"' in STEPS["install"]["run"]
    assert ACTION["inputs"]["author"]["default"] == DEFAULT_AUTHOR


def test_action_calls_only_existing_depfix_options() -> None:
    script = STEPS["depfix"]["run"]
    calls = re.findall(r'"\$DEPFIX" (\w+) (.*)', script)
    assert {command for command, _ in calls} == {"apply", "check"}
    for command, rest in calls:
        help_text = run_depfix(REPOSITORY, command, "--help").out
        for option in re.findall(r"(?<![\w-])--[a-z][a-z-]+", rest):
            assert option in help_text, (command, option)
    for option in ("--unsafe", "--summary", "--push"):
        assert option in script


def run_action_step(
    step_id: str, cwd: Path, tmp_path: Path, **inputs: str
) -> tuple[subprocess.CompletedProcess[str], str, str]:
    """Run one step's script the way a runner does; returns the process, its outputs and summary."""
    step = STEPS[step_id]
    values = {name: spec.get("default", "") for name, spec in ACTION["inputs"].items()}
    values.update({name.replace("_", "-"): value for name, value in inputs.items()})
    depfix = shutil.which("depfix", path=str(Path(sys.executable).parent))
    assert depfix is not None, "the depfix console script is not installed next to python"

    def evaluate(match: re.Match[str]) -> str:
        expression = match.group(1)
        if expression == "steps.install.outputs.depfix":
            return depfix
        assert expression.startswith("inputs."), expression
        return values[expression.removeprefix("inputs.")]

    output, summary = tmp_path / "github_output", tmp_path / "step_summary"
    output.write_text("")
    summary.write_text("")
    env = dict(os.environ)
    env.update({name: EXPRESSION.sub(evaluate, str(value)) for name, value in step["env"].items()})
    env.update({"GITHUB_OUTPUT": str(output), "GITHUB_STEP_SUMMARY": str(summary)})
    script = tmp_path / f"{step_id}.sh"
    script.write_text(step["run"])
    directory = cwd / EXPRESSION.sub(evaluate, step.get("working-directory", "."))
    process = subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
        cwd=directory,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return process, output.read_text(), summary.read_text()


def test_action_autofix_commits_pushes_and_passes(tmp_path: Path) -> None:
    clone = simple_clone(tmp_path)
    process, outputs, summary = run_action_step("depfix", clone.work, tmp_path)
    assert process.returncode == 0, process
    commit = clone.remote_head()
    assert commit != clone.initial and outputs == f"commit={commit}\n"
    assert clone.message(commit)[0] == "depfix: fix 1 DF005"
    assert f"committed as `{commit[:12]}` and pushed to `origin main`" in summary
    assert "::warning" not in process.stdout


def test_action_autofix_fails_on_what_is_left(tmp_path: Path) -> None:
    clone = make_clone(tmp_path, tree=DEMO_APP)
    process, outputs, summary = run_action_step("depfix", clone.work, tmp_path, paths="app")
    assert process.returncode == 1, process
    assert outputs == f"commit={clone.remote_head()}\n" and clone.remote_head() != clone.initial
    annotations = [line for line in process.stdout.splitlines() if line.startswith("::warning ")]
    left = json.loads(run_depfix(clone.work, "check", "--format", "json", "app").stdout)
    assert len(annotations) == len(left["diagnostics"]) > 0
    assert "| Rule | Name | Found | Fixed | Left |" in summary


def test_action_on_a_clean_repository(tmp_path: Path) -> None:
    clone = simple_clone(tmp_path, CLEAN)
    process, outputs, summary = run_action_step("depfix", clone.work, tmp_path)
    assert process.returncode == 0, process
    assert outputs == "" and clone.remote_head() == clone.initial
    assert "nothing to fix" in summary


def test_action_review_annotates_and_fails(tmp_path: Path) -> None:
    clone = simple_clone(tmp_path)
    process, outputs, summary = run_action_step("depfix", clone.work, tmp_path, mode="review")
    assert process.returncode == 1, process
    assert process.stdout.startswith("::warning file=app.py,line=11,col=13,"), process
    assert "title=DF005 called-dependency::" in process.stdout
    assert (clone.work / "app.py").read_text() == APP  # review writes nothing
    assert clone.head() == clone.initial and outputs == ""
    assert "| DF005 | `called-dependency` | 1 | 1 | 0 |" in summary and "```diff" in summary


def test_action_rejects_an_unknown_mode(tmp_path: Path) -> None:
    clone = simple_clone(tmp_path)
    process, _, _ = run_action_step("depfix", clone.work, tmp_path, mode="fix")
    assert process.returncode == 2 and "mode must be autofix or review" in process.stdout


def readme_block(heading: str, language: str) -> Any:
    readme = (REPOSITORY / "README.md").read_text(encoding="utf-8")
    section = readme.split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]
    match = re.search(rf"```{language}\n(.*?)```", section, re.DOTALL)
    assert match, heading
    return yaml.safe_load(match.group(1))


def test_readme_workflow_uses_the_action_as_it_is() -> None:
    workflow = readme_block("CI bot (GitHub Action)", "yaml")
    assert workflow["permissions"] == {"contents": "write"}
    checkout, bot = workflow["jobs"]["depfix"]["steps"]
    assert checkout["uses"].startswith("actions/checkout@")
    assert checkout["with"]["ref"] == "${{ github.head_ref }}"
    assert bot["uses"].split("@")[0].endswith("/depfix")
    assert set(bot["with"]) <= set(ACTION["inputs"])


def test_commit_takes_file_names_literally(tmp_path: Path) -> None:
    # glob characters and spaces: a pathspec read as a pattern would also take `app1.py`
    clone = make_clone(
        tmp_path, {"pyproject.toml": PYPROJECT, "app[1] *.py": APP, "app1.py": CLEAN}
    )
    write_tree(clone.work, {"app1.py": CLEAN + "# a local edit\n"})
    run = run_depfix(clone.work, "apply", "--commit", "--push", "app[1] *.py")
    assert run.code == 1, run
    assert clone.changed(clone.remote_head()) == {"app[1] *.py"}
    assert clone.status() == {" M app1.py"}


def test_push_follows_the_upstream(tmp_path: Path) -> None:
    clone = simple_clone(tmp_path)
    fork = tmp_path / "fork.git"
    git(tmp_path, "init", "--quiet", "--bare", str(fork))
    git(clone.work, "remote", "add", "fork", str(fork))
    git(clone.work, "push", "--quiet", "--set-upstream", "fork", "main:feature")
    run = run_depfix(clone.work, "apply", "--commit", "--push")
    assert run.code == 1, run
    assert git(fork, "rev-parse", "refs/heads/feature").strip() == clone.head() != clone.initial
    assert clone.remote_head() == clone.initial  # origin is not the upstream
    assert "pushed it to fork feature" in run.err
