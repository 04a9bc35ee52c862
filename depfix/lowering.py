"""Reading syntax newer than the running Python: a copy of a file that its `ast` accepts.

Facts are read with the standard library's `ast`, which knows only the running interpreter's grammar,
while libcst's parser knows every grammar up to Python 3.15. A file that `ast.parse` refuses but
libcst reads is "lowered": the constructs this Python cannot parse are rewritten in place into ones
it can, for reading only (the lowered text is never written, shown or cached; rules edit the file
itself, with libcst). Every line stays where it was, and so does every column, but for the one noted
below, so that the positions in the facts are the file's. What each construct becomes reads, in the
facts, exactly as the newer Python's own `ast` tree does (`tests/test_lowering.py` compares them):

- `type X[T] = V` (PEP 695, Python 3.12) becomes `(    X)=   -V`: `X` is bound to something
  the facts cannot name (a `TypeAliasType`, neither V nor what V names), and what V uses is read.
  `depfix.facts` reads the 3.12 `ast.TypeAlias` the same way.
- `def f[T](...)` and `class C[T]:` (PEP 695): the type parameters become blanks (facts ignore type
  parameters on every Python).
- `except A, B:` (PEP 758, Python 3.14) becomes `except(A, B):`; when no blank stands before the
  colon, the colon and what follows it on that line move one column right.
- A t-string (PEP 750, Python 3.14) becomes `-[ ... ]` (an operation, as a `Template` is not a literal),
  and an f-string this Python cannot parse (PEP 701, Python 3.12: quotes reused inside, backslashes,
  comments or line breaks in a replacement field) becomes `[ ... ]` (a literal, as an f-string is):
  each replacement field becomes `[expression]` with the expression at its place, and the text,
  quotes, conversions and format specifications become blanks.
- On Python 3.9 and 3.10: `match s:` becomes `if  [s]:` and each `case P if g:` `if -P' or g:`, P'
  the pattern as an expression of the same extent (`as` -> `or`, `C(a, k=b)` -> `C[a, k:b]`: not a
  call); `except*` becomes `except `; `*args: *Ts` and `x[*a]` become `-Ts` and `x[-a]`. The names
  a pattern captures are then not seen as bound by DF008's import-order simulation
  (`depfix.import_order`): at a module's top level that matters only to a cycle importing one.

What libcst 1.9 itself refuses (t-strings concatenated together, the `tr"..."` prefix) and what is
not lowered (`x[y := 1]` on Python 3.9) keep the interpreter's syntax error.

Only a file that `ast.parse` refuses pays for libcst's parse (`depfix.facts.parse_source`).
"""

from __future__ import annotations

import ast
import re
import sys
from collections.abc import Mapping
from typing import Optional, Union

import libcst as cst
from libcst.metadata import CodeRange, MetadataWrapper, PositionProvider

VERSION = "1"
"""Part of the cache keys of facts and syntax checks: a change here must not reuse older results."""

_LINE_BREAK = re.compile(r"\r\n?|\n")  # what libcst's positions count as a line break
# the first Python whose grammar has each construct
_MATCH = (3, 10)  # PEP 634
_EXCEPT_STAR = (3, 11)  # PEP 654
_STARRED_ANNOTATIONS = (3, 11)  # PEP 646: `*args: *Ts`, `x[*a]`
_TYPE_PARAMETERS = (3, 12)  # PEP 695
_NESTED_F_STRINGS = (3, 12)  # PEP 701
_UNPARENTHESIZED_EXCEPT = (3, 14)  # PEP 758
_TEMPLATE_STRINGS = (3, 14)  # PEP 750

_Leaf = Union[cst.SimpleString, cst.FormattedString, cst.TemplatedString]
_String = Union[_Leaf, cst.ConcatenatedString]


def lower(text: str, version: tuple[int, int] = sys.version_info[:2]) -> Optional[str]:
    """`text` with what Python `version` (this one) cannot parse lowered; None when libcst cannot
    parse it either.

    The result may still be refused by `ast` (a construct not lowered here): the caller then reports
    the original error. Tests lower for an older `version` what this Python reads, to compare.
    """
    try:
        module = cst.parse_module(text)
    except (Exception, RecursionError, MemoryError):
        # a syntax error, or one of libcst's own (`CSTLogicError` for t-strings concatenated)
        return None
    wrapper = MetadataWrapper(module, unsafe_skip_copy=True)
    lowering = _Lowering(text, wrapper.resolve(PositionProvider), version)
    try:
        wrapper.visit(lowering)
    except _Unexpected:
        return None
    return Lowered("".join(lowering.chars), text, frozenset(lowering.type_alias_lines))


class Lowered(str):
    """A lowered text, which keeps the file's own: code the facts copy is read from the file."""

    original: str
    type_alias_lines: frozenset[int]
    """The lines on which a `type X = V` statement starts (lowered to `(X)= -V`), so that the facts
    read it as the statement it is and not as an assignment."""

    def __new__(
        cls, text: str, original: str, type_alias_lines: frozenset[int] = frozenset()
    ) -> Lowered:
        made = super().__new__(cls, text)
        made.original = original
        made.type_alias_lines = type_alias_lines
        return made


class _Unexpected(Exception):
    """The text around a node is not what its lowering expects: the file is not lowered."""


class _Lowering(cst.CSTVisitor):
    """Edits `chars`, one entry per character of the text; an entry may become several (or none)."""

    def __init__(
        self, text: str, positions: Mapping[cst.CSTNode, CodeRange], version: tuple[int, int]
    ) -> None:
        self.text = text
        self.version = version
        self.chars: list[str] = list(text)
        self.positions = positions
        self.line_starts = [0] + [match.end() for match in _LINE_BREAK.finditer(text)]
        self.type_alias_lines: set[int] = set()

    # ---- positions ----------------------------------------------------------------------------
    def span(self, node: cst.CSTNode) -> tuple[int, int]:
        """The character offsets of a node's code (its parentheses excluded)."""
        where = self.positions[node]
        start = self.line_starts[where.start.line - 1] + where.start.column
        end = self.line_starts[where.end.line - 1] + where.end.column
        return start, end

    def outer(self, node: cst.CSTNode) -> tuple[int, int]:
        """The character offsets of a node's code with its own parentheses."""
        start, end = self.span(node)
        lpar, rpar = getattr(node, "lpar", None), getattr(node, "rpar", None)
        if lpar:
            start = self.span(lpar[0])[0]
        if rpar:
            end = self.span(rpar[-1])[1]
        return start, end

    def blank(self, start: int, end: int) -> None:
        """Blanks over `[start, end)`, line breaks kept and escaped (a statement may span them)."""
        for offset in range(start, end):
            char = self.text[offset]
            if char == "\r" or (char == "\n" and self.text[offset - 1 : offset] != "\r"):
                self.chars[offset] = "\\" + char
            elif char != "\n":
                self.chars[offset] = " "

    # ---- PEP 695 ------------------------------------------------------------------------------
    def visit_TypeAlias(self, node: cst.TypeAlias) -> Optional[bool]:
        if self.version >= _TYPE_PARAMETERS:
            return True
        start, _ = self.span(node)
        self.type_alias_lines.add(self.positions[node].start.line)
        name_start, name_end = self.span(node.name)
        value_start, _ = self.outer(node.value)
        self.blank(start, name_start)
        self.blank(name_end, value_start)
        self.chars[start] = "("  # `(X)= -V`: the name and the value keep their columns
        if (
            value_start - name_end >= 3
            and not _LINE_BREAK.search(self.text, name_end, name_end + 2)
            and self.text[value_start - 1] not in "\r\n"
        ):
            self.chars[name_end], self.chars[name_end + 1] = ")", "="
            self.chars[value_start - 1] = "-"  # V read as an operation, not as what it names
        else:  # `type X=V`: no room
            self.chars[name_end] = ")=-" + self.chars[name_end]
        node.value.visit(self)
        return False

    def visit_TypeParameters(self, node: cst.TypeParameters) -> Optional[bool]:
        if self.version < _TYPE_PARAMETERS:
            self.blank(*self.span(node))
        return False  # a function's or class's: facts read nothing in them

    # ---- PEP 758 ------------------------------------------------------------------------------
    def visit_ExceptHandler(self, node: cst.ExceptHandler) -> Optional[bool]:
        self.parenthesize(node.type)
        return True

    def visit_ExceptStarHandler(self, node: cst.ExceptStarHandler) -> Optional[bool]:
        self.parenthesize(node.type)
        if (
            self.version < _EXCEPT_STAR
        ):  # `except*` -> `except `: an `ast.Try`, which the facts read as a `TryStar`
            start, _ = self.span(node)
            self.expect(start, "except")
            star = self.skip_blanks(start + len("except"))
            self.expect(star, "*")
            self.chars[star] = " "
        return True

    def parenthesize(self, types: Optional[cst.BaseExpression]) -> None:
        if not (
            self.version < _UNPARENTHESIZED_EXCEPT
            and isinstance(types, cst.Tuple)
            and not types.lpar
        ):
            return
        start, end = self.span(types)
        if start > 0 and self.text[start - 1] in " \t":
            self.chars[start - 1] = "("
        else:
            self.chars[start] = "(" + self.chars[start]
        if end < len(self.text) and self.text[end] in " \t":
            self.chars[end] = ")"
        else:
            self.chars[end] = ")" + self.chars[end]

    # ---- PEP 646 ------------------------------------------------------------------------------
    def visit_Param(self, node: cst.Param) -> Optional[bool]:
        annotation = node.annotation.annotation if node.annotation else None
        if self.version < _STARRED_ANNOTATIONS and isinstance(annotation, cst.StarredElement):
            self.unstar(annotation)  # `*args: *Ts` -> `*args: -Ts`, not a literal either
        return True

    def visit_Index(self, node: cst.Index) -> Optional[bool]:
        if self.version < _STARRED_ANNOTATIONS and node.star:
            self.unstar(node)  # `x[*a]` -> `x[-a]`
        return True

    def unstar(self, node: cst.CSTNode) -> None:
        start, _ = self.span(node)
        self.expect(start, "*")
        self.chars[start] = "-"

    # ---- PEP 634 ------------------------------------------------------------------------------
    def visit_Match(self, node: cst.Match) -> Optional[bool]:
        """`match s:` -> `if  [s]:`, each `case P if g:` -> `if -P' or g:` (`depfix.facts` reads a
        `match` as conditional code, like an `if`), with P' the pattern as an expression of the
        same extent: `as` -> `or`, `C(a, k=b)` -> `C[a, k:b]` (not a call), the rest as written."""
        if self.version >= _MATCH:
            return True
        start, _ = self.span(node)
        self.expect(start, "match")
        self.chars[start : start + 5] = ["i", "f", " ", " ", "["]
        _, subject_end = self.outer(node.subject)
        self.chars[subject_end] = "]" + self.chars[subject_end]
        node.subject.visit(self)
        for case in node.cases:
            self.case(case)
        return False

    def case(self, case: cst.MatchCase) -> None:
        start, _ = self.span(case)
        self.expect(start, "case")
        _, pattern_end = self.span(case.pattern)
        open_sequence = isinstance(case.pattern, cst.MatchList) and case.pattern.lbracket is None
        self.chars[start : start + 4] = (
            ["i", "f", "-", "["] if open_sequence else ["i", "f", " ", "-"]
        )
        if open_sequence:
            self.chars[pattern_end] = "]" + self.chars[pattern_end]
        self.pattern(case.pattern)
        if case.guard is not None:
            self.replace_keyword(self.outer(case.guard)[0], "if", "or")
            case.guard.visit(self)
        case.body.visit(self)

    def pattern(self, node: cst.MatchPattern) -> None:
        if isinstance(node, cst.MatchAs):
            if node.pattern is not None:
                self.pattern(node.pattern)
                if node.name is not None:
                    self.replace_keyword(self.span(node.name)[0], "as", "or")
        elif isinstance(node, cst.MatchOr):
            for alternative in node.patterns:
                self.pattern(alternative.pattern)
        elif isinstance(node, (cst.MatchList, cst.MatchTuple)):
            for item in node.patterns:
                if isinstance(item, cst.MatchSequenceElement):
                    self.pattern(item.value)
        elif isinstance(node, cst.MatchMapping):
            for entry in node.elements:
                entry.key.visit(self)
                self.pattern(entry.pattern)
        elif isinstance(node, cst.MatchClass):
            node.cls.visit(self)
            _, cls_end = self.span(node.cls)
            _, end = self.span(node)
            opening = self.skip_blanks(cls_end)
            self.expect(opening, "(")
            self.expect(end - 1, ")")
            empty = not node.patterns and not node.kwds  # `C()` -> `C  `: `C[]` would not parse
            self.chars[opening], self.chars[end - 1] = (" ", " ") if empty else ("[", "]")
            for positional in node.patterns:
                self.pattern(positional.value)
            for keyword in node.kwds:
                self.replace_keyword(self.outer(keyword.pattern)[0], "=", ":")
                self.pattern(keyword.pattern)
        elif isinstance(node, cst.MatchValue):
            node.value.visit(self)

    # ---- text checks --------------------------------------------------------------------------
    def expect(self, offset: int, word: str) -> None:
        if self.text[offset : offset + len(word)] != word:
            raise _Unexpected(word)

    def skip_blanks(self, offset: int) -> int:
        while offset < len(self.text) and self.text[offset] in " \t\\\r\n":
            offset += 1
        return offset

    def replace_keyword(self, before: int, word: str, replacement: str) -> None:
        """Replace `word`, which stands before `before` with only blanks between."""
        end = before
        while end > 0 and self.text[end - 1] in " \t\\\r\n":
            end -= 1
        self.expect(end - len(word), word)
        for offset, char in enumerate(replacement, end - len(word)):
            self.chars[offset] = char

    # ---- PEP 701 and PEP 750 ------------------------------------------------------------------
    def visit_ConcatenatedString(self, node: cst.ConcatenatedString) -> Optional[bool]:
        return self.string(node)

    def visit_FormattedString(self, node: cst.FormattedString) -> Optional[bool]:
        return self.string(node)

    def visit_TemplatedString(self, node: cst.TemplatedString) -> Optional[bool]:
        return self.string(node)

    def string(self, node: _String) -> bool:
        start, end = self.span(node)
        leaves = _leaves(node)
        template = any(isinstance(leaf, cst.TemplatedString) for leaf in leaves)
        if not (template and self.version < _TEMPLATE_STRINGS):
            if self.version >= _NESTED_F_STRINGS:
                return True  # read as it is; a t-string inside is lowered on its own
            if self.version == sys.version_info[:2] and _parses(self.text[start:end]):
                return True  # else for a Python older than this one: every f-string
        for leaf in leaves:
            self.blank(*self.span(leaf))
        for leaf in leaves:
            if not isinstance(leaf, cst.SimpleString):
                for part in leaf.parts:
                    self.replacement_field(part)
        if template:
            self.chars[start], self.chars[start + 1] = "-", "["
        else:
            self.chars[start] = "["
        self.chars[end - 1] = "]"
        return False

    def replacement_field(self, part: cst.CSTNode) -> None:
        if not isinstance(part, (cst.FormattedStringExpression, cst.TemplatedStringExpression)):
            return
        start, end = self.span(part)
        self.chars[start], self.chars[end - 1] = "[", "]"
        expression_start, expression_end = self.outer(part.expression)
        self.chars[expression_start:expression_end] = self.text[expression_start:expression_end]
        part.expression.visit(self)  # strings inside may need lowering too
        for inner in part.format_spec or ():
            self.replacement_field(inner)


def _leaves(node: _String) -> list[_Leaf]:
    if isinstance(node, cst.ConcatenatedString):
        return [*_leaves(node.left), *_leaves(node.right)]
    return [node]


def _parses(expression: str) -> bool:
    try:
        ast.parse(expression, mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False
    return True
