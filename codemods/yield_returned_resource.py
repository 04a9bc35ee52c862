"""DF004 returned-resource-dependency: a dependency creates a session or client and returns it.

A dependency that `return`s what it creates hands FastAPI an object nobody ever closes: each request
leaks a database connection or an HTTP connection pool. A yield dependency gets cleaned up after the
response.

Before:

    def get_db() -> Session:
        return SessionLocal()

After:

    def get_db() -> Iterator[Session]:
        session = SessionLocal()
        try:
            yield session
        except Exception:
            session.rollback()
            raise
        finally:
            session.close()

Resources are recognised from how they are created (as in DF002: SQLAlchemy and SQLModel sessions,
engine connections, `httpx.Client`/`AsyncClient`, `requests.Session`, `aiohttp.ClientSession`); objects
the dependency did not create (`return request.state.db`, `return app.state.client`) are not findings.
A `-> T` annotation becomes `-> Iterator[T]` (`AsyncIterator[T]` for `async def`).

Fix safety: safe when the function is reached only through `Depends`; unsafe when the project also
calls it directly (a direct caller would get a generator), and the diagnostic says where.
"""

from __future__ import annotations

from typing import Optional

import libcst as cst

from codemods._resources import (
    Resource,
    assigned_call,
    call_statement,
    callee_resource,
    own_nodes,
    resource_of,
    rollback_handler,
    statements,
)
from depfix.facts import FileFacts
from depfix.index import External, ProjectIndex
from depfix.rules import SAFE, UNSAFE, FileRule, register

DEFAULT_NAMES = {"session": "session", "connection": "connection", "client": "client"}


@register
class YieldReturnedResource(FileRule):
    CODE = "DF004"
    NAME = "returned-resource-dependency"
    SUMMARY = "a dependency creates a session or client and `return`s it, so nothing ever closes it"
    FIX = SAFE
    NEEDLES = (b"return",)
    FASTAPI_ONLY = True

    @classmethod
    def wants(cls, facts: FileFacts, index: ProjectIndex) -> bool:
        """Mirrors `visit_FunctionDef`: a dependency, not a generator, with one `return`, that returns
        what a known resource class or factory creates (`FunctionFact.returned_callee`)."""
        return any(
            not function.is_generator
            and function.returned_callee is not None
            and len(function.return_values) == 1
            and _creates_resource(facts, index, function.returned_callee)
            and index.fastapi_role((function.module, function.qualname)) == "dependency"
            for function in facts.functions.values()
        )

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        function = self.index.function_at(self.context.path, self.def_line(node))
        if function is None or function.is_generator:
            return
        if self.index.fastapi_role((function.module, function.qualname)) != "dependency":
            return
        body = list(statements(node))
        if not body or len(own_nodes(body, (cst.Return,))) != 1:
            return
        last = body[-1]
        if not (isinstance(last, cst.SimpleStatementLine) and isinstance(last.body[0], cst.Return)):
            return
        returned = last.body[0].value
        if returned is None:
            return
        setup = body[:-1]
        name: Optional[str] = None
        if isinstance(returned, cst.Name):
            name = returned.value
            value = assigned_call(setup, name)
            resource = resource_of(value, self.resolve_name) if value is not None else None
        else:
            resource = resource_of(returned, self.resolve_name)
        if resource is None:
            return
        if name is None:
            name = self.free_name(node, DEFAULT_NAMES[resource.kind])
            creation = cst.SimpleStatementLine(
                body=[
                    cst.Assign(targets=[cst.AssignTarget(target=cst.Name(name))], value=returned)
                ],
                leading_lines=last.leading_lines,
            )
            setup = [*setup, creation]
        new_body = [*setup, self.guarded(name, resource, node.asynchronous is not None)]
        returns = node.returns
        imports: tuple[tuple[str, str], ...] = ()
        if returns is not None:
            wrapper = "AsyncIterator" if node.asynchronous else "Iterator"
            source = (
                "typing" if self.context.settings.target_version < (3, 9) else "collections.abc"
            )
            bound = self.context.facts.bindings.get(wrapper)
            known = {f"collections.abc.{wrapper}", f"typing.{wrapper}"}
            resolved = self.index.resolve(bound) if bound is not None else None
            if bound is None or (isinstance(resolved, External) and resolved.qname in known):
                returns = returns.with_changes(
                    annotation=cst.Subscript(
                        value=cst.Name(wrapper),
                        slice=[cst.SubscriptElement(slice=cst.Index(value=returns.annotation))],
                    )
                )
                imports = ((source, wrapper),) if bound is None else ()
        replacement = node.with_changes(body=node.body.with_changes(body=new_body), returns=returns)
        calls = self.index.direct_calls((function.module, function.qualname))
        safety, reason = SAFE, ""
        if calls:
            where = ", ".join(f"{path}:{site.line}" for path, site in calls[:3])
            safety, reason = (
                UNSAFE,
                f"`{function.name}` is also called directly ({where}); callers would get a generator",
            )
        message = (
            f"dependency `{function.name}` creates a {resource.kind} and returns it: nothing closes it "
            "after the request; make it a yield dependency"
        )
        self.report(
            last,
            message,
            target=node,
            replacement=replacement,
            safety=safety,
            reason=reason,
            imports=imports,
        )

    @staticmethod
    def guarded(name: str, resource: Resource, is_async: bool) -> cst.Try:
        awaited = resource.awaited and is_async
        handlers = [rollback_handler(name, awaited)] if resource.transactional else []
        return cst.Try(
            body=cst.IndentedBlock(
                body=[
                    cst.SimpleStatementLine(body=[cst.Expr(value=cst.Yield(value=cst.Name(name)))])
                ]
            ),
            handlers=handlers,
            finalbody=cst.Finally(
                body=cst.IndentedBlock(body=[call_statement(name, resource.close, awaited)])
            ),
        )

    def free_name(self, node: cst.FunctionDef, wanted: str) -> str:
        used = {n.value for n in own_nodes(node.body, (cst.Name,)) if isinstance(n, cst.Name)}
        used |= {
            p.name.value
            for p in (*node.params.params, *node.params.kwonly_params, *node.params.posonly_params)
        }
        candidate, number = wanted, 2
        while candidate in used:
            candidate, number = f"{wanted}{number}", number + 1
        return candidate


def _creates_resource(facts: FileFacts, index: ProjectIndex, callee: str) -> bool:
    """Whether calling a dotted callee creates a resource, as `resource_of` decides it."""
    return callee_resource(callee, lambda name: index.resolve_top_level(facts, name)) is not None
