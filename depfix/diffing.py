"""Unified diffs in git's format, byte for byte, so that `git apply` and `patch -p1` reproduce a run.

Diffs are computed on bytes: a latin-1 or CRLF file yields a patch in its own encoding and line endings.
"""

from __future__ import annotations

import difflib
from typing import Optional

NO_NEWLINE = b"\\ No newline at end of file\n"
_C_ESCAPES = {0x07: b"a", 0x08: b"b", 0x09: b"t", 0x0A: b"n", 0x0B: b"v", 0x0C: b"f", 0x0D: b"r"}


def _lines(data: Optional[bytes]) -> list[bytes]:
    """Lines as git sees them: only `\\n` ends a line (a lone `\\r` is part of the line)."""
    if not data:
        return []
    lines = data.split(b"\n")
    last = lines.pop()
    return [line + b"\n" for line in lines] + ([last] if last else [])


def _quoted(prefixed: bytes) -> bytes:
    """A path as git writes it in a header: C-quoted when it holds `"`, `\\` or a control byte."""
    if not any(byte in b'"\\' or byte < 0x20 or byte == 0x7F for byte in prefixed):
        return prefixed
    out = bytearray(b'"')
    for byte in prefixed:
        if byte in b'"\\':
            out += b"\\" + bytes([byte])
        elif byte in _C_ESCAPES:
            out += b"\\" + _C_ESCAPES[byte]
        elif byte < 0x20 or byte == 0x7F:
            out += b"\\%03o" % byte
        else:
            out.append(byte)
    return bytes(out + b'"')


def unified_diff(path: str, old: Optional[bytes], new: bytes, context: int = 3) -> bytes:
    """The git-style diff turning `old` (None: the file does not exist yet) into `new`."""
    encoded = path.encode("utf-8", "surrogateescape")
    before, after = _quoted(b"a/" + encoded), _quoted(b"b/" + encoded)
    header = [b"diff --git " + before + b" " + after + b"\n"]
    if old is None:
        header.append(b"new file mode 100644\n")
    # git ends a ---/+++ name that holds a space with a tab, so that `patch` reads the whole name
    tab = b"\t" if b" " in encoded else b""
    source = b"/dev/null" if old is None else before + tab
    body = list(
        difflib.diff_bytes(
            difflib.unified_diff,
            _lines(old),
            _lines(new),
            fromfile=b"",
            tofile=b"",
            n=context,
            lineterm=b"",
        )
    )
    if not body:
        return b"".join(header) if old is None else b""  # an empty new file is a header alone
    out: list[bytes] = [*header, b"--- " + source + b"\n", b"+++ " + after + tab + b"\n"]
    for line in body[2:]:
        if line.startswith(b"@@"):
            out.append(line + b"\n")
        elif line.endswith(b"\n"):
            out.append(line)
        else:
            out.append(line + b"\n" + NO_NEWLINE)
    return b"".join(out)
