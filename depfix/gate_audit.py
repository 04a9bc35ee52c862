"""A development check of the rules' gates: does `wants` ever keep a rule from a file it would act on?

The engine parses a file with libcst only for the rules whose needles are in its bytes and whose
`wants` accepts its facts. A gate that refuses a file the rule would report in loses a diagnostic
silently, so the gates must over-approximate. `audit()` patches the engine (in this process; run
with one job) to also run every needle-matching rule that `wants` turned away, and records each one
that reports anyway. `precision()` counts, per rule, the files it ran on and the files it reported in.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

import libcst as cst

from depfix import engine
from depfix.facts import FileFacts
from depfix.index import ProjectIndex
from depfix.rules import FileContext, FileRule


@dataclass
class GateAudit:
    misses: list[tuple[str, str, int]] = field(default_factory=list)
    """(rule code, path, findings) for each file a gate refused and the rule reports in."""
    ran: Counter[str] = field(default_factory=Counter)
    """Per rule code: the (file, pass) pairs its gate let it run on."""
    reported: Counter[str] = field(default_factory=Counter)
    """Per rule code: the (file, pass) pairs where it ran and reported something."""


def _findings(
    rule: type[FileRule],
    data: bytes,
    path: str,
    facts: FileFacts,
    index: ProjectIndex,
    options: engine.RunOptions,
) -> int:
    try:
        module = cst.parse_module(data)
    except Exception:  # the engine reports what cannot be parsed
        return 0
    context = FileContext(path, facts, index, options.settings)
    return len(engine._run_rules(module, [rule], context))


@contextlib.contextmanager
def audit(count: bool = False) -> Iterator[GateAudit]:
    """Patch the engine while the block runs; with `count`, also run each admitted rule alone."""
    result = GateAudit()
    original = engine._file_rules_for

    def audited(
        facts: FileFacts, data: bytes, index: ProjectIndex, options: engine.RunOptions
    ) -> list[type[FileRule]]:
        chosen = original(facts, data, index, options)
        for rule in options.rules:
            if not issubclass(rule, FileRule) or not engine._has_needle(rule, data):
                continue
            if rule in chosen:
                if count:
                    result.ran[rule.CODE] += 1
                    if _findings(rule, data, facts.path, facts, index, options):
                        result.reported[rule.CODE] += 1
                    continue
            else:
                found = _findings(rule, data, facts.path, facts, index, options)
                if found:
                    result.misses.append((rule.CODE, facts.path, found))
        return chosen

    engine._file_rules_for = audited
    try:
        yield result
    finally:
        engine._file_rules_for = original
