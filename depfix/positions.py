"""Positions in a text the run rewrote, mapped back to the text on disk.

The rules of a later round (and the file rules of a round whose planning rewrote a file) see the
file as the run has rewritten it so far: an alias DF007 inserts or an import DF006 adds moves every
line below it. What `check` prints must point into the file the user has open, so each such
position is mapped back through a diff of the two texts: a position in text both have is moved to
where that text is on disk; a position in text the run wrote (`Annotated[` around a type, an
inserted line) goes to the start of what it replaced, or to where it was inserted.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from difflib import SequenceMatcher
from pathlib import Path

from depfix.io import SourceError, decode_source

_NEWLINE = re.compile(r"\r\n|\r|\n")
_BLOCK_CHARACTERS = 20_000  # a changed block larger than this is mapped line by line


def _lines(data: bytes) -> list[str]:
    try:
        text = decode_source(Path("<source>"), data)
    except (SourceError, LookupError, SyntaxError):
        text = data.decode("latin-1")
    return _NEWLINE.split(text)


class DiskPositions:
    """Maps (line, column) of `rewritten` (1-based, columns in characters) into `original`."""

    def __init__(self, rewritten: bytes, original: bytes) -> None:
        self.new = _lines(rewritten)
        self.old = _lines(original)
        matcher = SequenceMatcher(None, self.new, self.old, autojunk=False)
        self.opcodes = matcher.get_opcodes()
        self.starts = [opcode[1] for opcode in self.opcodes]

    def point(self, line: int, column: int) -> tuple[int, int]:
        index = min(max(line, 1), len(self.new)) - 1
        offset = max(column - 1, 0)
        # the last block starting at or before the line holds it (a deleted block, empty in the
        # rewritten text, comes before the block that starts where it does)
        tag, i1, i2, j1, j2 = self.opcodes[max(bisect_right(self.starts, index) - 1, 0)]
        if tag == "equal":
            return self._clamped(j1 + index - i1, offset)
        if j1 == j2:  # lines the run inserted: where they were inserted
            return self._clamped(j1, 0)
        new_block = self.new[i1:i2]
        old_block = self.old[j1:j2]
        if sum(map(len, new_block)) + sum(map(len, old_block)) > _BLOCK_CHARACTERS:
            return self._clamped(min(j1 + index - i1, j2 - 1), offset)
        # characters of the block, its lines joined: the same offset in text both versions have
        start = sum(len(text) + 1 for text in new_block[: index - i1])
        mapped = _map_offset(
            "\n".join(new_block),
            "\n".join(old_block),
            start + min(offset, len(new_block[index - i1])),
        )
        line_index = j1
        for text in old_block:
            if mapped <= len(text):
                break
            mapped -= len(text) + 1
            line_index += 1
        return self._clamped(min(line_index, j2 - 1), mapped)

    def _clamped(self, index: int, offset: int) -> tuple[int, int]:
        index = min(max(index, 0), len(self.old) - 1)
        return index + 1, min(offset, len(self.old[index])) + 1

    def span(
        self, line: int, column: int, end_line: int, end_column: int
    ) -> tuple[int, int, int, int]:
        start = self.point(line, column)
        end = self.point(end_line, end_column)
        if end < start:
            end = start
        return (*start, *end)


def _map_offset(new: str, old: str, offset: int) -> int:
    for tag, i1, i2, j1, _ in SequenceMatcher(None, new, old, autojunk=False).get_opcodes():
        if i1 <= offset < i2:
            return j1 + offset - i1 if tag == "equal" else j1
    return len(old)
