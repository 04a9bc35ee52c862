"""libcst edits DF008 makes in the files around a move: imports pointed at the new module,
`module.name` reads rewritten, and the moved statements written out."""

from __future__ import annotations

from typing import Any, Optional, Union

import libcst as cst

from depfix.facts import FileFacts, resolve_relative
from depfix.imports import dotted, relative_source
from depfix.index import ProjectIndex
from depfix.rules import source_of
from depfix.values import Name


def statement_code(statement: Union[cst.SimpleStatementLine, cst.BaseCompoundStatement]) -> str:
    comments = [line for line in statement.leading_lines if line.comment is not None]
    node = statement.with_changes(leading_lines=comments)
    return cst.Module(body=[node]).code.rstrip("\n")


def absolute_source(facts: FileFacts, node: cst.ImportFrom) -> Optional[str]:
    """The absolute module a from-import names (relative ones resolved), if it can be told."""
    source = dotted(node.module) if node.module is not None else None
    if node.module is not None and source is None:
        return None
    return resolve_relative(facts.module, facts.is_package, len(node.relative), source)


def source_parts(source: str) -> tuple[Optional[Union[cst.Name, cst.Attribute]], list[cst.Dot]]:
    dots = len(source) - len(source.lstrip("."))
    target = source[dots:]
    module = cst.parse_expression(target) if target else None
    assert module is None or isinstance(module, (cst.Name, cst.Attribute))
    return module, [cst.Dot()] * dots


def import_from(source: str, aliases: list[cst.ImportAlias], parens: bool) -> cst.ImportFrom:
    """`from source import aliases`, each alias keeping its layout and comments."""
    module, relative = source_parts(source)
    names = list(aliases)
    names[-1] = names[-1].with_changes(comma=cst.MaybeSentinel.DEFAULT)
    if parens and len(names) > 1:
        return cst.ImportFrom(
            module=module,
            relative=relative,
            names=names,
            lpar=cst.LeftParen(),
            rpar=cst.RightParen(),
        )
    return cst.ImportFrom(module=module, relative=relative, names=names)


class FileEdit(cst.CSTTransformer):
    """An edit of one project file that points uses of the moved names at the new module."""

    def __init__(
        self,
        index: ProjectIndex,
        facts: FileFacts,
        moved_by_module: dict[str, set[str]],
        target_module: str,
    ) -> None:
        super().__init__()
        self.index = index
        self.facts = facts
        self.moved = moved_by_module
        self.target_module = target_module

    def import_of_moved(
        self, statement: cst.SimpleStatementLine
    ) -> Optional[tuple[cst.ImportFrom, set[str]]]:
        """`from <a source module> import ...` alone on its line, with the names moved from it."""
        if len(statement.body) != 1:
            return None
        small = statement.body[0]
        if not isinstance(small, cst.ImportFrom) or isinstance(small.names, cst.ImportStar):
            return None
        source = absolute_source(self.facts, small)
        target = self.index.modules.get(source) if source else None
        if target is None or target.module not in self.moved:
            return None
        return small, self.moved[target.module]


class Retarget(FileEdit):
    """Point `from <source> import moved` statements at the new module.

    A top-level import loses the moved names, which `added` lists for the caller to import where
    isort would put them; an import inside a function (or one with aliases or comments) is split in
    place.
    """

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.depth = 0
        self.added: list[tuple[str, str]] = []
        """(source, name) imports the caller adds at the top level."""

    def visit_IndentedBlock(self, node: cst.IndentedBlock) -> None:
        self.depth += 1

    def leave_IndentedBlock(
        self, original_node: cst.IndentedBlock, updated_node: cst.IndentedBlock
    ) -> cst.IndentedBlock:
        self.depth -= 1
        return updated_node

    def leave_If(self, original_node: cst.If, updated_node: cst.If) -> cst.If:
        # `if TYPE_CHECKING:` imports are left alone: the source keeps a re-export for them
        return updated_node

    def _source(self, small: cst.ImportFrom) -> str:
        if small.relative:
            relative = relative_source(self.facts.module, self.facts.is_package, self.target_module)
            if relative is not None:
                return relative
        return self.target_module

    def leave_SimpleStatementLine(
        self, original_node: cst.SimpleStatementLine, updated_node: cst.SimpleStatementLine
    ) -> Union[cst.BaseStatement, cst.FlattenSentinel[cst.BaseStatement], cst.RemovalSentinel]:
        found = self.import_of_moved(updated_node)
        if found is None:
            return updated_node
        small, names = found
        assert not isinstance(small.names, cst.ImportStar)  # import_of_moved never returns one
        moving = [a for a in small.names if isinstance(a.name, cst.Name) and a.name.value in names]
        if not moving:
            return updated_node
        staying = [a for a in small.names if a not in moving]
        source = self._source(small)
        plain = all(alias.asname is None for alias in moving) and not any(
            "#" in source_of(alias) for alias in moving
        )
        if not staying:
            if self.depth == 0 and plain and "#" not in source_of(updated_node):
                self.added.extend((source, alias.evaluated_name) for alias in moving)
                return cst.RemoveFromParent()
            module, relative = source_parts(source)  # in place: layout and comments stay
            return updated_node.with_changes(
                body=[small.with_changes(module=module, relative=relative)]
            )
        kept = list(staying)
        kept[-1] = kept[-1].with_changes(comma=small.names[-1].comma)
        remaining = updated_node.with_changes(body=[small.with_changes(names=kept)])
        if self.depth == 0 and plain:
            self.added.extend((source, alias.evaluated_name) for alias in moving)
            return remaining
        new_import = import_from(source, moving, parens=small.lpar is not None)
        return cst.FlattenSentinel([remaining, cst.SimpleStatementLine(body=[new_import])])


class RetargetAttributes(FileEdit):
    """`auth.get_current_user` -> `dependencies.get_current_user` for moved names read through an
    imported module object; `app.routers.auth.x` -> `app.dependencies.x` for the dotted form."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.short = False
        self.full = False

    @property
    def changed(self) -> bool:
        return self.short or self.full

    def _module_of(self, node: cst.BaseExpression) -> Optional[str]:
        written = dotted(node)
        if written is None:
            return None
        head, _, rest = written.partition(".")
        binding = self.facts.bindings.get(head)
        if not isinstance(binding, Name) or head in self.facts.rebound:
            return None
        qualified = f"{binding.qname}.{rest}" if rest else binding.qname
        target = self.index.modules.get(qualified)
        return target.module if target is not None else None

    def leave_Attribute(
        self, original_node: cst.Attribute, updated_node: cst.Attribute
    ) -> cst.BaseExpression:
        module = self._module_of(original_node.value)
        if module is None or original_node.attr.value not in self.moved.get(module, ()):
            return updated_node
        written = dotted(original_node.value) or ""
        if written == module and "." in module:  # `import app.routers.auth` + full dotted reads
            self.full = True
            replacement: cst.BaseExpression = cst.parse_expression(self.target_module)
        else:
            self.short = True
            replacement = cst.Name(self.target_module.rpartition(".")[2])
        return updated_node.with_changes(value=replacement)


def attributes_read(node: cst.CSTNode, module: str) -> Optional[set[str]]:
    """The names read as `module.name` in `node`, or None when `module` is used otherwise."""
    names: set[str] = set()
    bare = False

    class Collect(cst.CSTVisitor):
        def visit_Attribute(self, node: cst.Attribute) -> bool:
            if isinstance(node.value, cst.Name) and node.value.value == module:
                names.add(node.attr.value)
                return False
            return True

        def visit_Name(self, node: cst.Name) -> None:
            nonlocal bare
            bare = bare or node.value == module

    node.visit(Collect())
    return None if bare else names


class Unqualify(cst.CSTTransformer):
    """`users.get_user` -> `get_user` for the given module names."""

    def __init__(self, modules: set[str]) -> None:
        super().__init__()
        self.modules = modules

    def leave_Attribute(
        self, original_node: cst.Attribute, updated_node: cst.Attribute
    ) -> cst.BaseExpression:
        if isinstance(updated_node.value, cst.Name) and updated_node.value.value in self.modules:
            return updated_node.attr
        return updated_node


def names_in(tree: cst.Module) -> set[str]:
    """Every name the module binds or reads (not attribute names or keyword-argument names)."""
    found: set[str] = set()

    class Collect(cst.CSTVisitor):
        def visit_Attribute(self, node: cst.Attribute) -> bool:
            node.value.visit(self)
            return False

        def visit_Arg(self, node: cst.Arg) -> bool:
            node.value.visit(self)
            return False

        def visit_ImportFrom(self, node: cst.ImportFrom) -> bool:
            return False

        def visit_Name(self, node: cst.Name) -> None:
            found.add(node.value)

    tree.visit(Collect())
    return found


class DropImportsOf(FileEdit):
    """In the module receiving the moved code: drop its imports of the moved names."""

    def leave_SimpleStatementLine(
        self, original_node: cst.SimpleStatementLine, updated_node: cst.SimpleStatementLine
    ) -> cst.BaseStatement | cst.RemovalSentinel:
        found = self.import_of_moved(updated_node)
        if found is None:
            return updated_node
        small, names = found
        assert not isinstance(small.names, cst.ImportStar)  # import_of_moved never returns one
        staying = [
            a.with_changes(comma=cst.MaybeSentinel.DEFAULT)
            for a in small.names
            if not (isinstance(a.name, cst.Name) and a.name.value in names)
        ]
        if not staying:
            return cst.RemoveFromParent()
        return updated_node.with_changes(body=[small.with_changes(names=staying)])


def add_aliased(tree: cst.Module, source: str, original: str, name: str) -> cst.Module:
    statement = cst.parse_statement(f"from {source} import {original} as {name}\n")
    return insert_import(tree, statement)


def insert_import(
    tree: cst.Module, statement: Union[cst.SimpleStatementLine, cst.BaseCompoundStatement]
) -> cst.Module:
    body = list(tree.body)
    position = 0
    for index, node in enumerate(body):
        if isinstance(node, cst.SimpleStatementLine) and all(
            isinstance(small, (cst.Import, cst.ImportFrom)) for small in node.body
        ):
            position = index + 1
    body.insert(position, statement)
    return tree.with_changes(body=body)
