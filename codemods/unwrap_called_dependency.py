"""DF005 called-dependency: `Depends(get_db())` calls the dependency instead of passing it.

`Depends` wants the dependency itself, which FastAPI calls on every request. Written with parentheses,
the function runs once, at import time, and `Depends` receives its result: a generator, a coroutine or
a settings object. That is not callable, so the application fails at startup with
`TypeError: <generator object get_db at 0x...> is not a callable object`.

Before:

    @router.get("/items")
    def list_items(db: Session = Depends(get_db()), settings: Settings = Depends(get_settings())):
        ...

After:

    @router.get("/items")
    def list_items(db: Session = Depends(get_db), settings: Settings = Depends(get_settings)):
        ...

Reported when the called function is a generator, an `async def`, or a plain function whose result the
index knows is not callable: it is annotated to return a literal type or a class without `__call__`, or
every `return` gives a literal or such an instance. `functools.lru_cache` and `functools.cache` are
looked through. Never reported for factories that build the dependency (`Depends(require_role("admin"))`:
the function returns an inner function or a lambda, or is annotated to return a `Callable`), for classes
and callable instances, or when nothing is known about the result.

Fix safety: safe when the call passes no arguments and the function has no parameter FastAPI would
start reading from the request; unsafe when it has such parameters (they become request parameters).
No fix when the call passes arguments (FastAPI would have to supply them) or when a decorator such as
`@contextmanager` changes what the function returns.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import libcst as cst

from codemods._callables import NON_CALLABLE_CLASSES, class_is_callable
from depfix.facts import FileFacts, FunctionFact
from depfix.index import Class, External, Function, ProjectIndex, Resolved
from depfix.rules import SAFE, UNSAFE, FileRule, has_comment, register, source_of
from depfix.values import Call, Literal, Value

CACHE_DECORATORS = frozenset({"functools.lru_cache", "functools.cache"})
CONTEXT_MANAGER_DECORATORS = frozenset(
    {"contextlib.contextmanager", "contextlib.asynccontextmanager"}
)
CALLABLE_TYPES = frozenset(
    {
        "typing.Callable",
        "collections.abc.Callable",
        "typing.Awaitable",
        "typing.Any",
        "builtins.type",
    }
)
LITERAL_TYPES = frozenset(
    {
        "builtins.None",
        "builtins.str",
        "builtins.int",
        "builtins.float",
        "builtins.bool",
        "builtins.bytes",
        "builtins.dict",
        "builtins.list",
        "builtins.set",
        "builtins.frozenset",
        "builtins.tuple",
        "typing.Dict",
        "typing.List",
        "typing.Set",
        "typing.FrozenSet",
        "typing.Tuple",
    }
)
REQUEST_INJECTED = frozenset(
    {"Request", "Response", "WebSocket", "HTTPConnection", "BackgroundTasks", "SecurityScopes"}
)


@dataclass(frozen=True)
class Verdict:
    """What calling the function gives, when it is known not to be callable."""

    result: str
    fixable: bool = True
    reason: str = ""


def _non_callable_type(index: ProjectIndex, value: Value) -> Optional[str]:
    """A description of instances of `value` when they are known not to be callable."""
    resolved = index.resolve(value)
    if isinstance(resolved, External):
        if resolved.qname in LITERAL_TYPES:
            return (
                "None"
                if resolved.qname == "builtins.None"
                else f"{resolved.qname.rsplit('.', 1)[-1]} value"
            )
        if resolved.qname in NON_CALLABLE_CLASSES:
            return f"`{resolved.qname.rsplit('.', 1)[-1]}` instance"
    if isinstance(resolved, Class) and class_is_callable(index, resolved) is False:
        return f"`{resolved.fact.qualname}` instance"
    return None


def _returned(index: ProjectIndex, function: FunctionFact) -> Optional[str]:
    """What a plain function returns, when every return is known not to be callable."""
    if function.returns is not None:
        return _non_callable_type(index, function.returns)
    results = set()
    for value in function.return_values:
        if isinstance(value, Literal):
            results.add("literal value")
            continue
        described = _non_callable_type(index, value.func) if isinstance(value, Call) else None
        if described is None:
            return None
        results.add(described)
    return " or ".join(sorted(results)) or None


def classify(index: ProjectIndex, callee: Resolved) -> Optional[Verdict]:
    """The verdict on `Depends(callee())`, or None when the result may be callable."""
    if not isinstance(callee, Function):
        return None
    function = callee.fact
    for decorator in function.decorators:
        resolved = index.resolve(decorator)
        name = resolved.qname if isinstance(resolved, External) else None
        if name in CACHE_DECORATORS:
            continue
        if name in CONTEXT_MANAGER_DECORATORS:
            return Verdict(
                "context manager",
                fixable=False,
                reason=f"`@{name.rsplit('.', 1)[-1]}` wraps it; pass the undecorated generator instead",
            )
        return None
    if function.is_generator:
        return Verdict("async generator" if function.is_async else "generator")
    if function.is_async:
        return Verdict("coroutine")
    described = _returned(index, function)
    return Verdict(described) if described else None


def _request_parameters(index: ProjectIndex, function: FunctionFact) -> list[str]:
    """Parameters FastAPI would read from the request once it calls the function itself."""
    names = []
    for position, param in enumerate(function.params):
        if position == 0 and function.class_qualname and param.name in ("self", "cls"):
            continue
        if param.injected or param.kind in ("vararg", "kwarg"):
            continue
        if param.annotation is not None:
            resolved = index.resolve(param.annotation)
            if (
                isinstance(resolved, External)
                and resolved.qname.startswith(("fastapi.", "starlette."))
                and resolved.qname.rsplit(".", 1)[-1] in REQUEST_INJECTED
            ):
                continue
        names.append(param.name)
    return names


def _dependency_argument(call: cst.Call) -> Optional[cst.Arg]:
    for arg in call.args:
        if arg.keyword is None and arg.star == "":
            return arg
        if arg.keyword is not None and arg.keyword.value == "dependency":
            return arg
    return None


@register
class UnwrapCalledDependency(FileRule):
    CODE = "DF005"
    NAME = "called-dependency"
    SUMMARY = "`Depends(get_db())` calls the dependency instead of passing it"
    FIX = SAFE
    NEEDLES = (b"Depends", b"Security")
    FASTAPI_ONLY = True

    @classmethod
    def wants(cls, facts: FileFacts, index: ProjectIndex) -> bool:
        """Mirrors `visit_Call`: a verified `Depends(f())` whose result `classify` knows not callable."""
        return any(
            ref.fact.target_is_call
            and not ref.fact.in_string
            and classify(index, ref.target) is not None
            for ref in index.dependency_refs_in(facts.path)
        )

    def visit_Call(self, node: cst.Call) -> None:
        span = self.span(node)
        ref = self.index.dependency_ref_at(self.context.path, span.line, span.column)
        if ref is None or not ref.fact.target_is_call or ref.fact.in_string:
            return
        verdict = classify(self.index, ref.target)
        if verdict is None:
            return
        argument = _dependency_argument(node)
        if argument is None or not isinstance(argument.value, cst.Call):
            return
        inner = argument.value
        callee = source_of(inner.func)
        article = "an" if verdict.result[:1] in "aeiou" else "a"
        message = (
            f"`{callee}()` is called here: {ref.kind.capitalize()} receives its result, {article} "
            f"{verdict.result}, which is not callable (FastAPI fails at startup); pass `{callee}`"
        )
        if not verdict.fixable:
            self.report(node, message, reason=verdict.reason)
            return
        if inner.args:
            self.report(
                node,
                message,
                reason="the call passes arguments, which FastAPI would have to supply instead",
            )
            return
        if has_comment(inner.whitespace_after_func) or has_comment(inner.whitespace_before_args):
            self.report(
                node, message, reason="a comment inside the call's parentheses would be lost"
            )
            return
        assert isinstance(ref.target, Function)
        parameters = _request_parameters(self.index, ref.target.fact)
        safety, reason = SAFE, ""
        if parameters:
            safety = UNSAFE
            listed = ", ".join(f"`{name}`" for name in parameters)
            reason = f"FastAPI will read {listed} from the request once it calls `{callee}` itself"
        func = inner.func
        if inner.lpar and isinstance(func, (cst.Name, cst.Attribute)):
            func = func.with_changes(lpar=inner.lpar, rpar=inner.rpar)
        replacement = node.with_deep_changes(argument, value=func)
        self.report(node, message, replacement=replacement, safety=safety, reason=reason)
