"""The rule registry: every rule module is registered, ordered and documented."""

from __future__ import annotations

import pkgutil

import codemods
from depfix.rules import registered_rules


def test_every_rule_module_is_in_the_run_order() -> None:
    modules = {
        m.name for m in pkgutil.iter_modules(codemods.__path__) if not m.name.startswith("_")
    }
    ordered = [name for name, _ in codemods.RUN_ORDER]
    assert sorted(ordered) == sorted(modules)
    assert len(ordered) == len(set(ordered))
    assert all(reason.strip() for _, reason in codemods.RUN_ORDER)


def test_rules_have_unique_codes_names_and_documentation() -> None:
    rules = registered_rules()
    assert len({rule.CODE for rule in rules}) == len(rules)
    assert len({rule.NAME for rule in rules}) == len(rules)
    for rule in rules:
        documentation = rule.documentation()
        assert documentation.startswith(f"{rule.CODE} {rule.NAME}:"), rule.CODE
        assert "Before:" in documentation and "After:" in documentation, rule.CODE
        assert rule.FIX in ("safe", "unsafe", "none"), rule.CODE
        assert rule.SUMMARY, rule.CODE


def test_run_order_follows_the_declared_modules() -> None:
    order = [rule.__module__.rsplit(".", 1)[-1] for rule in registered_rules()]
    assert order == [name for name, _ in codemods.RUN_ORDER]
