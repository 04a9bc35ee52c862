"""Unified diffs in git's format, byte for byte, so that `git apply` and `patch -p1` reproduce a run.

Diffs are computed on bytes: a latin-1 or CRLF file yields a patch in its own encoding and line endings.
"""

from __future__ import annotations

import difflib
from typing import Optional

NO_NEWLINE = b"\\ No newline at end of file\n"


def _lines(data: Optional[bytes]) -> list[bytes]:
    return data.splitlines(keepends=True) if data else []


def unified_diff(path: str, old: Optional[bytes], new: bytes, context: int = 3) -> bytes:
    """The git-style diff turning `old` (None: the file does not exist yet) into `new`."""
    encoded = path.encode("utf-8", "surrogateescape")
    header = [b"diff --git a/" + encoded + b" b/" + encoded + b"\n"]
    if old is None:
        header.append(b"new file mode 100644\n")
    source = b"/dev/null" if old is None else b"a/" + encoded
    body = list(
        difflib.diff_bytes(
            difflib.unified_diff,
            _lines(old),
            _lines(new),
            fromfile=source,
            tofile=b"b/" + encoded,
            n=context,
            lineterm=b"",
        )
    )
    if not body:
        return b""
    out: list[bytes] = header
    for position, line in enumerate(body):
        if position < 2 or line.startswith(b"@@"):
            out.append(line + b"\n")
        elif line.endswith((b"\n", b"\r")):
            out.append(line)
        else:
            out.append(line + b"\n" + NO_NEWLINE)
    return b"".join(out)
