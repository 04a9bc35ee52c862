"""Git-style diffs: exact headers, `\\ No newline at end of file`, CRLF, quoting; and the proof that
`git apply` and `patch -p1` turn the old bytes into exactly the new ones."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Optional

import pytest
from conftest import snapshot, write_tree
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from depfix.diffing import NO_NEWLINE, unified_diff

TOOLS = [
    "git",
    pytest.param(
        "patch", marks=pytest.mark.skipif(shutil.which("patch") is None, reason="needs patch")
    ),
]


def apply_patch(tool: str, files: Mapping[str, bytes], patch: bytes) -> dict[str, bytes]:
    """Apply `patch` with `tool` to a directory holding `files`; return every file's bytes after."""
    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        write_tree(root, files)
        if tool == "git":
            subprocess.run(["git", "init", "-q"], cwd=root, check=True)
            command = [
                "git",
                "-c",
                "core.autocrlf=false",
                "apply",
                "--allow-empty",
                "--whitespace=nowarn",
                "-",
            ]
        else:
            command = [
                "patch",
                "-p1",
                "--batch",
                "--forward",
                "--no-backup-if-mismatch",
                "--silent",
            ]
        result = subprocess.run(command, cwd=root, input=patch, capture_output=True, check=False)
        assert result.returncode == 0, (result.stdout + result.stderr).decode("utf-8", "replace")
        return {path: data for path, (data, _) in snapshot(root).items()}


def diff_all(changes: Mapping[str, tuple[Optional[bytes], bytes]]) -> bytes:
    return b"".join(unified_diff(path, old, new) for path, (old, new) in sorted(changes.items()))


def assert_reproduces(tool: str, changes: Mapping[str, tuple[Optional[bytes], bytes]]) -> None:
    before = {path: old for path, (old, _) in changes.items() if old is not None}
    after = {path: new for path, (_, new) in changes.items()}
    assert apply_patch(tool, before, diff_all(changes)) == after


# ---- exact output ---------------------------------------------------------------------------------
def test_identical_contents_give_no_diff() -> None:
    assert unified_diff("a.py", b"x = 1\n", b"x = 1\n") == b""


def test_change_in_a_subdirectory_has_git_headers() -> None:
    old = b"".join(b"line %d\n" % n for n in range(1, 11))
    new = old.replace(b"line 5\n", b"line five\n")
    assert unified_diff("pkg/mod.py", old, new) == (
        b"diff --git a/pkg/mod.py b/pkg/mod.py\n"
        b"--- a/pkg/mod.py\n"
        b"+++ b/pkg/mod.py\n"
        b"@@ -2,7 +2,7 @@\n"
        b" line 2\n line 3\n line 4\n-line 5\n+line five\n line 6\n line 7\n line 8\n"
    )


def test_new_file_diff_starts_from_dev_null() -> None:
    diff = unified_diff("pkg/dependencies.py", None, b"x = 1\ny = 2\n")
    assert diff == (
        b"diff --git a/pkg/dependencies.py b/pkg/dependencies.py\n"
        b"new file mode 100644\n"
        b"--- /dev/null\n"
        b"+++ b/pkg/dependencies.py\n"
        b"@@ -0,0 +1,2 @@\n"
        b"+x = 1\n+y = 2\n"
    )


def test_missing_final_newline_on_both_sides() -> None:
    assert unified_diff("f.py", b"a\nb", b"a\nc") == (
        b"diff --git a/f.py b/f.py\n--- a/f.py\n+++ b/f.py\n@@ -1,2 +1,2 @@\n a\n-b\n"
        + NO_NEWLINE
        + b"+c\n"
        + NO_NEWLINE
    )


def test_missing_final_newline_on_an_unchanged_context_line() -> None:
    assert unified_diff("f.py", b"a\nb\nc", b"A\nb\nc") == (
        b"diff --git a/f.py b/f.py\n--- a/f.py\n+++ b/f.py\n@@ -1,3 +1,3 @@\n-a\n+A\n b\n c\n"
        + NO_NEWLINE
    )


@pytest.mark.parametrize(
    ("old", "new", "body"),
    [
        (b"a", b"a\n", b"-a\n" + NO_NEWLINE + b"+a\n"),
        (b"a\n", b"a", b"-a\n+a\n" + NO_NEWLINE),
    ],
    ids=["adds-final-newline", "drops-final-newline"],
)
def test_final_newline_changes(old: bytes, new: bytes, body: bytes) -> None:
    assert (
        unified_diff("f.py", old, new)
        == b"diff --git a/f.py b/f.py\n--- a/f.py\n+++ b/f.py\n@@ -1 +1 @@\n" + body
    )


def test_crlf_line_endings_are_kept() -> None:
    diff = unified_diff("w.py", b"a\r\nb\r\nc\r\n", b"a\r\nB\r\nc\r\n")
    assert diff.endswith(b"@@ -1,3 +1,3 @@\n a\r\n-b\r\n+B\r\n c\r\n")


def test_lone_carriage_return_is_not_a_line_end() -> None:
    old = b"x = 1  # a\rb\ny = 2\n"
    new = b"x = 1  # a\rb\ny = 3\n"
    assert unified_diff("m.py", old, new).endswith(
        b"@@ -1,2 +1,2 @@\n x = 1  # a\rb\n-y = 2\n+y = 3\n"
    )


def test_path_with_a_space_ends_its_names_with_a_tab() -> None:
    diff = unified_diff("my dir/a b.py", b"a\n", b"b\n")
    assert diff.startswith(
        b"diff --git a/my dir/a b.py b/my dir/a b.py\n--- a/my dir/a b.py\t\n+++ b/my dir/a b.py\t\n"
    )


def test_path_with_a_quote_is_c_quoted() -> None:
    diff = unified_diff('say "hi".py', b"a\n", b"b\n")
    assert diff.startswith(
        b'diff --git "a/say \\"hi\\".py" "b/say \\"hi\\".py"\n--- "a/say \\"hi\\".py"\t\n'
    )


def test_empty_new_file_is_a_header_alone() -> None:
    assert unified_diff("pkg/__init__.py", None, b"") == (
        b"diff --git a/pkg/__init__.py b/pkg/__init__.py\nnew file mode 100644\n"
    )


# ---- the tools reproduce the new bytes ----------------------------------------------------------
@pytest.mark.parametrize("tool", TOOLS)
def test_tools_reproduce_edge_cases(tool: str) -> None:
    changes: dict[str, tuple[Optional[bytes], bytes]] = {
        "plain.py": (b"a\nb\nc\n", b"a\nB\nc\n"),
        "no_eol.py": (b"a\nb", b"a\nc"),
        "add_eol.py": (b"a", b"a\n"),
        "drop_eol.py": (b"a\nb\n", b"a\nb"),
        "crlf.py": (b"a\r\nb\r\nc\r\n", b"a\r\nb2\r\nc\r\n"),
        "crlf_no_eol.py": (b"a\r\nb", b"a\r\nc"),
        "lone_cr.py": (b"x  # a\rb\ny = 2\n", b"x  # a\rb\ny = 3\n"),
        "old_mac.py": (b"a\rb\rc\r", b"a\rB\rc\r"),
        "latin1.py": (
            b"# -*- coding: latin-1 -*-\ns = '\xe9'\n",
            b"# -*- coding: latin-1 -*-\ns = '\xe8'\n",
        ),
        "was_empty.py": (b"", b"x = 1\n"),
        "new/created.py": (None, b"def f():\n    return 1\n"),
        "new/created_no_eol.py": (None, b"x = 1"),
        "with space/my file.py": (b"a\n", b"b\n"),
        "caf\u00e9.py": (b"a\n", b"b\n"),
        "long.py": (
            b"".join(b"l%d\n" % n for n in range(40)),
            b"".join(b"l%d\n" % n for n in range(40))
            .replace(b"l3\n", b"L3\n")
            .replace(b"l30\n", b"L30\n"),
        ),
    }
    assert_reproduces(tool, changes)


@pytest.mark.parametrize("tool", TOOLS)
def test_tools_create_an_empty_new_file(tool: str) -> None:
    assert_reproduces(tool, {"pkg/__init__.py": (None, b""), "pkg/a.py": (None, b"x = 1\n")})


@pytest.mark.parametrize("tool", TOOLS)
def test_tools_handle_quoted_paths(tool: str) -> None:
    assert_reproduces(tool, {'say "hi".py': (b"a\n", b"b\n"), "tab\tname.py": (b"a\n", b"b\n")})


LINE = st.builds(
    lambda text, end: text + end,
    st.sampled_from([b"x = 1", b"", b"    pass", b"# caf\xc3\xa9", b"\t\ty", b"a\rb", b"z = 2  "]),
    st.sampled_from([b"\n", b"\r\n"]),
)
CONTENT = st.builds(
    lambda lines, tail: b"".join(lines) + tail,
    st.lists(LINE, max_size=25),
    st.sampled_from([b"", b"tail", b"tail\r"]),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.one_of(st.none(), CONTENT), CONTENT), min_size=1, max_size=6))
def test_git_apply_reproduces_any_change(pairs: list[tuple[Optional[bytes], bytes]]) -> None:
    changes = {f"d{n % 2}/f{n}.py": pair for n, pair in enumerate(pairs)}
    assert_reproduces("git", changes)
