"""The facts read a node's source text as `ast.get_source_segment` does, line ends and all."""

from __future__ import annotations

import ast

import pytest

from depfix.facts import FileFacts, _Extractor

TEXTS = [
    "a = f(1,\n  2)\r\nb = g(x, y=3)\rc = h('é',\n\x0c k)\n",
    "x = Q(1)\n# \u2028 a line separator inside a comment\ny = Z(2, 3)",
    "z = 1",
    "s = f'''a\n{b}\n'''\nt = g(\n)\n",
    "def f(a: int = Query(default=1, alias='é'), b=Depends(  g  )):\n    return [a,\n  b]\n",
]


@pytest.mark.parametrize("text", TEXTS)
def test_segment_is_get_source_segment(text: str) -> None:
    tree = ast.parse(text)
    extractor = _Extractor(FileFacts("m.py", "m", False), text)
    nodes = [
        node
        for node in ast.walk(tree)
        if isinstance(node, (ast.expr, ast.keyword)) and hasattr(node, "lineno")
    ]
    assert nodes
    for node in nodes:
        assert extractor.segment(node) == ast.get_source_segment(text, node)
