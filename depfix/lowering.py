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
_TYPE_PARAMETERS = sys.version_info < (3, 12)  # PEP 695
_UNPARENTHESIZED_EXCEPT = sys.version_info < (3, 14)  # PEP 758
_TEMPLATE_STRINGS = sys.version_info < (3, 14)  # PEP 750

_Leaf = Union[cst.SimpleString, cst.FormattedString, cst.TemplatedString]
_String = Union[_Leaf, cst.ConcatenatedString]


def lower(text: str) -> Optional[str]:
    """`text` with what this Python cannot parse lowered; None when libcst cannot parse it either.

    The result may still be refused by `ast` (a construct not lowered here): the caller then reports
    the original error.
    """
    try:
        module = cst.parse_module(text)
    except (Exception, RecursionError, MemoryError):
        # a syntax error, or one of libcst's own (`CSTLogicError` for t-strings concatenated)
        return None
    wrapper = MetadataWrapper(module, unsafe_skip_copy=True)
    lowering = _Lowering(text, wrapper.resolve(PositionProvider))
    wrapper.visit(lowering)
    return "".join(lowering.chars)


class _Lowering(cst.CSTVisitor):
    """Edits `chars`, one entry per character of the text; an entry may become several (or none)."""

    def __init__(self, text: str, positions: Mapping[cst.CSTNode, CodeRange]) -> None:
        self.text = text
        self.chars: list[str] = list(text)
        self.positions = positions
        self.line_starts = [0] + [match.end() for match in _LINE_BREAK.finditer(text)]

    # ---- positions ----------------------------------------------------------------------------
    def span(self, node: cst.CSTNode) -> tuple[int, int]:
        """The character offsets of a node's code (its parentheses excluded)."""
        where = self.positions[node]
        start = self.line_starts[where.start.line - 1] + where.start.column
        end = self.line_starts[where.end.line - 1] + where.end.column
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
        if not _TYPE_PARAMETERS:
            return True
        start, _ = self.span(node)
        name_start, name_end = self.span(node.name)
        value_start, _ = self.span(node.value)
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
        if _TYPE_PARAMETERS:
            self.blank(*self.span(node))
        return False  # a function's or class's: facts read nothing in them

    # ---- PEP 758 ------------------------------------------------------------------------------
    def visit_ExceptHandler(self, node: cst.ExceptHandler) -> Optional[bool]:
        self.parenthesize(node.type)
        return True

    def visit_ExceptStarHandler(self, node: cst.ExceptStarHandler) -> Optional[bool]:
        self.parenthesize(node.type)
        return True

    def parenthesize(self, types: Optional[cst.BaseExpression]) -> None:
        if not (_UNPARENTHESIZED_EXCEPT and isinstance(types, cst.Tuple) and not types.lpar):
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
        if not (template and _TEMPLATE_STRINGS) and _parses(self.text[start:end]):
            return False
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
        expression_start, expression_end = self.span(part.expression)
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
