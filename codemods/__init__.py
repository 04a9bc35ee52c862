"""The rules, one module each. Importing this package registers them all.

`RUN_ORDER` is the order rules run in within one traversal and the order their fixes are tried in
when two of them would edit overlapping code (the later one waits for the next pass). Each entry says
why it stands where it does; a rule module missing from the list fails the test suite.
"""

from __future__ import annotations

import importlib

RUN_ORDER: tuple[tuple[str, str], ...] = (
    (
        "unwrap_called_dependency",
        "DF005 first: `Depends(f())` makes the app fail at import; every other rule reasons about "
        "`Depends(f)`, so the argument must be a reference before they look at it.",
    ),
    (
        "non_callable_dependency",
        "DF012 only reports; its place does not matter, it stands with DF005, the other rule about "
        "what `Depends` receives.",
    ),
    (
        "background_task_resource",
        "DF011 only reports; it reads signatures and bodies after DF005 has settled `Depends`.",
    ),
    (
        "add_missing_depends",
        "DF001 wires parameters FastAPI cannot read from a request; it rewrites signatures, like "
        "DF006, and produces the `Annotated` form directly, so it runs before DF006.",
    ),
    (
        "await_instead_of_asyncio_run",
        "DF009 rewrites a whole function (its calls and possibly `async`); it goes with the other "
        "body rules, before the signature rules that would otherwise overlap it.",
    ),
    (
        "sync_session_in_async_route",
        "DF010 only removes `async` from a whole function; after DF009, which may add it.",
    ),
    (
        "yield_returned_resource",
        "DF004 turns a returning dependency into a guarded yield dependency, so DF002 and DF003 find "
        "nothing left to do in it; it rewrites the whole function, so it goes before the body rules.",
    ),
    (
        "guard_yield_dependency",
        "DF002 rewrites a dependency's body around its `yield`; it runs before DF003, which only adds "
        "`raise` to handlers that already exist.",
    ),
    (
        "reraise_in_yield_dependency",
        "DF003 edits `except` handlers around `yield`, independent of the signature rules.",
    ),
    (
        "ignored_annotated_metadata",
        "DF017 only reports; it reads the same parameters as DF006 and stands before it, whose fix "
        "it warns about.",
    ),
    (
        "annotate_parameters",
        "DF006 rewrites whole signatures; it runs after the rules that edit single markers inside "
        "them, whose edits it then carries into `Annotated` on the next pass.",
    ),
    (
        "extract_shared_dependencies",
        "DF008 is a project rule: it moves whole definitions between modules to break an import "
        "cycle. It plans before DF007, which refuses aliases whose imports touch a cycle and finds "
        "the cycle gone in the next round.",
    ),
    (
        "share_dependency_alias",
        "DF007 replaces `Annotated[...]` parameters with aliases, so it runs after DF006 has put them "
        "in that form (its sites wait a pass when DF006 rewrites the same signature).",
    ),
)

for _module, _reason in RUN_ORDER:
    importlib.import_module(f"{__name__}.{_module}")


def run_order(codes: list[str]) -> list[str]:
    """Registered codes sorted by the position of their module in RUN_ORDER."""
    from depfix.rules import _REGISTRY

    position = {name: number for number, (name, _) in enumerate(RUN_ORDER)}

    def key(code: str) -> tuple[int, str]:
        module = _REGISTRY[code].__module__.rsplit(".", 1)[-1]
        return position.get(module, len(position)), code

    return sorted(codes, key=key)
