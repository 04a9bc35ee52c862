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
from typing import Optional

from depfix.io import SourceError, decode_source

_Opcodes = list[tuple[str, int, int, int, int]]
_NEWLINE = re.compile(r"\r\n|\r|\n")
_BLOCK_CHARACTERS = 200_000  # a changed block larger than this is mapped line by line
_ALIKE = 0.5  # a changed line less alike than this to every line it may replace was written anew


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
        self._alike: dict[int, tuple[int, Optional[_Opcodes]]] = {}
        """Per changed line of the rewritten text: its most alike line on disk (`_most_alike`)."""

    def point(self, line: int, column: int) -> tuple[int, int]:
        index = min(max(line, 1), len(self.new)) - 1
        offset = max(column - 1, 0)
        # the last block starting at or before the line holds it (a deleted block, empty in the
        # rewritten text, comes before the block that starts where it does)
        tag, i1, _, j1, j2 = self.opcodes[max(bisect_right(self.starts, index) - 1, 0)]
        if tag == "equal":
            return self._clamped(j1 + index - i1, offset)
        if j1 == j2:  # lines the run inserted: where they were inserted
            return self._clamped(j1, 0)
        # a changed line: the most alike line of the block it replaces (a parameter moved past
        # an inserted `*` is still the same parameter), then the same text in that line
        new_line = self.new[index]
        old_block = self.old[j1:j2]
        if len(old_block) * (len(new_line) + 1) > _BLOCK_CHARACTERS:
            return self._clamped(min(j1 + index - i1, j2 - 1), offset)
        beside = min(j1 + index - i1, j2 - 1)  # the line at the same place in the block
        found = self._alike.get(index)
        if found is None:
            found = self._alike[index] = self._most_alike(new_line, j1, old_block, beside)
        best, opcodes = found
        if opcodes is None:  # a line the run wrote: where it stands
            return self._clamped(beside, 0)
        mapped = _map_offset(opcodes, min(offset, len(new_line)), len(self.old[best]))
        return self._clamped(best, mapped)

    @staticmethod
    def _most_alike(
        new_line: str, first: int, old_block: list[str], beside: int
    ) -> tuple[int, Optional[_Opcodes]]:
        """The line of the block most alike `new_line` (the first of equals) and the opcodes from
        one to the other; no opcodes when no line is alike enough.

        A line whose quick upper bounds of the ratio cannot beat the best so far is not compared
        in full (`difflib.get_close_matches` does the same): the answer is the full comparison's.
        """
        matcher = SequenceMatcher(None, new_line, "", autojunk=False)
        best, best_ratio = beside, 0.0
        for number, old_line in enumerate(old_block, start=first):
            matcher.set_seq2(old_line)
            if matcher.real_quick_ratio() <= best_ratio or matcher.quick_ratio() <= best_ratio:
                continue
            ratio = matcher.ratio()
            if ratio > best_ratio:
                best, best_ratio = number, ratio
        if best_ratio < _ALIKE:
            return best, None
        matcher.set_seq2(old_block[best - first])
        return best, list(matcher.get_opcodes())

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


def _map_offset(opcodes: _Opcodes, offset: int, end: int) -> int:
    """Where the character at `offset` of one text is in another (`end` long), by their opcodes."""
    for tag, i1, i2, j1, _ in opcodes:
        if i1 <= offset < i2:
            return j1 + offset - i1 if tag == "equal" else j1
    return end
