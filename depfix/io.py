"""Bytes in, atomic bytes out.

depfix reads every file as bytes and writes bytes back only when they differ, so encoding cookies, BOMs,
line endings and the final newline are whatever the rewritten tree produces from the original bytes.
Writes go to a temporary file in the same directory that is renamed over the original, so a reader (or a
killed run) sees either the old or the new file, never a partial one.
"""

from __future__ import annotations

import codecs
import contextlib
import io
import os
import stat
import tempfile
import tokenize
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

TEMP_PREFIX = ".depfix-"


class SourceError(Exception):
    """A file that cannot be read, decoded or written; carries the position when one is known."""

    def __init__(
        self, path: Path, message: str, line: Optional[int] = None, column: Optional[int] = None
    ) -> None:
        super().__init__(message)
        self.path = path
        self.message = message
        self.line = line
        self.column = column


@dataclass(frozen=True)
class SourceFile:
    """The bytes of one file as read, with what is needed to write it back safely."""

    path: Path
    data: bytes
    mode: int
    mtime_ns: int

    def text(self) -> str:
        return decode_source(self.path, self.data)


def read_source(path: Path) -> SourceFile:
    """Read a file's bytes; raise SourceError naming the path when that is impossible."""
    try:
        with open(path, "rb") as handle:
            info = os.fstat(handle.fileno())
            if stat.S_ISDIR(info.st_mode):
                raise SourceError(path, "is a directory")
            data = handle.read()
    except IsADirectoryError:
        raise SourceError(path, "is a directory") from None
    except OSError as error:
        raise SourceError(path, f"cannot read: {error.strerror or error}") from None
    return SourceFile(
        path=path, data=data, mode=stat.S_IMODE(info.st_mode), mtime_ns=info.st_mtime_ns
    )


def detect_encoding(path: Path, data: bytes) -> str:
    """The encoding Python itself would use for these bytes (coding cookie, BOM, else UTF-8)."""
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
    except SyntaxError as error:
        if _head_is_not_utf8(data):
            # tokenize says "invalid or missing encoding declaration" for any undecodable byte in the
            # first two lines; decoding as UTF-8 reports where that byte is instead.
            return "utf-8-sig" if data.startswith(codecs.BOM_UTF8) else "utf-8"
        raise SourceError(path, str(error.msg), error.lineno or 1, 1) from None
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise SourceError(path, f"unknown encoding: {encoding}", 1, 1) from None
    return encoding


def _head_is_not_utf8(data: bytes) -> bool:
    """Whether the first two lines (where a coding cookie may stand) are not valid UTF-8."""
    try:
        b"\n".join(data.split(b"\n", 2)[:2]).decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


def decode_source(path: Path, data: bytes) -> str:
    """Decode source bytes as Python would; undecodable bytes are reported with line and column."""
    encoding = detect_encoding(path, data)
    if encoding == "utf-8-sig":  # drop the BOM here, so that it counts as no byte and no column
        data, encoding = data[len(codecs.BOM_UTF8) :], "utf-8"
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        line_start = data.rfind(b"\n", 0, error.start) + 1
        # in characters, as Python's syntax errors and libcst's positions count them
        column = len(data[line_start : error.start].decode(encoding, "replace")) + 1
        raise SourceError(
            path, f"cannot decode byte {data[error.start]:#04x} as {encoding}", line, column
        ) from None


def _unchanged_since_read(original: SourceFile) -> bool:
    """Whether the file still holds the bytes depfix read.

    The bytes are compared, not the mtime: timestamps are coarse (a kernel tick, 2 s on FAT) and
    some tools restore them, so an equal mtime does not prove an unchanged file.
    """
    try:
        return original.path.read_bytes() == original.data
    except OSError:
        return False


def _write_temp(path: Path, data: bytes, mode: int) -> Path:
    descriptor, name = tempfile.mkstemp(prefix=TEMP_PREFIX, suffix=".tmp", dir=path.parent)
    temp = Path(name)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp, mode)
    except BaseException:
        with contextlib.suppress(OSError):
            temp.unlink()
        raise
    return temp


@dataclass(frozen=True)
class PendingWrite:
    """New bytes for a path; `original` is None for a file to create."""

    path: Path
    data: bytes
    original: Optional[SourceFile]


def write_atomically(writes: Sequence[PendingWrite]) -> None:
    """Replace or create every file in `writes`, all or nothing.

    Each file is first written in full to a temporary file beside it; only when all of them exist are
    they renamed into place. A file changed on disk after depfix read it, or created meanwhile, is
    never overwritten: the whole group is refused with a SourceError naming it.
    """
    for write in writes:
        if write.original is None:
            if os.path.lexists(write.path):
                raise SourceError(write.path, "was created by someone else while depfix ran")
        elif not _unchanged_since_read(write.original):
            raise SourceError(write.path, "changed on disk after depfix read it; not overwritten")
    temps: list[tuple[Path, Path]] = []
    try:
        for write in writes:
            if write.original is None:
                write.path.parent.mkdir(parents=True, exist_ok=True)
                mode = 0o666 & ~_umask()
            else:
                mode = write.original.mode
            temps.append((_write_temp(write.path, write.data, mode), write.path))
    except OSError as error:
        for temp, _ in temps:
            with contextlib.suppress(OSError):
                temp.unlink()
        failed = writes[len(temps)].path
        raise SourceError(failed, f"cannot write: {error.strerror or error}") from None
    except BaseException:
        for temp, _ in temps:
            with contextlib.suppress(OSError):
                temp.unlink()
        raise
    done: list[int] = []
    try:
        for position, (temp, target) in enumerate(temps):
            os.replace(temp, target)
            done.append(position)
    except OSError as error:
        _roll_back(writes, temps, done)
        failed = temps[len(done)][1]
        raise SourceError(failed, f"cannot write: {error.strerror or error}") from None


def _roll_back(
    writes: Sequence[PendingWrite], temps: list[tuple[Path, Path]], done: list[int]
) -> None:
    for position in done:
        original = writes[position].original
        target = temps[position][1]
        with contextlib.suppress(OSError):
            if original is None:
                target.unlink()
            else:
                os.replace(_write_temp(target, original.data, original.mode), target)
    for position in range(len(done), len(temps)):
        with contextlib.suppress(OSError):
            temps[position][0].unlink()


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def remove_stale_temporaries(directories: Sequence[Path]) -> list[Path]:
    """Delete temporary files an interrupted run left in these directories; return them.

    A run killed between writing a temporary file and renaming it cannot clean up after itself;
    the next run that writes into the same directory does.
    """
    removed = []
    for directory in sorted(set(directories)):
        for leftover in sorted(directory.glob(f"{TEMP_PREFIX}*.tmp")):
            with contextlib.suppress(OSError):
                leftover.unlink()
                removed.append(leftover)
    return removed
