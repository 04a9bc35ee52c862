"""A read-only batched walk over a libcst tree that does not rebuild it.

`CSTNode.visit` rebuilds every node it passes (its `_visit_and_replace_children` calls the node's
constructor, validation included), even for a visitor that cannot change anything: for the rules' one
batched traversal that was as slow as parsing the file. This walk visits the same nodes in the same
order (libcst's visit order, read once per node class from the source of its
`_visit_and_replace_children`) and calls the same `visit_<Type>` / `leave_<Type>` methods, without
constructing anything. A node class whose order cannot be read, and any visitor with attribute hooks
(`visit_<Type>_<field>`), take libcst's own traversal.
"""

from __future__ import annotations

import ast
import inspect
import textwrap
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import ExitStack
from typing import Optional

import libcst as cst
from libcst.metadata import MetadataWrapper

Method = Callable[[cst.CSTNode], object]
libcst_visit_batched = cst.visit_batched

_FIELDS: dict[type[cst.CSTNode], Optional[tuple[str, ...]]] = {}


def child_fields(cls: type[cst.CSTNode]) -> Optional[tuple[str, ...]]:
    """The fields of `cls` that libcst visits, in its order; None when they cannot be read."""
    if cls not in _FIELDS:
        _FIELDS[cls] = _read_fields(cls)
    return _FIELDS[cls]


def _read_fields(cls: type[cst.CSTNode]) -> Optional[tuple[str, ...]]:
    method = getattr(cls, "_visit_and_replace_children", None)
    if method is None:
        return None
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(method)))
    except (OSError, TypeError, SyntaxError):
        return None
    calls = sorted(
        (
            node
            for node in ast.walk(tree)
            if isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id.startswith("visit_")
        ),
        key=lambda call: (call.lineno, call.col_offset),
    )
    fields: list[str] = []
    for call in calls:
        if len(call.args) < 2:
            return None
        name = call.args[1]
        if not (isinstance(name, ast.Constant) and isinstance(name.value, str)):
            return None
        if name.value not in fields:
            fields.append(name.value)
    if not all(
        hasattr(cls, "__dataclass_fields__") and f in cls.__dataclass_fields__ for f in fields
    ):
        return None
    return tuple(fields)


def _has_attribute_hooks(names: Iterable[str]) -> bool:
    # node class names are CamelCase without underscores: one after the type means a field hook
    return any("_" in name.split("_", 1)[1] for name in names)


def visit_batched(wrapper: MetadataWrapper, visitors: Sequence[cst.BatchableCSTVisitor]) -> None:
    """Run `visitors` over `wrapper.module` like `MetadataWrapper.visit_batched` (read-only)."""
    visit: dict[str, list[Method]] = {}
    leave: dict[str, list[Method]] = {}
    names: list[str] = []
    for visitor in visitors:
        for name, method in visitor.get_visitors().items():
            names.append(name)
            kind, _, type_name = name.partition("_")
            (visit if kind == "visit" else leave).setdefault(type_name, []).append(method)
    with ExitStack() as stack:
        for visitor in visitors:
            stack.enter_context(visitor.resolve(wrapper))
        if _has_attribute_hooks(names):
            libcst_visit_batched(wrapper.module, visitors)
        else:
            _Walk(visit, leave).node(wrapper.module)


class _Walk:
    def __init__(self, visit: Mapping[str, list[Method]], leave: Mapping[str, list[Method]]):
        self.visit = visit
        self.leave = leave
        self.fallback = _Fallback(self)

    def node(self, node: cst.CSTNode) -> None:
        cls = type(node)
        fields = child_fields(cls)
        if fields is None:
            node.visit(self.fallback)  # libcst's own traversal for this subtree
            return
        type_name = cls.__name__
        for method in self.visit.get(type_name, ()):
            method(node)
        for name in fields:
            value = getattr(node, name)
            if isinstance(value, cst.CSTNode):
                self.node(value)
            elif isinstance(value, (tuple, list)):
                for item in value:
                    if isinstance(item, cst.CSTNode):
                        self.node(item)
        for method in self.leave.get(type_name, ()):
            method(node)


class _Fallback(cst.CSTVisitor):
    """libcst's traversal, for the subtree of a node whose fields cannot be read."""

    def __init__(self, walk: _Walk) -> None:
        super().__init__()
        self.walk = walk

    def on_visit(self, node: cst.CSTNode) -> bool:
        for method in self.walk.visit.get(type(node).__name__, ()):
            method(node)
        return True

    def on_leave(self, original_node: cst.CSTNode) -> None:
        for method in self.walk.leave.get(type(original_node).__name__, ()):
            method(original_node)


def replace_descendants(
    node: cst.CSTNode, replacements: Mapping[cst.CSTNode, cst.CSTNode], replaced: set[cst.CSTNode]
) -> Optional[cst.CSTNode]:
    """`node` with each of its descendants found in `replacements` replaced (None: cannot say).

    What a transformer replacing those nodes in `on_leave` returns, except that only the ancestors
    of a replaced node are rebuilt: every other node is kept as it is. A replaced node's own
    descendants are not searched. Each node replaced is added to `replaced`. None when a node class
    on the way has a visit order that cannot be read.
    """
    replacement = replacements.get(node)
    if replacement is not None:
        replaced.add(node)
        return replacement
    fields = child_fields(type(node))
    if fields is None:
        return None
    changes: dict[str, object] = {}
    for name in fields:
        value = getattr(node, name)
        if isinstance(value, cst.CSTNode):
            new = replace_descendants(value, replacements, replaced)
            if new is None:
                return None
            if new is not value:
                changes[name] = new
        elif isinstance(value, (tuple, list)):
            items: list[object] = []
            for item in value:
                if isinstance(item, cst.CSTNode):
                    new = replace_descendants(item, replacements, replaced)
                    if new is None:
                        return None
                    items.append(new)
                else:
                    items.append(item)
            if any(new is not old for new, old in zip(items, value)):
                changes[name] = type(value)(items)
    return node.with_changes(**changes) if changes else node
