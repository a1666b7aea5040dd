"""XML rendering of botocore output shapes, shared by the ``query`` and ``ec2`` protocols.

The two protocols write the same XML with two differences, captured by :class:`XmlDialect`:
the element wrapping each list entry when the model does not name it (``member`` for
query, ``item`` for ec2) and how timestamps are printed (IAM: ``2026-01-01T00:00:00Z``,
EC2: ``2026-01-01T00:00:00.000Z``).

Element names follow botocore's XML parser (``BaseXMLResponseParser``), which is what every
SDK reading these responses does: a member is written under its ``locationName``, else its
member name; a flattened list repeats its entries directly under the parent, named by the
list member's ``locationName``; a map is ``<entry><key>k</key><value>v</value></entry>``
(key and value names from their ``locationName``).
"""

from __future__ import annotations

import base64
import datetime as dt
import email.utils
import enum
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

# XML 1.0 cannot carry most C0 controls at all (replaced by U+FFFD); a bare "\r" would be
# normalised to "\n" by the reader (XML 1.0 section 2.11), so it is written as a reference.
_SPECIAL = re.compile("[&<>\r\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", "\r": "&#13;"}


def escape(text: str) -> str:
    """``text`` made safe as XML character data."""
    if _SPECIAL.search(text) is None:
        return text
    return _SPECIAL.sub(lambda m: _ESCAPES.get(m.group(), "\ufffd"), text)


def iso_seconds(value: dt.datetime) -> str:
    """``2026-01-01T00:00:00Z``: IAM and STS."""
    return _utc(value).strftime("%Y-%m-%dT%H:%M:%SZ")


def iso_millis(value: dt.datetime) -> str:
    """``2026-01-01T00:00:00.000Z``: EC2."""
    value = _utc(value)
    return value.strftime("%Y-%m-%dT%H:%M:%S") + f".{value.microsecond // 1000:03d}Z"


def _utc(value: dt.datetime) -> dt.datetime:
    # Naive datetimes are taken as UTC: lamina never deals in local time.
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


@dataclass(frozen=True)
class XmlDialect:
    """What differs between the query and ec2 XML bodies."""

    list_member: str  # element of a list entry when the model names none
    timestamp: Callable[[dt.datetime], str]


QUERY = XmlDialect("member", iso_seconds)
EC2 = XmlDialect("item", iso_millis)


def render_members(shape: Any, value: Mapping[str, Any], dialect: XmlDialect, out: list[str]) -> None:
    """Append the members of structure ``shape`` present in ``value``, in model order.

    Keys not in the shape are ignored, as are ``None`` values (absent members).
    """
    if not isinstance(value, Mapping):
        raise TypeError(f"expected a mapping for {shape.name}, got {value!r}")
    for name, member in shape.members.items():
        item = value.get(name)
        if item is None:
            continue
        flattened = member.serialization.get("flattened")
        if flattened and member.type_name == "list":
            tag = member.member.serialization.get("name") or member.serialization.get("name", name)
            for element in item:
                if element is not None:
                    render_value(member.member, element, tag, dialect, out)
        elif flattened and member.type_name == "map":
            _render_entries(member, item, member.serialization.get("name", name), dialect, out)
        else:
            render_value(member, item, member.serialization.get("name", name), dialect, out)


def render_value(shape: Any, value: Any, tag: str, dialect: XmlDialect, out: list[str]) -> None:
    """Append ``<tag>value</tag>`` for ``value`` of ``shape``."""
    kind = shape.type_name
    if kind == "structure":
        out.append(f"<{tag}>")
        render_members(shape, value, dialect, out)
        out.append(f"</{tag}>")
    elif kind == "list":
        if not isinstance(value, list | tuple):
            raise TypeError(f"expected a list for {shape.name}, got {value!r}")
        if not value:
            out.append(f"<{tag}/>")
            return
        inner = shape.member.serialization.get("name", dialect.list_member)
        out.append(f"<{tag}>")
        for element in value:
            if element is not None:
                render_value(shape.member, element, inner, dialect, out)
        out.append(f"</{tag}>")
    elif kind == "map":
        out.append(f"<{tag}>")
        _render_entries(shape, value, "entry", dialect, out)
        out.append(f"</{tag}>")
    else:
        out.append(f"<{tag}>{escape(scalar_text(shape, value, dialect))}</{tag}>")


def _render_entries(shape: Any, value: Any, tag: str, dialect: XmlDialect, out: list[str]) -> None:
    if not isinstance(value, Mapping):
        raise TypeError(f"expected a mapping for {shape.name}, got {value!r}")
    key_tag = shape.key.serialization.get("name", "key")
    value_tag = shape.value.serialization.get("name", "value")
    for key, item in value.items():
        if item is None:
            continue
        out.append(f"<{tag}>")
        render_value(shape.key, key, key_tag, dialect, out)
        render_value(shape.value, item, value_tag, dialect, out)
        out.append(f"</{tag}>")


def scalar_text(shape: Any, value: Any, dialect: XmlDialect) -> str:
    """The text of a scalar: ``true``/``false``, numbers, timestamps, base64 blobs, strings."""
    if isinstance(value, enum.Enum):
        value = value.value
    kind = shape.type_name
    if kind == "boolean" or isinstance(value, bool):
        return "true" if value else "false"
    if kind == "timestamp":
        return _timestamp_text(shape, value, dialect)
    if kind == "blob":
        if isinstance(value, bytes | bytearray | memoryview):
            return base64.b64encode(value).decode("ascii")
        return str(value)  # already base64 text
    if kind in ("integer", "long") and isinstance(value, int | float):
        return str(int(value))
    if kind in ("float", "double") and isinstance(value, int | float):
        return repr(float(value))
    return str(value)


def _timestamp_text(shape: Any, value: Any, dialect: XmlDialect) -> str:
    if isinstance(value, str):
        return value  # already formatted by the handler
    if isinstance(value, int | float):
        value = dt.datetime.fromtimestamp(value, dt.UTC)  # epoch seconds
    if not isinstance(value, dt.datetime):
        raise TypeError(f"expected a datetime for {shape.name}, got {value!r}")
    fmt = shape.serialization.get("timestampFormat")
    if fmt == "unixTimestamp":
        return str(_utc(value).timestamp())
    if fmt == "rfc822":
        return email.utils.format_datetime(_utc(value), usegmt=True)
    return dialect.timestamp(value)
