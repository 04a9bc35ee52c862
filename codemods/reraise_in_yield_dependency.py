"""DF003 swallowed-exception-in-yield-dependency: an `except` around `yield` that does not re-raise.

Since FastAPI 0.110 a yield dependency must re-raise what it catches around its `yield`. A handler that
only logs or rolls back swallows the route's exception: the client gets a bare 500 (or FastAPI fails with
"Response not awaited") and the error never reaches the exception handlers or the logs.

Before:

    def get_username():
        try:
            yield "Rick"
        except InternalError:
            logger.warning("internal error")

After:

    def get_username():
        try:
            yield "Rick"
        except InternalError:
            logger.warning("internal error")
            raise

Only dependencies are rewritten (through the index). A handler that raises anything, such as an
`HTTPException`, is fine. A handler that returns cannot be fixed by adding `raise`; it is reported.

The fix changes which exception the app sees: the route's own exception then reaches the exception
handlers, the middleware and the logs, instead of FastAPI's "Response not awaited" error (a
`FastAPIError`). Without a handler for it the client still gets a 500, but an
`@app.exception_handler(InternalError)` now answers with its own response (and an `HTTPException`
its own status), where the client got a bare 500 before.
Fix safety: unsafe (the route's exception reaches exception handlers and middleware).
"""

from __future__ import annotations

import libcst as cst

from codemods._resources import own_nodes, yield_statement
from depfix.facts import FileFacts
from depfix.index import ProjectIndex
from depfix.rules import UNSAFE, FileRule, register, source_of

RERAISED = (
    "the route's exception will reach exception handlers and middleware instead of FastAPI's "
    '"Response not awaited" error; a handler for it changes the response'
)


@register
class ReraiseInYieldDependency(FileRule):
    CODE = "DF003"
    NAME = "swallowed-exception-in-yield-dependency"
    SUMMARY = "`except` around a dependency's `yield` that does not re-raise (required since FastAPI 0.110)"
    FIX = UNSAFE
    NEEDLES = (b"yield",)
    FASTAPI_ONLY = True

    @classmethod
    def wants(cls, facts: FileFacts, index: ProjectIndex) -> bool:
        """Mirrors `visit_Try`: a generator dependency with an `except` around its `yield` that
        holds no `raise`."""
        return any(
            function.yield_handler_without_raise
            and function.is_generator
            and index.fastapi_role((function.module, function.qualname)) == "dependency"
            for function in facts.functions.values()
        )

    def __init__(self, context) -> None:  # type: ignore[no-untyped-def]
        super().__init__(context)
        self.dependencies: list[str] = []

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        function = self.index.function_at(self.context.path, self.def_line(node))
        is_dependency = (
            function is not None
            and function.is_generator
            and self.index.fastapi_role((function.module, function.qualname)) == "dependency"
        )
        self.dependencies.append(function.name if is_dependency and function else "")

    def leave_FunctionDef(self, original_node: cst.FunctionDef) -> None:
        self.dependencies.pop()

    def visit_Try(self, node: cst.Try) -> None:
        if not self.dependencies or not self.dependencies[-1]:
            return
        if not any(yield_statement(statement) for statement in node.body.body):
            return
        for handler in node.handlers:
            if own_nodes(handler.body, (cst.Raise,)):
                continue
            caught = source_of(handler.type) if handler.type else "everything"
            message = (
                f"dependency `{self.dependencies[-1]}` catches {caught} around `yield` without re-raising: "
                "the route's error is swallowed (a bare 500 since FastAPI 0.110)"
            )
            if own_nodes(handler.body, (cst.Return,)):
                self.report(
                    handler, message, reason="the handler returns; decide by hand what to raise"
                )
                continue
            body = handler.body
            if not isinstance(body, cst.IndentedBlock):
                self.report(handler, message, reason="the handler is written on one line")
                continue
            new_body = body.with_changes(
                body=[*body.body, cst.SimpleStatementLine(body=[cst.Raise()])]
            )
            self.report(
                handler,
                message,
                replacement=handler.with_changes(body=new_body),
                safety=UNSAFE,
                reason=RERAISED,
            )
