"""Bytes in, atomic bytes out: reading, decoding with positions, and all-or-nothing writes."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from depfix.io import (
    TEMP_PREFIX,
    PendingWrite,
    SourceError,
    SourceFile,
    decode_source,
    read_source,
    write_atomically,
)

RUNNING_AS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.rglob("*") if p.name.startswith(TEMP_PREFIX))


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# ---- reading and decoding ----------------------------------------------------------------------
def test_read_source_keeps_bytes_and_mode(tmp_path: Path) -> None:
    path = tmp_path / "m.py"
    path.write_bytes(b"x = 1\r\n")
    path.chmod(0o751)
    source = read_source(path)
    assert source.data == b"x = 1\r\n"
    assert source.mode == 0o751
    assert source.mtime_ns == path.stat().st_mtime_ns


@pytest.mark.parametrize("kind", ["missing", "directory"])
def test_read_source_errors_name_the_problem(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "thing.py"
    if kind == "directory":
        path.mkdir()
    with pytest.raises(SourceError) as raised:
        read_source(path)
    assert raised.value.path == path
    assert raised.value.message == (
        "is a directory" if kind == "directory" else "cannot read: No such file or directory"
    )


@pytest.mark.parametrize(
    ("data", "text"),
    [
        (b"s = 'caf\xc3\xa9'\n", "s = 'café'\n"),
        (b"# -*- coding: latin-1 -*-\ns = 'caf\xe9'\n", "# -*- coding: latin-1 -*-\ns = 'café'\n"),
        (b"\xef\xbb\xbfs = 'caf\xc3\xa9'\n", "s = 'café'\n"),
        (b"x = 1\r\ny = 2", "x = 1\r\ny = 2"),
    ],
    ids=["utf-8", "latin-1-cookie", "bom", "crlf-no-final-newline"],
)
def test_decode_source_follows_python(tmp_path: Path, data: bytes, text: str) -> None:
    assert decode_source(tmp_path / "m.py", data) == text


@pytest.mark.parametrize(
    ("data", "line", "column"),
    [
        (b"\xff = 1\n", 1, 1),
        (b"x = 1\ny = 2\nz = '\xc0'\n", 3, 6),
        (
            b"x = 1\r\ns = 'caf\xc3\xa9 \xfe'\r\n",
            2,
            11,
        ),  # columns count characters, as syntax errors do
        (b"\xef\xbb\xbfs = '\xe9'\n", 1, 6),  # the BOM is not a column
        (b"# a comment\ns = '\xe9'\n", 2, 6),  # the second line, where a cookie could stand
    ],
    ids=["first-byte", "third-line", "after-multibyte", "after-bom", "second-line-after-comment"],
)
def test_decode_source_reports_the_position_of_an_undecodable_byte(
    tmp_path: Path, data: bytes, line: int, column: int
) -> None:
    with pytest.raises(SourceError) as raised:
        decode_source(tmp_path / "m.py", data)
    assert (raised.value.line, raised.value.column) == (line, column)
    assert "cannot decode byte 0x" in raised.value.message


@pytest.mark.parametrize(
    "data",
    [b"# -*- coding: klingon -*-\nx = 1\n", b"\xef\xbb\xbf# -*- coding: latin-1 -*-\nx = 1\n"],
    ids=["unknown-codec", "bom-with-other-cookie"],
)
def test_decode_source_rejects_bad_encoding_declarations(tmp_path: Path, data: bytes) -> None:
    with pytest.raises(SourceError) as raised:
        decode_source(tmp_path / "m.py", data)
    assert raised.value.line == 1


# ---- writing -----------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", [0o755, 0o640, 0o444])
def test_write_keeps_mode_and_leaves_no_temp_files(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "m.py"
    path.write_bytes(b"x = 1\n")
    path.chmod(mode)
    write_atomically([PendingWrite(path, b"x = 2\r\n", read_source(path))])
    assert path.read_bytes() == b"x = 2\r\n"
    assert mode_of(path) == mode
    assert leftovers(tmp_path) == []


def test_write_creates_new_files_and_their_directories(tmp_path: Path) -> None:
    target = tmp_path / "pkg" / "sub" / "dependencies.py"
    write_atomically([PendingWrite(target, b"x = 1\n", None)])
    assert target.read_bytes() == b"x = 1\n"
    umask = os.umask(0)
    os.umask(umask)
    assert mode_of(target) == 0o666 & ~umask
    assert leftovers(tmp_path) == []


def test_write_refuses_a_file_changed_after_it_was_read(tmp_path: Path) -> None:
    path = tmp_path / "m.py"
    path.write_bytes(b"x = 1\n")
    original = read_source(path)
    path.write_bytes(b"x = 1\ny = 1\n")
    with pytest.raises(SourceError) as raised:
        write_atomically([PendingWrite(path, b"x = 2\n", original)])
    assert raised.value.path == path
    assert path.read_bytes() == b"x = 1\ny = 1\n"
    assert leftovers(tmp_path) == []


def test_write_refuses_a_change_that_kept_size_and_mtime(tmp_path: Path) -> None:
    # Timestamps are coarse (a kernel tick, 2 s on FAT) and tools restore them: an equal mtime
    # does not prove the bytes are the ones depfix read.
    path = tmp_path / "m.py"
    path.write_bytes(b"x = 1\n")
    original = read_source(path)
    path.write_bytes(b"x = 9\n")
    os.utime(path, ns=(original.mtime_ns, original.mtime_ns))
    with pytest.raises(SourceError):
        write_atomically([PendingWrite(path, b"x = 2\n", original)])
    assert path.read_bytes() == b"x = 9\n"


def test_write_refuses_to_create_a_file_someone_else_created(tmp_path: Path) -> None:
    path = tmp_path / "new.py"
    path.write_bytes(b"mine = 1\n")
    with pytest.raises(SourceError):
        write_atomically([PendingWrite(path, b"x = 1\n", None)])
    assert path.read_bytes() == b"mine = 1\n"


def test_write_refuses_a_deleted_file(tmp_path: Path) -> None:
    path = tmp_path / "m.py"
    path.write_bytes(b"x = 1\n")
    original = read_source(path)
    path.unlink()
    with pytest.raises(SourceError):
        write_atomically([PendingWrite(path, b"x = 2\n", original)])
    assert not path.exists()


def _group(tmp_path: Path) -> tuple[Path, Path, list[PendingWrite]]:
    first = tmp_path / "a.py"
    second = tmp_path / "b.py"
    first.write_bytes(b"a = 1\n")
    second.write_bytes(b"b = 1\n")
    first.chmod(0o750)
    writes = [
        PendingWrite(first, b"a = 2\n", read_source(first)),
        PendingWrite(second, b"b = 2\n", read_source(second)),
    ]
    return first, second, writes


def test_group_is_all_or_nothing_when_a_temp_file_cannot_be_made(tmp_path: Path) -> None:
    first, second, writes = _group(tmp_path)
    blocker = tmp_path / "not_a_dir"
    blocker.write_bytes(b"")
    writes.append(PendingWrite(blocker / "created.py", b"c = 1\n", None))
    with pytest.raises(SourceError) as raised:
        write_atomically(writes)
    assert raised.value.path == blocker / "created.py"
    assert first.read_bytes() == b"a = 1\n" and second.read_bytes() == b"b = 1\n"
    assert leftovers(tmp_path) == []


def test_group_is_rolled_back_when_a_rename_fails(tmp_path: Path) -> None:
    first, second, writes = _group(tmp_path)
    directory = tmp_path / "c.py"  # a directory cannot be replaced by a file: the last rename fails
    directory.mkdir()
    (directory / "keep").write_bytes(b"")
    info = directory.stat()
    writes.append(
        PendingWrite(directory, b"c = 1\n", SourceFile(directory, b"", 0o644, info.st_mtime_ns))
    )
    with pytest.raises(SourceError):
        write_atomically(writes)
    assert first.read_bytes() == b"a = 1\n" and second.read_bytes() == b"b = 1\n"
    assert mode_of(first) == 0o750
    assert directory.is_dir() and (directory / "keep").exists()
    assert leftovers(tmp_path) == []


def test_group_rollback_removes_files_it_created(tmp_path: Path) -> None:
    created = tmp_path / "new.py"
    directory = tmp_path / "z.py"
    directory.mkdir()
    (directory / "keep").write_bytes(b"")
    writes = [
        PendingWrite(created, b"n = 1\n", None),
        PendingWrite(
            directory, b"z = 1\n", SourceFile(directory, b"", 0o644, directory.stat().st_mtime_ns)
        ),
    ]
    with pytest.raises(SourceError):
        write_atomically(writes)
    assert not created.exists()
    assert leftovers(tmp_path) == []


@pytest.mark.skipif(RUNNING_AS_ROOT, reason="root writes into read-only directories")
def test_group_is_all_or_nothing_when_a_directory_is_read_only(tmp_path: Path) -> None:
    first = tmp_path / "a.py"
    locked = tmp_path / "locked"
    locked.mkdir()
    second = locked / "b.py"
    first.write_bytes(b"a = 1\n")
    second.write_bytes(b"b = 1\n")
    writes = [
        PendingWrite(first, b"a = 2\n", read_source(first)),
        PendingWrite(second, b"b = 2\n", read_source(second)),
    ]
    locked.chmod(0o555)
    try:
        with pytest.raises(SourceError) as raised:
            write_atomically(writes)
    finally:
        locked.chmod(0o755)
    assert raised.value.path == second
    assert first.read_bytes() == b"a = 1\n" and second.read_bytes() == b"b = 1\n"
    assert leftovers(tmp_path) == []
