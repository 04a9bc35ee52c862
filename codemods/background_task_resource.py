"""DF011 request-resource-in-background-task: a yield dependency's value handed to a background task.

Background tasks run after the response is sent. A value from a yield dependency passed to
`BackgroundTasks.add_task` outlives the request that owns it:

- with `Depends(..., scope="function")` (FastAPI 0.121+), and on FastAPI 0.106 to 0.117, the
  dependency's cleanup runs before the task: the task uses a closed session or client (an error);
- otherwise the task runs before the cleanup, so it holds the connection for its whole duration
  (a warning: pools run dry under load).

Before:

    @router.post("/orders")
    def create_order(background: BackgroundTasks, db: Session = Depends(get_db, scope="function")):
        background.add_task(send_receipt, db)

Fixed by hand (depfix reports only).

After:

    @router.post("/orders")
    def create_order(background: BackgroundTasks, db: Session = Depends(get_db, scope="function")):
        background.add_task(send_receipt)  # send_receipt opens its own session

Values count when passed positionally or by keyword, directly, through a local variable assigned from
them, or as a bound method (`db.execute`). The FastAPI version comes from the project's declared
requirement; without one the newest release is assumed.
"""

from __future__ import annotations

from typing import Optional

import libcst as cst

from codemods._resources import own_nodes
from depfix.facts import FileFacts
from depfix.index import Function, ProjectIndex
from depfix.rules import FileRule, register

EARLY_EXIT = ((0, 106, 0), (0, 118, 0))


@register
class BackgroundTaskResource(FileRule):
    CODE = "DF011"
    NAME = "request-resource-in-background-task"
    SUMMARY = "a yield dependency's value passed to `BackgroundTasks.add_task`"
    FIX = "none"
    NEEDLES = (b"add_task",)
    FASTAPI_ONLY = True

    @classmethod
    def wants(cls, facts: FileFacts, index: ProjectIndex) -> bool:
        """Mirrors `visit_FunctionDef`: a route or dependency that passes (a copy of) a parameter
        injected from a yield dependency, by a marker in its default or `Annotated`, to `add_task`."""
        refs = [
            ref
            for ref in index.dependency_refs_in(facts.path)
            if ref.fact.context in ("default", "annotated")
            and not ref.fact.in_string
            and isinstance(ref.target, Function)
            and ref.target.fact.is_generator
        ]
        if not refs:
            return False
        for function in facts.every_function():
            if not function.task_sources:
                continue
            sources = set(function.task_sources)
            if (
                any(
                    ref.fact.function == function.qualname and ref.fact.parameter in sources
                    for ref in refs
                )
                and index.fastapi_role((function.module, function.qualname)) is not None
            ):
                return True
        return False

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        function = self.index.function_at(self.context.path, self.def_line(node))
        if (
            function is None
            or self.index.fastapi_role((function.module, function.qualname)) is None
        ):
            return
        resources = self.yielded_parameters(node)
        if not resources:
            return
        aliases = self.local_aliases(node, resources)
        for call in own_nodes(node.body, (cst.Call,)):
            assert isinstance(call, cst.Call)
            if not (isinstance(call.func, cst.Attribute) and call.func.attr.value == "add_task"):
                continue
            for arg in call.args:  # the task itself too: `add_task(db.execute, ...)`
                name = self.root_name(arg.value)
                if name is None or name not in aliases:
                    continue
                parameter, scope = aliases[name]
                self.report_site(arg, parameter, scope)

    def yielded_parameters(self, node: cst.FunctionDef) -> dict[str, Optional[str]]:
        """Parameters injected from a yield dependency, with the `scope=` they ask for."""
        found: dict[str, Optional[str]] = {}
        for param in (*node.params.posonly_params, *node.params.params, *node.params.kwonly_params):
            markers = []
            if isinstance(param.default, cst.Call):
                markers.append(param.default)
            annotation = param.annotation.annotation if param.annotation else None
            if isinstance(annotation, cst.Subscript):
                markers += [
                    element.slice.value
                    for element in annotation.slice[1:]
                    if isinstance(element.slice, cst.Index)
                    and isinstance(element.slice.value, cst.Call)
                ]
            for marker in markers:
                span = self.span(marker)
                ref = self.index.dependency_ref_at(self.context.path, span.line, span.column)
                if (
                    ref is None
                    or not isinstance(ref.target, Function)
                    or not ref.target.fact.is_generator
                ):
                    continue
                scope = next(
                    (
                        arg.value.evaluated_value
                        for arg in marker.args
                        if arg.keyword is not None
                        and arg.keyword.value == "scope"
                        and isinstance(arg.value, cst.SimpleString)
                    ),
                    None,
                )
                found[param.name.value] = scope if isinstance(scope, str) else None
        return found

    @staticmethod
    def local_aliases(
        node: cst.FunctionDef, resources: dict[str, Optional[str]]
    ) -> dict[str, tuple[str, Optional[str]]]:
        """Names bound to a resource: the parameters, and locals assigned from them."""
        aliases = {name: (name, scope) for name, scope in resources.items()}
        for assign in own_nodes(node.body, (cst.Assign,)):
            assert isinstance(assign, cst.Assign)
            source = BackgroundTaskResource.root_name(assign.value)
            if (
                source in aliases
                and len(assign.targets) == 1
                and isinstance(assign.targets[0].target, cst.Name)
            ):
                aliases[assign.targets[0].target.value] = aliases[source]
        return aliases

    @staticmethod
    def root_name(node: cst.BaseExpression) -> Optional[str]:
        """`db` for `db` and for a bound method such as `db.execute`."""
        if isinstance(node, cst.Name):
            return node.value
        if isinstance(node, cst.Attribute) and isinstance(node.value, cst.Name):
            return node.value.value
        return None

    def report_site(self, arg: cst.Arg, parameter: str, scope: Optional[str]) -> None:
        version = self.context.settings.fastapi_version
        early = version is not None and EARLY_EXIT[0] <= version < EARLY_EXIT[1]
        if scope == "function" or early:
            why = (
                'scope="function"' if scope == "function" else "this FastAPI release (0.106-0.117)"
            )
            message = (
                f"`{parameter}` comes from a yield dependency whose cleanup runs before background "
                f"tasks ({why}): the task gets a closed resource"
            )
        else:
            message = (
                f"`{parameter}` comes from a yield dependency: the background task holds it until the "
                "task ends, after the response"
            )
        self.report(arg, message, reason="open a fresh resource inside the task")
