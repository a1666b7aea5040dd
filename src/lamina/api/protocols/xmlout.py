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

from lamina.domain.clock import as_utc, iso_millis

# XML 1.0 cannot carry most C0 controls at all (replaced by U+FFFD); a bare "\r" would be
# normalised to "\n" by the reader (XML 1.0 section 2.11), so it is written as a reference.
_SPECIAL = re.compile("[&<>\r\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", "\r": "&#13;"}


def _verbatim(text: str) -> bool:
    """True when ``escape(text)`` is ``text``, by a test cheaper than the regular expression: every
    character ``escape`` rewrites is a control, a surrogate, a non-character or one of ``&<>``."""
    return text.isprintable() and "&" not in text and "<" not in text and ">" not in text


def escape(text: str) -> str:
    """``text`` made safe as XML character data."""
    if _SPECIAL.search(text) is None:
        return text
    return _SPECIAL.sub(lambda m: _ESCAPES.get(m.group(), "\ufffd"), text)


def iso_seconds(value: dt.datetime) -> str:
    """``2026-01-01T00:00:00Z``: IAM and STS."""
    return as_utc(value).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class XmlDialect:
    """What differs between the query and ec2 XML bodies."""

    list_member: str  # element of a list entry when the model names none
    timestamp: Callable[[dt.datetime], str]


QUERY = XmlDialect("member", iso_seconds)
EC2 = XmlDialect("item", iso_millis)


# -- compiled renderers ------------------------------------------------------------------------
#
# Reading the layout from the botocore model for every value (member names, locationName,
# flattened, the list entry element, the scalar type) dominated the cost of a response: each
# structure shape is therefore compiled once per dialect into a list of steps, one emitter per
# member with its element's tags already built. The emitters produce exactly the text the model
# walk did; exact types (str, int, bool, datetime) take a fast path, anything else goes through
# ``scalar_text`` and ``escape``. Structures are compiled on first use, not when their parent is
# compiled: botocore builds a new shape object for every reference, so a recursive shape would
# otherwise never finish compiling.

Emit = Callable[[Any, list[str]], None]  # appends the XML of one value, its element included

_COMPILED: dict[tuple[Any, XmlDialect], Emit] = {}


def render_members(shape: Any, value: Mapping[str, Any], dialect: XmlDialect, out: list[str]) -> None:
    """Append the members of structure ``shape`` present in ``value``, in model order.

    Keys not in the shape are ignored, as are ``None`` values (absent members).
    """
    key = (shape, dialect)
    emit = _COMPILED.get(key)
    if emit is None:
        # Shapes have identity hashing and botocore caches them on their operation and parent,
        # so the table holds one entry per output shape actually served.
        emit = _COMPILED[key] = _members(shape, dialect)
    emit(value, out)


def render_value(shape: Any, value: Any, tag: str, dialect: XmlDialect, out: list[str]) -> None:
    """Append ``<tag>value</tag>`` for ``value`` of ``shape``."""
    _emitter(shape, tag, dialect)(value, out)


def _members(shape: Any, dialect: XmlDialect) -> Emit:
    # (member, emitter, tags of a plain string member or ""): the usual string member -- an id,
    # a name, a state -- is written right here, without calling its emitter.
    steps: list[tuple[str, Emit, str, str]] = []
    for name, member in shape.members.items():
        serialization = member.serialization
        tag = serialization.get("name", name)
        if serialization.get("flattened") and member.type_name == "list":
            inner = member.member.serialization.get("name") or tag
            steps.append((name, _flat_list(_emitter(member.member, inner, dialect)), "", ""))
        elif serialization.get("flattened") and member.type_name == "map":
            steps.append((name, _entries(member, tag, dialect), "", ""))
        elif member.type_name == "string":
            steps.append((name, _emitter(member, tag, dialect), f"<{tag}>", f"</{tag}>"))
        else:
            steps.append((name, _emitter(member, tag, dialect), "", ""))
    shape_name = shape.name

    def emit(value: Any, out: list[str]) -> None:
        if type(value) is not dict and not isinstance(value, Mapping):
            raise TypeError(f"expected a mapping for {shape_name}, got {value!r}")
        get = value.get
        append = out.append
        for name, step, open_, close in steps:
            item = get(name)
            if item is None:
                continue
            if (
                open_
                and type(item) is str
                and item.isprintable()
                and "&" not in item
                and "<" not in item
                and ">" not in item
            ):
                append(f"{open_}{item}{close}")  # _verbatim(item), inlined
            else:
                step(item, out)

    return emit


def _emitter(shape: Any, tag: str, dialect: XmlDialect) -> Emit:
    kind = shape.type_name
    if kind == "structure":
        return _structure(shape, tag, dialect)
    if kind == "list":
        return _list(shape, tag, dialect)
    if kind == "map":
        return _map(shape, tag, dialect)
    return _scalar(shape, tag, dialect)


def _structure(shape: Any, tag: str, dialect: XmlDialect) -> Emit:
    open_, close = f"<{tag}>", f"</{tag}>"
    compiled: list[Emit] = []  # the members' emitter, once first needed

    def emit(value: Any, out: list[str]) -> None:
        if not compiled:
            compiled.append(_members(shape, dialect))
        out.append(open_)
        compiled[0](value, out)
        out.append(close)

    return emit


def _list(shape: Any, tag: str, dialect: XmlDialect) -> Emit:
    open_, close, empty = f"<{tag}>", f"</{tag}>", f"<{tag}/>"
    element = _emitter(shape.member, shape.member.serialization.get("name", dialect.list_member), dialect)
    shape_name = shape.name

    def emit(value: Any, out: list[str]) -> None:
        if not isinstance(value, list | tuple):
            raise TypeError(f"expected a list for {shape_name}, got {value!r}")
        if not value:
            out.append(empty)
            return
        out.append(open_)
        for item in value:
            if item is not None:
                element(item, out)
        out.append(close)

    return emit


def _flat_list(element: Emit) -> Emit:
    def emit(value: Any, out: list[str]) -> None:
        for item in value:
            if item is not None:
                element(item, out)

    return emit


def _map(shape: Any, tag: str, dialect: XmlDialect) -> Emit:
    open_, close = f"<{tag}>", f"</{tag}>"
    entries = _entries(shape, "entry", dialect)

    def emit(value: Any, out: list[str]) -> None:
        out.append(open_)
        entries(value, out)
        out.append(close)

    return emit


def _entries(shape: Any, tag: str, dialect: XmlDialect) -> Emit:
    open_, close = f"<{tag}>", f"</{tag}>"
    key_emit = _emitter(shape.key, shape.key.serialization.get("name", "key"), dialect)
    value_emit = _emitter(shape.value, shape.value.serialization.get("name", "value"), dialect)
    shape_name = shape.name

    def emit(value: Any, out: list[str]) -> None:
        if not isinstance(value, Mapping):
            raise TypeError(f"expected a mapping for {shape_name}, got {value!r}")
        for key, item in value.items():
            if item is None:
                continue
            out.append(open_)
            key_emit(key, out)
            value_emit(item, out)
            out.append(close)

    return emit


def _scalar(shape: Any, tag: str, dialect: XmlDialect) -> Emit:
    open_, close = f"<{tag}>", f"</{tag}>"
    kind = shape.type_name

    def generic(value: Any, out: list[str]) -> None:
        out.append(f"{open_}{escape(scalar_text(shape, value, dialect))}{close}")

    if kind in ("integer", "long"):

        def integer(value: Any, out: list[str]) -> None:
            if type(value) is int:
                out.append(f"{open_}{value}{close}")  # digits and a sign: nothing to escape
            else:
                generic(value, out)

        return integer
    if kind == "boolean":
        yes, no = f"{open_}true{close}", f"{open_}false{close}"

        def boolean(value: Any, out: list[str]) -> None:
            if value is True:
                out.append(yes)
            elif value is False:
                out.append(no)
            else:
                generic(value, out)

        return boolean
    if kind == "timestamp":
        own_format = shape.serialization.get("timestampFormat") in ("unixTimestamp", "rfc822")
        stamp = dialect.timestamp

        def timestamp(value: Any, out: list[str]) -> None:
            if type(value) is str:
                text = value  # formatted by the handler: escaped like any string
                if not _verbatim(text):
                    text = escape(text)
                out.append(f"{open_}{text}{close}")
            elif type(value) is dt.datetime and not own_format:
                out.append(f"{open_}{stamp(value)}{close}")  # digits, "-", ":", ".", "T", "Z"
            else:
                generic(value, out)

        return timestamp
    if kind in ("string", "character"):

        def string(value: Any, out: list[str]) -> None:
            if type(value) is str:
                if _verbatim(value):
                    out.append(f"{open_}{value}{close}")
                else:
                    out.append(f"{open_}{escape(value)}{close}")
            else:
                generic(value, out)

        return string
    return generic


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
        return str(as_utc(value).timestamp())
    if fmt == "rfc822":
        return email.utils.format_datetime(as_utc(value), usegmt=True)
    return dialect.timestamp(value)
