"""DF009 asyncio-run-in-dependency: `asyncio.run()` or `run_until_complete()` in a route or dependency.

FastAPI runs `async def` routes and dependencies on its event loop, where `asyncio.run()` fails at every
request ("asyncio.run() cannot be called from a running event loop"). In a sync `def` it works, because
FastAPI calls it in a worker thread, but it starts a new event loop per request, and anything created on
the application's loop (an async engine, an `httpx.AsyncClient`) then fails with "attached to a
different loop".

Before:

    async def get_flags() -> dict:
        return asyncio.run(load_flags())

After:

    async def get_flags() -> dict:
        return await load_flags()

In an `async def` the call becomes `await` (safe). In a sync `def` the function also becomes `async def`;
that fix is unsafe (the rest of its body then runs on the event loop) and offered only when nothing in
the project calls the function directly. Scripts, CLIs and tests that use `asyncio.run` are not
findings: only functions FastAPI calls are.
"""

from __future__ import annotations

from typing import Optional

import libcst as cst

from codemods._resources import own_nodes
from depfix.facts import RUN_UNTIL_COMPLETE, FileFacts
from depfix.index import External, ProjectIndex
from depfix.rules import SAFE, UNSAFE, FileRule, register

RUNNERS = frozenset({"asyncio.run", "asyncio.runners.run"})


@register
class AwaitInsteadOfAsyncioRun(FileRule):
    CODE = "DF009"
    NAME = "asyncio-run-in-dependency"
    SUMMARY = "`asyncio.run()` inside a route or dependency: fails in `async def`, a new loop per request in `def`"
    FIX = SAFE
    NEEDLES = (b"asyncio.run", b"run_until_complete", b"import run")
    FASTAPI_ONLY = True

    @classmethod
    def wants(cls, facts: FileFacts, index: ProjectIndex) -> bool:
        """Mirrors `visit_FunctionDef`: a function FastAPI calls whose own body calls a runner with
        one positional argument (`x.run_until_complete(c)`, or a name the module resolves to
        `asyncio.run`)."""
        for function, callee in facts.single_argument_calls:
            if not (
                callee.endswith(f".{RUN_UNTIL_COMPLETE}")
                or _module_reading(facts, index, callee) in RUNNERS
            ):
                continue
            if index.fastapi_role((facts.module, function)) is not None:
                return True
        return False

    def coroutine_of(self, call: cst.Call) -> Optional[cst.BaseExpression]:
        """The coroutine a runner call runs, or None when the call is not a runner."""
        if len(call.args) != 1 or call.args[0].keyword is not None or call.args[0].star:
            return None
        func = call.func
        if isinstance(func, cst.Attribute) and func.attr.value == RUN_UNTIL_COMPLETE:
            return call.args[0].value
        resolved = self.resolve_expression(func)
        if getattr(resolved, "qname", None) in RUNNERS:
            return call.args[0].value
        return None

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        function = self.index.function_at(self.context.path, self.def_line(node))
        if (
            function is None
            or self.index.fastapi_role((function.module, function.qualname)) is None
        ):
            return
        runners = {}
        for call in own_nodes(node.body, (cst.Call,)):
            assert isinstance(call, cst.Call)
            coroutine = self.coroutine_of(call)
            if coroutine is not None:
                runners[call] = cst.Await(expression=coroutine)
        if not runners:
            return
        is_async = node.asynchronous is not None
        body = node.body.visit(_Replace(runners))
        replacement = node.with_changes(body=body)
        safety, reason = SAFE, ""
        if not is_async:
            calls = self.index.direct_calls((function.module, function.qualname))
            if calls or function.is_generator:
                where = ", ".join(f"{path}:{site.line}" for path, site in calls[:3])
                why = f"it is also called directly ({where})" if calls else "it is a generator"
                for call in runners:
                    self.report(
                        call,
                        self.message(function.name, is_async),
                        reason=f"cannot become `async def`: {why}",
                    )
                return
            replacement = replacement.with_changes(asynchronous=cst.Asynchronous())
            safety, reason = (
                UNSAFE,
                "the function becomes `async def`: the rest of its body then runs on the event loop",
            )
        for call in runners:
            self.report(
                call,
                self.message(function.name, is_async),
                target=node,
                replacement=replacement,
                safety=safety,
                reason=reason,
            )

    @staticmethod
    def message(name: str, is_async: bool) -> str:
        if is_async:
            return f"`{name}` runs a coroutine with a new event loop inside FastAPI's: it fails at every request; `await` it"
        return f"`{name}` starts a new event loop on every request (objects of the app's loop fail there); make it `async def` and `await`"


def _module_reading(facts: FileFacts, index: ProjectIndex, callee: str) -> Optional[str]:
    """The qualified name a dotted callee resolves to at module level, when it is external."""
    resolved = index.resolve_top_level(facts, callee)
    return resolved.qname if isinstance(resolved, External) else None


class _Replace(cst.CSTTransformer):
    def __init__(self, replacements: dict[cst.Call, cst.Await]) -> None:
        super().__init__()
        self.replacements = replacements

    def leave_Call(self, original_node: cst.Call, updated_node: cst.Call) -> cst.BaseExpression:
        return self.replacements.get(original_node, updated_node)
