"""The dialect helpers put column names and JSON keys into SQL text: they take only names shaped
as the repositories' constants, so that a value passed by mistake is refused (ValueError) rather
than becoming SQL (an injection the ``?`` parameters otherwise rule out)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from lamina.store.dialect import POSTGRESQL, SQLITE, Dialect

HOSTILE = ["x') OR 1=1 --", "message; DROP TABLE log_events", "a b", "", "config'", "col/**/", 'a"b', "ü"]
HOSTILE_KEYS = ["State'", "a}", "a,b", "$.x", "", "x y", "%s", "?"]


@pytest.mark.parametrize("dialect", [SQLITE, POSTGRESQL], ids=["sqlite", "postgresql"])
def test_helpers_refuse_what_is_not_a_name(dialect: Dialect) -> None:
    by_column: list[Callable[[str], str]] = [
        lambda c: dialect.json_text(c, "State"),
        lambda c: dialect.json_number(c, "CodeSize"),
        dialect.json_array_has,
        dialect.contains,
        dialect.unindexed,
        dialect.byte_length,
        lambda c: dialect.indexed_by(c, "log_events_group"),
        lambda c: dialect.indexed_by("log_events", c),
    ]
    for helper in by_column:
        for value in HOSTILE:
            with pytest.raises(ValueError):
                helper(value)
    for key in HOSTILE_KEYS:
        with pytest.raises(ValueError):
            dialect.json_text("config", key)
        with pytest.raises(ValueError):
            dialect.json_number("config", "VpcConfig", key)
    with pytest.raises(ValueError):
        dialect.json_text("config")  # no key at all


@pytest.mark.parametrize("dialect", [SQLITE, POSTGRESQL], ids=["sqlite", "postgresql"])
def test_helpers_take_the_repositories_constants(dialect: Dialect) -> None:
    assert "config" in dialect.json_text("config", "VpcConfig", "VpcId")
    assert "UserName" in dialect.json_text('u."user"', "UserName")
    assert '"user"' in dialect.json_text('"user"', "PermissionsBoundary", "PermissionsBoundaryArn")
    assert "message" in dialect.contains("message")
    assert "log_events" in dialect.indexed_by("log_events", "log_events_group")
