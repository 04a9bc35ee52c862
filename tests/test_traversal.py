"""The fast traversals visit exactly what the libraries' own traversals visit.

- `depfix.traversal.visit_batched` (the rules' walk, which does not rebuild the tree) calls the same
  `visit_<Type>` / `leave_<Type>` methods on the same nodes in the same order as libcst's batched visit.
- The facts extractor's `visit` / `generic_visit` give the same facts as `ast.NodeVisitor`'s.

Checked on every fixture and test file of this repository and on hypothesmith's grammar-based programs.
"""

from __future__ import annotations

import ast
import inspect
import warnings
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import libcst as cst
import pytest
from libcst.metadata import MetadataWrapper

from depfix import facts as facts_module
from depfix import traversal
from depfix.facts import FileFacts, extract_facts, parse_source
from tests.conftest import ROOT, SOURCES, generated_programs


def _node_classes() -> Iterator[type[cst.CSTNode]]:
    stack = list(cst.CSTNode.__subclasses__())
    while stack:
        cls = stack.pop()
        yield cls
        stack.extend(cls.__subclasses__())


EVERY_NAME = sorted(
    {
        f"{kind}_{cls.__name__}"
        for cls in _node_classes()
        if not cls.__name__.startswith("_")  # abstract bases: no node is of their type
        for kind in ("visit", "leave")
    }
)


class _Recorder(cst.BatchableCSTVisitor):
    """Records every visit and leave, of every node type, with the node's identity."""

    def __init__(self, names: list[str] = EVERY_NAME) -> None:
        super().__init__()
        self.events: list[tuple[str, int]] = []
        self.names = names

    def get_visitors(self) -> Mapping[str, Callable[[cst.CSTNode], None]]:
        return {name: self._recording(name) for name in self.names}

    def _recording(self, name: str) -> Callable[[cst.CSTNode], None]:
        return lambda node: self.events.append((name, id(node)))


def _events(
    module: cst.Module, walk: Callable[[MetadataWrapper, list[_Recorder]], object]
) -> list[list[tuple[str, int]]]:
    wrapper = MetadataWrapper(module, unsafe_skip_copy=True)
    recorders = [_Recorder(), _Recorder(["visit_Name", "leave_FunctionDef"])]
    walk(wrapper, recorders)
    return [recorder.events for recorder in recorders]


def _libcst_walk(wrapper: MetadataWrapper, visitors: list[_Recorder]) -> None:
    wrapper.visit_batched(visitors)


def _not_called(*args: object) -> None:
    raise AssertionError("the walk fell back to libcst's traversal")


def _same_visits(source: str | bytes, *, fast: bool = True) -> None:
    module = cst.parse_module(source)
    expected = _events(module, _libcst_walk)
    assert expected[0], "the recorder saw nothing: the comparison would be empty"
    with pytest.MonkeyPatch.context() as patch:
        if fast:
            patch.setattr(traversal, "libcst_visit_batched", _not_called)
        assert _events(module, traversal.visit_batched) == expected


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_the_walk_visits_what_libcst_visits(path: Path) -> None:
    _same_visits(path.read_bytes())


def test_every_node_class_has_its_visit_order_read() -> None:
    classes = [
        cls for cls in _node_classes() if not inspect.isabstract(cls)
    ]  # nodes exist of these
    assert len(classes) > 100
    unread = [cls.__name__ for cls in classes if traversal.child_fields(cls) is None]
    assert not unread, f"these take libcst's slow traversal: {unread}"


def test_a_node_class_whose_order_cannot_be_read_takes_libcsts_traversal(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    unread: list[type[cst.CSTNode]] = [cst.FunctionDef, cst.Call]
    for cls in unread:
        monkeypatch.setitem(traversal._FIELDS, cls, None)
    _same_visits((ROOT / "fixtures" / "demo_app" / "app" / "deps.py").read_bytes())


def test_a_visitor_with_attribute_hooks_takes_libcsts_traversal() -> None:
    source = "def f(a, b=1):\n    return g(a)\n"
    names = ["visit_FunctionDef_params", "leave_FunctionDef_params", "visit_Name"]
    module = cst.parse_module(source)
    events = []
    for walk in (_libcst_walk, traversal.visit_batched):
        recorder = _Recorder(names)
        walk(MetadataWrapper(module, unsafe_skip_copy=True), [recorder])
        events.append(recorder.events)
    assert [name for name, _ in events[0]].count("visit_FunctionDef_params") == 1
    assert events[1] == events[0]


@generated_programs
def test_the_walk_visits_what_libcst_visits_on_generated_programs(source: str) -> None:
    try:
        cst.parse_module(source)
    except (cst.ParserSyntaxError, RecursionError):
        return
    _same_visits(source)


# ---- the facts extractor -----------------------------------------------------------------------


def _facts(source: str, *, stdlib_traversal: bool) -> FileFacts:
    extractor = facts_module._Extractor
    saved = extractor.visit, extractor.generic_visit
    if stdlib_traversal:
        extractor.visit = ast.NodeVisitor.visit  # type: ignore[method-assign]
        extractor.generic_visit = ast.NodeVisitor.generic_visit  # type: ignore[method-assign]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                text, tree = source, ast.parse(source)
            except SyntaxError:  # syntax newer than this Python (fixtures): lowered
                text, tree = parse_source("m.py", source.encode())
            return extract_facts("m.py", "m", False, tree, text)
    finally:
        extractor.visit, extractor.generic_visit = saved  # type: ignore[method-assign]


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_the_extractor_finds_what_the_stdlib_traversal_finds(path: Path) -> None:
    source = path.read_text(encoding="utf-8")
    assert _facts(source, stdlib_traversal=False) == _facts(source, stdlib_traversal=True)


def test_the_comparison_of_facts_can_fail() -> None:
    source = (ROOT / "fixtures" / "demo_app" / "app" / "deps.py").read_text()
    found = _facts(source, stdlib_traversal=False)
    assert found.functions and found.dependency_refs
    facts_module._CHILD_FIELDS[ast.Module] = ()  # the module's statements no longer visited
    try:
        assert _facts(source, stdlib_traversal=False) != found
    finally:
        facts_module._CHILD_FIELDS.pop(ast.Module)


@generated_programs
def test_the_extractor_finds_what_the_stdlib_traversal_finds_on_generated_programs(
    source: str,
) -> None:
    try:
        expected = _facts(source, stdlib_traversal=True)
    except RecursionError:
        return
    assert _facts(source, stdlib_traversal=False) == expected


class _Names(cst.CSTVisitor):
    def __init__(self) -> None:
        self.found: list[cst.Name] = []

    def visit_Name(self, node: cst.Name) -> None:
        self.found.append(node)


class _Replace(cst.CSTTransformer):
    def __init__(self, replacements: Mapping[cst.CSTNode, cst.CSTNode]) -> None:
        super().__init__()
        self.replacements = replacements

    def on_leave(self, original_node: cst.CSTNode, updated_node: cst.CSTNode) -> cst.CSTNode:
        return self.replacements.get(original_node, updated_node)


def _renamed(source: bytes) -> tuple[str, str]:
    """Every third name renamed, by `replace_descendants` and by a libcst transformer."""
    module = cst.parse_module(source)
    names = _Names()
    module.visit(names)
    replacements = {name: name.with_changes(value=f"{name.value}_x") for name in names.found[::3]}
    replaced: set[cst.CSTNode] = set()
    new = traversal.replace_descendants(module, replacements, replaced)
    assert isinstance(new, cst.Module)
    assert replaced == set(replacements)
    return new.code, module.visit(_Replace(replacements)).code


def test_replacing_descendants_gives_what_a_transformer_gives() -> None:
    sample = SOURCES[::3]  # a third of the repository's files: the transformer is slow
    different = [str(path) for path in sample if len(set(_renamed(path.read_bytes()))) != 1]
    assert different == []


def test_replacing_descendants_rebuilds_only_the_ancestors() -> None:
    module = cst.parse_module("def f(a, b):\n    return a\n\n\nx = [1, 2]\n")
    function, assignment = module.body
    target = cst.ensure_type(function, cst.FunctionDef).params.params[1].name
    new = traversal.replace_descendants(module, {target: cst.Name("c")}, set())
    assert isinstance(new, cst.Module)
    assert new.code == "def f(a, c):\n    return a\n\n\nx = [1, 2]\n"
    assert new.body[1] is assignment
    new_function = cst.ensure_type(new.body[0], cst.FunctionDef)
    assert new_function.body is cst.ensure_type(function, cst.FunctionDef).body


def test_a_replaced_node_is_not_searched(monkeypatch: pytest.MonkeyPatch) -> None:
    module = cst.parse_module("x = f(y)\n")
    call = module.body[0].body[0].value  # type: ignore[attr-defined]
    inner = call.args[0].value
    replaced: set[cst.CSTNode] = set()
    new = traversal.replace_descendants(
        module, {call: cst.Name("z"), inner: cst.Name("w")}, replaced
    )
    assert isinstance(new, cst.Module) and new.code == "x = z\n"
    assert replaced == {call}


def test_replacing_through_an_unreadable_class_gives_none(monkeypatch: pytest.MonkeyPatch) -> None:
    module = cst.parse_module("x = f(y)\n")
    call = module.body[0].body[0].value  # type: ignore[attr-defined]
    monkeypatch.setitem(traversal._FIELDS, cst.Assign, None)
    assert traversal.replace_descendants(module, {call: cst.Name("z")}, set()) is None
