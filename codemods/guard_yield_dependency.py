"""DF002 unguarded-yield-dependency: cleanup after `yield` that never runs when the request fails.

FastAPI throws a route's exception into its yield dependencies at the `yield`. Statements written after
`yield` without `try/finally` are then skipped: the session is never closed (the connection leaks from
the pool) and its transaction is never rolled back.

Before:

    def get_db():
        db = SessionLocal()
        yield db
        db.commit()
        db.close()

After:

    def get_db():
        db = SessionLocal()
        try:
            yield db
            db.commit()
        except Exception:
            db.rollback()
            raise
        finally:
            db.close()

Only dependencies are rewritten (functions that `Depends`, `Security` or `dependency_overrides` reach,
through the index): pytest fixtures and `@contextmanager` helpers of the same shape are left alone.
Statements that commit stay on the success path inside `try`; the others move to `finally`. The
`except ... rollback(); raise` block is added for resources with a transaction, recognised from how they
are created (a `Session(...)`, a call of a `sessionmaker`, `engine.connect()`); clients, files and
unknown resources get a plain `try/finally`. Async dependencies get `await` where the resource is async.
A `yield` already inside `try/finally` or a `with` block is safe and untouched; with `yield-commit = true`
a session without a commit after `yield` gets one (inside a `with` too). Pass-through yields with nothing
after them are not findings. Fix safety: safe (only the failure path changes).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Optional

import libcst as cst

from codemods._resources import (
    Resource,
    assigned_call,
    call_statement,
    callee_resource,
    is_method_call,
    own_nodes,
    resource_of,
    rollback_handler,
    statements,
    yield_statement,
)
from depfix.facts import FileFacts
from depfix.index import ProjectIndex
from depfix.rules import SAFE, FileRule, register


def _transactional(callee: str, facts: FileFacts, index: ProjectIndex) -> bool:
    """Whether a call of the dotted `callee` is a resource with a transaction for `resource_of`."""
    resource = callee_resource(callee, lambda name: index.resolve_top_level(facts, name))
    return resource is not None and resource.transactional


@register
class GuardYieldDependency(FileRule):
    CODE = "DF002"
    NAME = "unguarded-yield-dependency"
    SUMMARY = "cleanup after a dependency's `yield` is not in `finally`: it never runs when the request fails"
    FIX = SAFE
    NEEDLES = (b"yield",)
    FASTAPI_ONLY = True

    @classmethod
    def wants(cls, facts: FileFacts, index: ProjectIndex) -> bool:
        """Mirrors `visit_FunctionDef`: a generator dependency with cleanup after its `yield` or, for
        `yield-commit` (a setting the gate cannot see), a transactional resource yielded in `with`."""
        for function in facts.functions.values():
            if not (function.cleanup_after_yield or function.yield_in_with):
                continue
            if not function.is_generator or (
                index.fastapi_role((function.module, function.qualname)) != "dependency"
            ):
                continue
            if function.cleanup_after_yield or any(
                _transactional(callee, facts, index) for callee in function.yield_in_with
            ):
                return True
        return False

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        function = self.index.function_at(self.context.path, self.def_line(node))
        if function is None or not function.is_generator:
            return
        if self.index.fastapi_role((function.module, function.qualname)) != "dependency":
            return
        body = list(statements(node))
        if len(own_nodes(body, (cst.Yield,))) != 1:
            return
        position = next((i for i, statement in enumerate(body) if yield_statement(statement)), None)
        if position is None:
            self.inside_with(node, body)
            return
        yielded = yield_statement(body[position])
        assert yielded is not None
        after = body[position + 1 :]
        if not after or own_nodes(after, (cst.Return, cst.Yield)):
            return
        name = yielded.value.value if isinstance(yielded.value, cst.Name) else None
        resource = self.resource(body[:position], name)
        commits = [s for s in after if name is not None and is_method_call(s, name, "commit")]
        cleanup = [s for s in after if s not in commits]
        if not cleanup:
            return
        awaited = bool(resource and resource.awaited) or any(
            isinstance(n, cst.Await) for n in own_nodes(after, (cst.Await,))
        )
        handlers: list[cst.ExceptHandler] = []
        if resource is not None and resource.transactional and name is not None:
            handlers.append(rollback_handler(name, awaited and node.asynchronous is not None))
            if not commits and self.context.settings.yield_commit:
                commits = [
                    call_statement(name, "commit", awaited and node.asynchronous is not None)
                ]
        yield_line = cst.ensure_type(body[position], cst.SimpleStatementLine)
        guarded = cst.Try(
            body=cst.IndentedBlock(body=[yield_line.with_changes(leading_lines=()), *commits]),
            handlers=handlers,
            finalbody=cst.Finally(body=cst.IndentedBlock(body=cleanup)),
            leading_lines=yield_line.leading_lines,
        )
        new_body = [*body[:position], guarded]
        what = f"the {resource.kind}" if resource else "its resource"
        rollback = " nor rolled back" if handlers else ""
        message = (
            f"dependency `{function.name}` cleans up after `yield` without `finally`: when the request "
            f"fails, {what} is never released{rollback}"
        )
        self.report(
            body[position],
            message,
            target=node.body,
            replacement=node.body.with_changes(body=new_body),
        )

    def resource(
        self, before: Sequence[cst.BaseStatement], name: Optional[str]
    ) -> Optional[Resource]:
        if name is None:
            return None
        value = assigned_call(before, name)
        return resource_of(value, self.resolve_name) if value is not None else None

    def inside_with(self, node: cst.FunctionDef, body: list[cst.BaseStatement]) -> None:
        """With `yield-commit`, a session yielded inside `with` gets its commit/rollback block."""
        if not self.context.settings.yield_commit:
            return
        for position, statement in enumerate(body):
            if not isinstance(statement, cst.With) or len(statement.items) != 1:
                continue
            item = statement.items[0]
            target = item.asname.name if item.asname else None
            if not isinstance(target, cst.Name):
                continue
            resource = resource_of(item.item, self.resolve_name)
            inner = (
                list(statement.body.body) if isinstance(statement.body, cst.IndentedBlock) else []
            )
            if (
                resource is None
                or not resource.transactional
                or len(inner) != 1
                or not yield_statement(inner[0])
            ):
                continue
            awaited = resource.awaited and node.asynchronous is not None
            guarded = cst.Try(
                body=cst.IndentedBlock(
                    body=[inner[0], call_statement(target.value, "commit", awaited)]
                ),
                handlers=[rollback_handler(target.value, awaited)],
            )
            new_with = statement.with_changes(body=statement.body.with_changes(body=[guarded]))
            new_body = [*body[:position], new_with, *body[position + 1 :]]
            self.report(
                inner[0],
                f"`yield-commit`: the session of `{node.name.value}` is never committed after `yield`",
                target=node.body,
                replacement=node.body.with_changes(body=new_body),
            )
            return
