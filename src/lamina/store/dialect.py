"""The few SQL expressions that SQLite and PostgreSQL spell differently.

Repositories write one statement for both engines, with ``?`` placeholders (the PostgreSQL
connection translates them) and ``INSERT ... ON CONFLICT``; where an expression differs they take
it from the database's :class:`Dialect` (``db.sql``). Column names, JSON keys and paths passed here
are the repositories' own constants, never a tenant's input: the values always travel as
parameters.

Facts relied on:
- SQLite's ``json_extract(x, '$.a.b')`` of a string is the string; of an object, its JSON text.
  PostgreSQL's ``CAST(x AS json) #>> '{a,b}'`` is the same (``json``, unlike ``jsonb``, keeps the
  object's text as written, so its keys keep their order).
- ``instr`` (SQLite) and ``strpos`` (PostgreSQL) are both case-sensitive substring tests.
- SQLite's unary ``+`` on a column keeps the planner from using that column's index; PostgreSQL
  has no such hint (and no unary ``+`` for text).
"""

from __future__ import annotations

import re
from typing import Final

# What a column (``t.col``, ``"user"``) or a JSON key passed here may be: the repositories' own
# constants, never a value (one that is not such a name is a bug, refused before it is SQL).
_COLUMN: Final = re.compile(r'[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?|([a-z]+\.)?"[a-z_]+"')
_KEY: Final = re.compile(r"[A-Za-z][A-Za-z0-9_]*")


def _column(name: str) -> str:
    if not _COLUMN.fullmatch(name):
        raise ValueError(f"not a column name: {name!r}")
    return name


def _keys(keys: tuple[str, ...]) -> tuple[str, ...]:
    if not keys or not all(_KEY.fullmatch(k) for k in keys):
        raise ValueError(f"not JSON keys: {keys!r}")
    return keys


class Dialect:
    """SQLite's spelling (the embedded default)."""

    name: Final[str] = "sqlite"

    def json_text(self, column: str, *keys: str) -> str:
        """The value at ``keys`` in the JSON text ``column``, as text (NULL when absent)."""
        return f"json_extract({_column(column)}, '$.{'.'.join(_keys(keys))}')"

    def json_number(self, column: str, *keys: str) -> str:
        """The number at ``keys`` in the JSON text ``column`` (NULL when absent)."""
        return f"json_extract({_column(column)}, '$.{'.'.join(_keys(keys))}')"

    def in_json_array(self) -> str:
        """A subquery of the values of one parameter, a JSON array of strings (``col IN`` it): one
        parameter however many values."""
        return "(SELECT value FROM json_each(?))"

    def json_array_has(self, column: str) -> str:
        """Whether the JSON array text ``column`` holds the string given as one parameter."""
        return f"EXISTS (SELECT 1 FROM json_each({_column(column)}) WHERE json_each.value=?)"

    def contains(self, column: str) -> str:
        """Whether ``column`` contains the text given as one parameter (case-sensitive)."""
        return f"instr({_column(column)}, ?) > 0"

    def unindexed(self, column: str) -> str:
        """``column``, its index not used for this condition where the engine takes such a hint."""
        return f"+{_column(column)}"

    def indexed_by(self, table: str, index: str) -> str:
        """``table``, read through ``index`` where the engine takes such a hint."""
        return f"{_column(table)} INDEXED BY {_column(index)}"

    def greatest(self, a: str, b: str) -> str:
        """The greater of two expressions."""
        return f"max({a}, {b})"

    def byte_length(self, column: str) -> str:
        """The size in bytes of the text ``column`` (UTF-8)."""
        return f"length(CAST({_column(column)} AS BLOB))"


class PostgresDialect(Dialect):
    """PostgreSQL's spelling."""

    name: Final[str] = "postgresql"  # type: ignore[misc]

    def json_text(self, column: str, *keys: str) -> str:
        return f"(CAST({_column(column)} AS json) #>> '{{{','.join(_keys(keys))}}}')"

    def json_number(self, column: str, *keys: str) -> str:
        return f"CAST(CAST({_column(column)} AS json) #>> '{{{','.join(_keys(keys))}}}' AS BIGINT)"

    def in_json_array(self) -> str:
        return "(SELECT jsonb_array_elements_text(CAST(? AS jsonb)))"

    def json_array_has(self, column: str) -> str:
        return f"(CAST({_column(column)} AS jsonb) @> jsonb_build_array(CAST(? AS text)))"

    def contains(self, column: str) -> str:
        return f"strpos({_column(column)}, ?) > 0"

    def unindexed(self, column: str) -> str:
        return _column(column)

    def indexed_by(self, table: str, index: str) -> str:
        _column(index)
        return _column(table)

    def greatest(self, a: str, b: str) -> str:
        return f"GREATEST({a}, {b})"

    def byte_length(self, column: str) -> str:
        return f"octet_length({_column(column)})"


SQLITE: Final = Dialect()
POSTGRESQL: Final = PostgresDialect()
