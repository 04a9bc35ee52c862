"""What the yield-dependency rules (DF002, DF003, DF004) know about resources and dependency bodies.

A resource is recognised from how it is created, by qualified name: SQLAlchemy and SQLModel sessions
(a `Session(...)` or a call of a `sessionmaker`), engine connections, and HTTP client sessions. Sessions
and connections have a transaction to roll back; every resource has a method that releases it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Callable, Optional, Union

import libcst as cst

from depfix.facts import FileFacts
from depfix.imports import dotted
from depfix.index import External, Instance, ProjectIndex, Resolved

SESSION_CLASSES = {
    "sqlalchemy.orm.Session": False,
    "sqlalchemy.orm.session.Session": False,
    "sqlmodel.Session": False,
    "sqlmodel.orm.session.Session": False,
    "sqlalchemy.ext.asyncio.AsyncSession": True,
    "sqlalchemy.ext.asyncio.session.AsyncSession": True,
    "sqlmodel.ext.asyncio.session.AsyncSession": True,
}
SESSION_FACTORIES = {
    "sqlalchemy.orm.sessionmaker": False,
    "sqlalchemy.orm.session.sessionmaker": False,
    "sqlalchemy.orm.scoped_session": False,
    "sqlalchemy.ext.asyncio.async_sessionmaker": True,
    "sqlalchemy.ext.asyncio.session.async_sessionmaker": True,
}
ENGINES = {
    "sqlalchemy.create_engine": False,
    "sqlalchemy.engine.create_engine": False,
    "sqlmodel.create_engine": False,
    "sqlalchemy.ext.asyncio.create_async_engine": True,
}
# class -> (method that releases it, awaited)
CLIENT_CLASSES = {
    "httpx.Client": ("close", False),
    "httpx.AsyncClient": ("aclose", True),
    "requests.Session": ("close", False),
    "requests.sessions.Session": ("close", False),
    "aiohttp.ClientSession": ("close", True),
}


@dataclass(frozen=True)
class Resource:
    kind: str  # "session", "connection" or "client"
    close: str
    awaited: bool

    @property
    def transactional(self) -> bool:
        return self.kind in ("session", "connection")


def resource_of(call: cst.BaseExpression, resolve: Callable[[str], Resolved]) -> Optional[Resource]:
    """The resource a call creates, when it is one depfix knows (`resolve`: a dotted name's referent
    at the top level of the file, as `FileRule.resolve_name`)."""
    if isinstance(call, cst.Await):
        call = call.expression
    if not isinstance(call, cst.Call):
        return None
    callee = dotted(call.func)
    return callee_resource(callee, resolve) if callee is not None else None


def callee_resource(callee: str, resolve: Callable[[str], Resolved]) -> Optional[Resource]:
    """The resource a call of the dotted name `callee` creates, when it is one depfix knows: what
    `resource_of` decides for a call, and the rules' gates for a callee the facts recorded."""
    owner, _, attribute = callee.rpartition(".")
    if owner and attribute == "connect":
        engine = resolve(owner)
        if (
            isinstance(engine, Instance)
            and isinstance(engine.of, External)
            and engine.of.qname in ENGINES
        ):
            return Resource("connection", "close", ENGINES[engine.of.qname])
        return None
    resolved = resolve(callee)
    if isinstance(resolved, External):
        if resolved.qname in SESSION_CLASSES:
            return Resource("session", "close", SESSION_CLASSES[resolved.qname])
        if resolved.qname in CLIENT_CLASSES:
            close, awaited = CLIENT_CLASSES[resolved.qname]
            return Resource("client", close, awaited)
    if (
        isinstance(resolved, Instance)
        and isinstance(resolved.of, External)
        and resolved.of.qname in SESSION_FACTORIES
    ):
        return Resource("session", "close", SESSION_FACTORIES[resolved.of.qname])
    return None


def has_dependency(facts: FileFacts, index: ProjectIndex, generator: bool) -> bool:
    """Whether the file defines a dependency that is (or is not) a generator."""
    return any(
        function.is_generator == generator
        and index.fastapi_role((function.module, function.qualname)) == "dependency"
        for function in facts.functions.values()
    )


def statements(function: cst.FunctionDef) -> Sequence[cst.BaseStatement]:
    body = function.body
    return body.body if isinstance(body, cst.IndentedBlock) else ()


def yield_statement(
    statement: Union[cst.BaseStatement, cst.BaseSmallStatement],
) -> Optional[cst.Yield]:
    """The `yield x` of a statement that is only that."""
    if isinstance(statement, cst.SimpleStatementLine) and len(statement.body) == 1:
        small = statement.body[0]
        if isinstance(small, cst.Expr) and isinstance(small.value, cst.Yield):
            return small.value
    return None


class _Counter(cst.CSTVisitor):
    def __init__(self, kinds: tuple[type[cst.CSTNode], ...]) -> None:
        self.kinds = kinds
        self.found: list[cst.CSTNode] = []

    def on_visit(self, node: cst.CSTNode) -> bool:
        if isinstance(node, (cst.FunctionDef, cst.ClassDef, cst.Lambda)):
            return False
        if isinstance(node, self.kinds):
            self.found.append(node)
        return True


def own_nodes(
    nodes: Union[cst.CSTNode, Sequence[cst.CSTNode]], kinds: tuple[type[cst.CSTNode], ...]
) -> list[cst.CSTNode]:
    """Nodes of `kinds` in `nodes`, not looking into nested functions, classes and lambdas."""
    counter = _Counter(kinds)
    for node in [nodes] if isinstance(nodes, cst.CSTNode) else nodes:
        if isinstance(node, (cst.FunctionDef, cst.ClassDef, cst.Lambda)):
            continue
        node.visit(counter)
    return counter.found


def assigned_call(
    statements_before: Sequence[cst.BaseStatement], name: str
) -> Optional[cst.BaseExpression]:
    """The value of the last top-level `name = <value>` among `statements_before`."""
    value: Optional[cst.BaseExpression] = None
    for statement in statements_before:
        if not isinstance(statement, cst.SimpleStatementLine):
            continue
        for small in statement.body:
            if (
                isinstance(small, cst.Assign)
                and len(small.targets) == 1
                and isinstance(small.targets[0].target, cst.Name)
                and small.targets[0].target.value == name
            ) or (
                isinstance(small, cst.AnnAssign)
                and isinstance(small.target, cst.Name)
                and small.target.value == name
            ):
                value = small.value
    return value


def call_statement(name: str, method: str, awaited: bool) -> cst.SimpleStatementLine:
    """`name.method()` or `await name.method()` as a statement."""
    call: cst.BaseExpression = cst.Call(
        func=cst.Attribute(value=cst.Name(name), attr=cst.Name(method))
    )
    if awaited:
        call = cst.Await(expression=call)
    return cst.SimpleStatementLine(body=[cst.Expr(value=call)])


def is_method_call(statement: cst.BaseStatement, name: str, method: str) -> bool:
    """`name.method(...)` or `await name.method(...)` as a whole statement."""
    if not (isinstance(statement, cst.SimpleStatementLine) and len(statement.body) == 1):
        return False
    small = statement.body[0]
    if not isinstance(small, cst.Expr):
        return False
    value = small.value.expression if isinstance(small.value, cst.Await) else small.value
    return (
        isinstance(value, cst.Call)
        and isinstance(value.func, cst.Attribute)
        and value.func.attr.value == method
        and isinstance(value.func.value, cst.Name)
        and value.func.value.value == name
    )


def rollback_handler(name: str, awaited: bool) -> cst.ExceptHandler:
    """`except Exception: name.rollback(); raise`."""
    return cst.ExceptHandler(
        type=cst.Name("Exception"),
        body=cst.IndentedBlock(
            body=[
                call_statement(name, "rollback", awaited),
                cst.SimpleStatementLine(body=[cst.Raise()]),
            ]
        ),
    )
