"""DF010 blocking-session-in-async-route: a sync session used in an `async def` route or dependency.

FastAPI runs `async def` functions on its event loop. A synchronous SQLAlchemy or SQLModel `Session`
injected there blocks the loop for every query: all other requests wait. A plain `def` would be run in
the threadpool instead.

Before:

    @router.get("/projects")
    async def list_projects(db: Session = Depends(get_db)):
        return db.scalars(select(Project)).all()

After (an unsafe fix, applied with `--unsafe`).

After:

    @router.get("/projects")
    def list_projects(db: Session = Depends(get_db)):
        return db.scalars(select(Project)).all()

The fix is offered only when the body awaits nothing (no `await`, `async for` or `async with`) and
nothing in the project calls the function directly (a caller would `await` it). It is unsafe because
the function then runs in a worker thread. Otherwise the diagnostic points to `AsyncSession`. The
session is recognised by the parameter's type or by its provider's return type (a sync `Session`
class from SQLAlchemy or SQLModel), for parameters injected with `Depends`.
"""

from __future__ import annotations

from typing import Optional

import libcst as cst

from codemods._resources import SESSION_CLASSES, own_nodes
from depfix.facts import FileFacts, FunctionFact
from depfix.index import Function, ProjectIndex, qualified_name
from depfix.rules import UNSAFE, FileRule, register

SYNC_SESSIONS = frozenset(name for name, is_async in SESSION_CLASSES.items() if not is_async)


@register
class SyncSessionInAsyncRoute(FileRule):
    CODE = "DF010"
    NAME = "blocking-session-in-async-route"
    SUMMARY = (
        "a sync `Session` injected into an `async def` route or dependency blocks the event loop"
    )
    FIX = UNSAFE
    NEEDLES = (b"async def",)
    FASTAPI_ONLY = True

    @classmethod
    def wants(cls, facts: FileFacts, index: ProjectIndex) -> bool:
        """Mirrors `visit_FunctionDef`: an `async def` FastAPI calls, with a sync session injected."""
        return any(
            function.is_async
            and sync_session_parameter(index, facts.path, function) is not None
            and index.fastapi_role((function.module, function.qualname)) is not None
            for function in facts.every_function()
        )

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        if node.asynchronous is None:
            return
        function = self.index.function_at(self.context.path, self.def_line(node))
        if (
            function is None
            or self.index.fastapi_role((function.module, function.qualname)) is None
        ):
            return
        parameter = sync_session_parameter(self.index, self.context.path, function)
        if parameter is None:
            return
        message = (
            f"`async def {function.name}` uses the sync session `{parameter}`: every query blocks the "
            "event loop"
        )
        awaits = own_nodes(node.body, (cst.Await,)) or [
            n
            for n in own_nodes(node.body, (cst.For, cst.With, cst.CompFor))
            if getattr(n, "asynchronous", None) is not None
        ]
        if awaits:
            self.report(
                node.name, message, reason="the function awaits; use an `AsyncSession` instead"
            )
            return
        calls = self.index.direct_calls((function.module, function.qualname))
        if calls:
            where = ", ".join(f"{path}:{site.line}" for path, site in calls[:3])
            self.report(node.name, message, reason=f"it is also called directly ({where})")
            return
        self.report(
            node.name,
            message,
            target=node,
            replacement=node.with_changes(asynchronous=None),
            safety=UNSAFE,
            reason="as a plain `def` FastAPI runs it in a worker thread",
        )


def sync_session_parameter(index: ProjectIndex, path: str, function: FunctionFact) -> Optional[str]:
    """The first parameter of `function` (in file `path`) injected with `Depends`/`Security` whose
    annotation, or whose provider's return type, is a sync session class, if any."""
    for ref in index.dependency_refs_in(path):
        if ref.fact.function != function.qualname:
            continue
        if not function.line <= ref.fact.line <= function.end_line:
            continue  # another `def` of the same name (two routes named alike)
        types = []
        if ref.fact.annotation is not None:
            types.append(qualified_name(index.resolve(ref.fact.annotation)))
        if isinstance(ref.target, Function) and ref.target.fact.provides is not None:
            types.append(qualified_name(index.resolve(ref.target.fact.provides)))
        if any(name in SYNC_SESSIONS for name in types):
            return ref.fact.parameter
    return None
