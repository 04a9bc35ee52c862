"""Suppression comments: `# depfix: ignore`, `# depfix: ignore[DF001,DF006]`, `# depfix: skip-file`.

An ignore comment applies to diagnostics reported on its line, or to every diagnostic inside the
function whose `def` line carries it.
"""

from __future__ import annotations

import io
import re
import tokenize
from dataclasses import dataclass, field
from typing import Optional

NEEDLE = b"depfix:"
_COMMENT = re.compile(r"#\s*depfix:\s*(?P<kind>ignore|skip-file)\b(?:\[(?P<codes>[^\]]*)\])?")
ALL_CODES: frozenset[str] = frozenset({"*"})


@dataclass
class Suppressions:
    skip_file: bool = False
    lines: dict[int, frozenset[str]] = field(default_factory=dict)

    def ignores(self, code: str, line: int, def_lines: tuple[int, ...] = ()) -> bool:
        for candidate in (line, *def_lines):
            codes = self.lines.get(candidate)
            if codes is not None and ("*" in codes or any(code.startswith(c) for c in codes)):
                return True
        return False


def parse_suppressions(text: str) -> Suppressions:
    """Read the suppression comments of a source text (comments only, never strings)."""
    found = Suppressions()
    if "depfix:" not in text:
        return found
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(text).readline))
    except (tokenize.TokenError, SyntaxError, IndentationError):
        return found
    for token in tokens:
        if token.type != tokenize.COMMENT:
            continue
        match = _COMMENT.search(token.string)
        if match is None:
            continue
        if match.group("kind") == "skip-file":
            found.skip_file = True
            continue
        codes = _codes(match.group("codes"))
        line = token.start[0]
        found.lines[line] = found.lines.get(line, frozenset()) | codes
    return found


def _codes(text: Optional[str]) -> frozenset[str]:
    if text is None:
        return ALL_CODES
    codes = frozenset(code.strip().upper() for code in text.split(",") if code.strip())
    return codes or ALL_CODES
