"""New imports go where isort puts them: isort itself is the oracle."""

from __future__ import annotations

import itertools

import isort
import libcst as cst
import pytest

from depfix.imports import add_from_import, relative_source, remove_imports_made_unused

FIRST_PARTY = frozenset({"app"})
CONFIG = isort.Config(profile="black", known_first_party=["app"])

HEADERS = [
    "",
    '"""A module."""\n',
    "from __future__ import annotations\n",
    "import os\n",
    "import os\nfrom typing import Any, Optional\n",
    "from typing import (\n    Any,\n    Optional,\n)\n",
    "import os\n\nfrom fastapi import APIRouter\n",
    "from fastapi import APIRouter, Depends\nfrom sqlalchemy.orm import Session\n\nfrom app.db import get_db\n",
    '"""Doc."""\n\nfrom __future__ import annotations\n\nimport logging\n\nimport httpx\n\nfrom app import models\n\nfrom . import sibling\n',
    "from ..core import settings\nfrom . import sibling\n",
]
IMPORTS = [
    ("typing", "Annotated"),
    ("collections.abc", "Iterator"),
    ("fastapi", "Depends"),
    ("sqlalchemy.orm", "Session"),
    ("app.db", "get_db"),
    ("app", "models"),
    ("..db", "get_db"),
    (".", "orders"),
]


@pytest.mark.parametrize(("header", "wanted"), list(itertools.product(HEADERS, IMPORTS)))
def test_a_new_import_lands_where_isort_puts_it(header: str, wanted: tuple[str, str]) -> None:
    tail = "def handler() -> None:\n    pass\n"
    source = header + "\n\n" + tail if header else tail
    assert isort.code(source, config=CONFIG) == source, "the header itself must be isort-clean"
    result = add_from_import(cst.parse_module(source), *wanted, FIRST_PARTY).code
    assert (
        f"import {wanted[1]}" in result or f", {wanted[1]}" in result or f"{wanted[1]}," in result
    )
    assert isort.code(result, config=CONFIG) == result


def test_an_import_already_there_is_not_added_twice() -> None:
    source = "from typing import Annotated\n\nx: Annotated[int, 1] = 1\n"
    assert add_from_import(cst.parse_module(source), "typing", "Annotated").code == source


@pytest.mark.parametrize(
    ("current", "is_package", "target", "expected"),
    [
        ("shop.api.customers", False, "shop.db", "..db"),
        ("shop.api.customers", False, "shop.api.orders", ".orders"),
        ("shop", True, "shop.db", ".db"),
        ("shop.api", True, "shop.db", "..db"),
        ("a.b", False, "c.d", None),
    ],
)
def test_relative_sources(
    current: str, is_package: bool, target: str, expected: str | None
) -> None:
    assert relative_source(current, is_package, target) == expected


def test_only_imports_a_change_made_unused_are_removed() -> None:
    before = cst.parse_module(
        "from typing import Annotated, Optional\nimport os\nimport json  # unused already\n\n"
        "x: Annotated[int, os.sep] = 1\ny: Optional[int] = None\n"
    )
    after = cst.parse_module(
        "from typing import Annotated, Optional\nimport os\nimport json  # unused already\n\n"
        "x = 1\ny: Optional[int] = None\n"
    )
    result = remove_imports_made_unused(before, after, frozenset()).code
    assert (
        result
        == "from typing import Optional\nimport json  # unused already\n\nx = 1\ny: Optional[int] = None\n"
    )
    kept = remove_imports_made_unused(before, after, frozenset({"os"})).code
    assert "import os\n" in kept


@pytest.mark.parametrize(
    ("before", "after"),
    [
        (
            "from app.d import (\n    get_user as current,  # under test\n)\n",
            "from app.d import (\n    a,\n    get_user as current,  # under test\n)\n",
        ),
        (
            "from app.d import (\n    b,  # b\n    c,\n)\n",
            "from app.d import (\n    a,\n    b,  # b\n    c,\n)\n",
        ),
        (
            "from app.d import (b,\n                   c)\n",
            "from app.d import (a, b,\n                   c)\n",
        ),
    ],
    ids=["comment-on-the-only-name", "comment-on-the-next-name", "hanging-indent"],
)
def test_a_name_added_before_others_keeps_their_comments_and_layout(
    before: str, after: str
) -> None:
    assert add_from_import(cst.parse_module(before), "app.d", "a").code == after
