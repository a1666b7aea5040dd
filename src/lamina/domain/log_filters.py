"""CloudWatch Logs filter patterns: compiled once, matched against many log events.

The language is AWS's "Filter pattern syntax for metric filters, subscription filters, filter log
events, and Live Tail" (docs.aws.amazon.com/AmazonCloudWatch/latest/logs/FilterAndPatternSyntax.html):

- ``""``: every event matches;
- terms (``ERROR Exception``): every term appears; ``"ERROR 401"``: an exact phrase;
  ``?ERROR ?WARN``: any of them; ``ERROR -Retry``: ``ERROR`` and not ``Retry``;
- ``{ $.level = "ERROR" && ($.latency > 500 || $.user.id IS NULL) }``: JSON events;
- ``[ip, user, ..., status=4*, size>1000]``: space-delimited events;
- ``%regex%``: the regex subset AWS supports (no parentheses; at most 2 in a JSON or
  space-delimited pattern), run by the linear-time automaton of :mod:`lamina.domain.log_regex`,
  never by Python's backtracking ``re`` (``%a?a?...aaa%`` or ``%a*a*a*b%`` would hold a thread).

Terms match whole words: AWS's own regex page shows ``%AUTHORIZED%`` catching ``UNAUTHORIZED``
because the term ``AUTHORIZED`` would not, so a term matches where the text next to it is not a
letter or digit. Matching is case-sensitive throughout (same page).

Speed: FilterLogEvents runs one pattern over up to a million events, so every term first does a
plain ``in`` test (C speed) and only a hit pays for the word-boundary check; JSON patterns decode
an event only if it starts with ``{``. :attr:`LogPattern.required` names the texts a matching event
must contain, so the store can skip the rest in SQL before Python judges.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from lamina.domain.log_regex import LinearRegex, RegexError
from lamina.errors import AwsError, BodyStyle

Matcher = Callable[[str], bool]

# The messages AWS answers for a bad pattern (seen in SDK error reports: "Invalid filter pattern",
# "Invalid filter pattern: Invalid character(s) in term '\"\"'", and
# "If a filter pattern starts with '{' it must end with '}'").
INVALID_PATTERN_MESSAGE: Final = "Invalid filter pattern"
BRACE_MESSAGE: Final = "If a filter pattern starts with '{' it must end with '}'"
BRACKET_MESSAGE: Final = "If a filter pattern starts with '[' it must end with ']'"


class InvalidFilterPattern(AwsError):
    """A filter pattern CloudWatch Logs refuses (HTTP 400 InvalidParameterException)."""

    code = "InvalidParameterException"
    status = 400
    style = BodyStyle.LOWER
    sender_fault = True


def _invalid(detail: str | None = None) -> InvalidFilterPattern:
    if detail is None:
        return InvalidFilterPattern(INVALID_PATTERN_MESSAGE)
    return InvalidFilterPattern(f"{INVALID_PATTERN_MESSAGE}: {detail}")


def _bad_term(term: str) -> InvalidFilterPattern:
    return _invalid(f"Invalid character(s) in term '{term}'")


@dataclass(frozen=True)
class LogPattern:
    """A compiled filter pattern; :meth:`matches` is the only thing callers need."""

    text: str
    kind: str  # "all", "terms", "json", "delimited" or "regex"
    _match: Matcher = field(repr=False, compare=False)
    # Texts a matching event must contain, as alternatives: every text of at least one inner
    # tuple (None: nothing is known). A store may use them to skip events before :meth:`matches`
    # (which stays the judge); the test is case-sensitive, as matching is.
    required: tuple[tuple[str, ...], ...] | None = None

    def matches(self, message: str) -> bool:
        """Whether the log event ``message`` matches this pattern."""
        return self._match(message)


def compile_pattern(text: str) -> LogPattern:
    """Compile a CloudWatch Logs filter pattern, or raise :class:`InvalidFilterPattern`."""
    stripped = text.strip()
    if not stripped:
        return LogPattern(text, "all", _always)
    if stripped[0] == "{":
        if stripped[-1] != "}":
            raise InvalidFilterPattern(BRACE_MESSAGE)
        return LogPattern(text, "json", _compile_json(stripped[1:-1]))
    if stripped[0] == "[":
        if stripped[-1] != "]":
            raise InvalidFilterPattern(BRACKET_MESSAGE)
        return LogPattern(text, "delimited", _compile_delimited(stripped[1:-1]))
    if len(stripped) >= 2 and stripped[0] == "%" and stripped[-1] == "%":
        regex = _compile_regex(stripped[1:-1])
        needs = None if regex.required is None else tuple((t,) for t in regex.required)
        return LogPattern(text, "regex", regex.search_bool, needs)
    terms = _split_terms(stripped)
    return LogPattern(text, "terms", _compile_terms(terms), _terms_required(terms))


def _always(message: str) -> bool:
    return True


# --- terms --------------------------------------------------------------------------------------

# Unquoted terms: letters, digits and the punctuation that never needs quoting in AWS's examples
# ("Terms that include characters other than alphanumeric or underscore must be in double quotes").
_BARE_TERM = re.compile(r"[A-Za-z0-9_.\-:/]+")


def _word_matcher(term: str) -> Matcher:
    """Match ``term`` as a whole word: a substring test first, boundaries only on a hit."""
    left = term[0].isalnum()
    right = term[-1].isalnum()
    if not left and not right:
        return lambda message: term in message
    size = len(term)

    def match(message: str) -> bool:
        if term not in message:  # the cheap rejection nearly every event takes
            return False
        start = message.find(term)
        while start >= 0:
            end = start + size
            if (not left or start == 0 or not message[start - 1].isalnum()) and (
                not right or end == len(message) or not message[end].isalnum()
            ):
                return True
            start = message.find(term, start + 1)
        return False

    return match


def _split_terms(text: str) -> list[tuple[str, str, bool]]:
    """Split into (prefix, term, quoted) triples; prefix is "", "?" or "-"."""
    out: list[tuple[str, str, bool]] = []
    i, n = 0, len(text)
    while i < n:
        if text[i].isspace():
            i += 1
            continue
        prefix = ""
        if text[i] in "?-" and i + 1 < n and not text[i + 1].isspace():
            prefix = text[i]
            i += 1
        if text[i] == '"':
            end = i + 1
            chars: list[str] = []
            while end < n and text[end] != '"':
                if text[end] == "\\" and end + 1 < n:
                    end += 1
                chars.append(text[end])
                end += 1
            if end >= n:
                raise _bad_term(text[i:])
            phrase = "".join(chars)
            if not phrase:
                raise _bad_term('""')
            out.append((prefix, phrase, True))
            i = end + 1
        else:
            end = i
            while end < n and not text[end].isspace():
                end += 1
            word = text[i:end]
            if not _BARE_TERM.fullmatch(word):
                raise _bad_term(prefix + word)
            out.append((prefix, word, False))
            i = end
    return out


def _terms_required(terms: list[tuple[str, str, bool]]) -> tuple[tuple[str, ...], ...] | None:
    """Every plain term, and one of the ``?`` terms: the texts an event must contain."""
    required = tuple(term for prefix, term, _ in terms if prefix == "")
    anyof = [term for prefix, term, _ in terms if prefix == "?"]
    if anyof:
        return tuple((*required, term) for term in anyof)
    return (required,) if required else None


def _compile_terms(terms: list[tuple[str, str, bool]]) -> Matcher:
    required: list[Matcher] = []
    anyof: list[Matcher] = []
    excluded: list[Matcher] = []
    for prefix, term, _quoted in terms:
        target = {"": required, "?": anyof, "-": excluded}[prefix]
        target.append(_word_matcher(term))
    if len(required) == 1 and not anyof and not excluded:
        return required[0]

    # Plain loops: a generator per event costs more than the substring tests themselves.
    def match(message: str) -> bool:
        for m in required:
            if not m(message):
                return False
        if anyof:
            for m in anyof:
                if m(message):
                    break
            else:
                return False
        for m in excluded:  # noqa: SIM110 (a generator per event costs more)
            if m(message):
                return False
        return True

    return match


# --- regex --------------------------------------------------------------------------------------

# The characters AWS allows between the % signs ("Supported regular expressions (regex) syntax"):
# alphanumerics, the symbols : _ # = @ / ; , - and the operators ^ $ ? [ ] { } | \ * + . ;
# parentheses are refused, and so is any multi-byte character. A backslash escapes anything.
_REGEX_CHARS = re.compile(r"(?:\\.|[A-Za-z0-9:_#=@/;,\-^$?\[\]{}|*+. ])*", re.DOTALL)


@dataclass(frozen=True)
class _Regex:
    """A ``%regex%``: a substring test for the literal text it needs first (C speed), then the
    linear-time automaton of :mod:`lamina.domain.log_regex` (never Python's backtracking ``re``)."""

    compiled: LinearRegex

    @property
    def required(self) -> tuple[str, ...] | None:
        """Literal texts of which every match contains one (None: no such set)."""
        return self.compiled.required

    def search_bool(self, message: str) -> bool:
        required = self.compiled.required
        if required is not None:
            for text in required:
                if text in message:
                    break
            else:
                return False
        return self.compiled.search(message)


def _compile_regex(body: str) -> _Regex:
    if not body or not body.isascii() or not _REGEX_CHARS.fullmatch(body):
        raise _invalid()
    try:
        return _Regex(LinearRegex(body))
    except RegexError as exc:
        raise _invalid() from exc


# --- JSON ---------------------------------------------------------------------------------------

_MISSING: Final = object()

_JSON_TOKEN = re.compile(
    r"""\s*(?:
      (?P<op>&&|\|\||==|!=|<=|>=|=|<|>|\(|\))
    | (?P<sel>\$(?:\.[A-Za-z0-9_@\-$]+|\[\d+\])*)
    | (?P<str>"(?:[^"\\]|\\.)*")
    | (?P<re>%[^%]*%)
    | (?P<word>[^\s()&|=!<>"]+)
    )""",
    re.VERBOSE,
)
_SELECTOR_PART = re.compile(r"\.([A-Za-z0-9_@\-$]+)|\[(\d+)\]")
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?")


def _tokenize_json(body: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    pos = 0
    body = body.rstrip()
    while pos < len(body):
        m = _JSON_TOKEN.match(body, pos)
        if m is None or m.end() == pos:
            raise _invalid()
        kind = m.lastgroup
        assert kind is not None
        tokens.append((kind, m.group(kind)))
        pos = m.end()
    return tokens


def _selector_path(selector: str) -> tuple[str | int, ...]:
    parts: list[str | int] = []
    for m in _SELECTOR_PART.finditer(selector, 1):
        parts.append(m.group(1) if m.group(1) is not None else int(m.group(2)))
    return tuple(parts)


def _lookup(doc: Any, path: Sequence[str | int]) -> Any:
    node = doc
    for part in path:
        if isinstance(part, int):
            if not isinstance(node, list) or part >= len(node):
                return _MISSING
            node = node[part]
        else:
            if not isinstance(node, dict) or part not in node:
                return _MISSING
            node = node[part]
    return node


JsonTest = Callable[[Any], bool]


def _wildcard(value: str) -> Callable[[str], bool]:
    if "*" not in value:
        return lambda s: s == value
    # Matched left to right with str.find (each piece at its first place after the last): linear
    # in the event, where a regex of ``.*`` runs would backtrack without bound (``*a*a*a*c``).
    first, *middle, last = value.split("*")

    def match(s: str) -> bool:
        end = len(s) - len(last)
        if end < len(first) or not s.startswith(first) or not s.endswith(last):
            return False
        pos = len(first)
        for piece in middle:
            at = s.find(piece, pos, end)
            if at < 0:
                return False
            pos = at + len(piece)
        return True

    return match


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _comparison(path: tuple[str | int, ...], op: str, kind: str, raw: str) -> JsonTest:
    """One ``$.sel OP value`` test: numbers compare numerically, strings by (wildcard) equality."""
    if kind == "word" and _NUMBER.fullmatch(raw):
        number = float(raw)

        def num_test(doc: Any) -> bool:
            v = _lookup(doc, path)
            if not _is_number(v):
                return False
            f = float(v)
            if op == "=":
                return f == number
            if op == "!=":
                return f != number
            if op == "<":
                return f < number
            if op == ">":
                return f > number
            if op == "<=":
                return f <= number
            return f >= number

        return num_test
    if op not in ("=", "!="):
        # AWS: "<, >, <= and >= only work with numeric values".
        raise _invalid()
    string_ok: Callable[[str], bool]
    if kind == "re":
        string_ok = _compile_regex(raw[1:-1]).search_bool
    elif kind == "str":
        try:
            string_ok = _wildcard(json.loads(raw))
        except ValueError as exc:  # a string token with an escape JSON has not got ("\x")
            raise _invalid() from exc
    else:
        string_ok = _wildcard(raw)
    negate = op == "!="

    def str_test(doc: Any) -> bool:
        v = _lookup(doc, path)
        if v is _MISSING or v is None or isinstance(v, dict | list):
            return False
        text = v if isinstance(v, str) else json.dumps(v)
        return string_ok(text) != negate

    return str_test


MAX_NESTING = 64  # parentheses in a JSON pattern (AWS's patterns are at most 1024 characters)


class _JsonParser:
    def __init__(self, tokens: list[tuple[str, str]]) -> None:
        self.tokens = tokens
        self.pos = 0
        self.depth = 0  # open parentheses: bounded, so no pattern exhausts the parser's stack

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        tok = self.peek()
        if tok is None:
            raise _invalid()
        self.pos += 1
        return tok

    def parse(self) -> JsonTest:
        test = self.or_expr()
        if self.peek() is not None:
            raise _invalid()
        return test

    def or_expr(self) -> JsonTest:
        tests = [self.and_expr()]
        while self.peek() == ("op", "||"):
            self.pos += 1
            tests.append(self.and_expr())
        if len(tests) == 1:
            return tests[0]
        return lambda doc: any(t(doc) for t in tests)

    def and_expr(self) -> JsonTest:
        tests = [self.unary()]
        while self.peek() == ("op", "&&"):
            self.pos += 1
            tests.append(self.unary())
        if len(tests) == 1:
            return tests[0]
        return lambda doc: all(t(doc) for t in tests)

    def unary(self) -> JsonTest:
        kind, value = self.take()
        if (kind, value) == ("op", "("):
            self.depth += 1
            if self.depth > MAX_NESTING:
                raise _invalid()
            inner = self.or_expr()
            self.depth -= 1
            if self.take() != ("op", ")"):
                raise _invalid()
            return inner
        if kind != "sel":
            raise _invalid()
        path = _selector_path(value)
        kind2, op = self.take()
        if kind2 == "word" and op.upper() == "IS":
            _, what = self.take()
            what = what.upper()
            if what == "NULL":
                return lambda doc: _lookup(doc, path) is None
            if what in ("TRUE", "FALSE"):
                want = what == "TRUE"
                return lambda doc: _lookup(doc, path) is want
            raise _invalid()
        if kind2 == "word" and op.upper() == "NOT":
            if self.take()[1].upper() != "EXISTS":
                raise _invalid()
            return lambda doc: _lookup(doc, path) is _MISSING
        if kind2 != "op" or op not in ("=", "!=", "<", ">", "<=", ">="):
            raise _invalid()
        vkind, raw = self.take()
        if vkind not in ("word", "str", "re"):
            raise _invalid()
        return _comparison(path, op, vkind, raw)


# "Each filter pattern is limited to 2 regex" in JSON and space-delimited patterns (AWS's regex
# syntax page, "Quotas").
MAX_REGEX = 2


def _compile_json(body: str) -> Matcher:
    tokens = _tokenize_json(body)
    if not tokens or sum(1 for kind, _ in tokens if kind == "re") > MAX_REGEX:
        raise _invalid()
    test = _JsonParser(tokens).parse()

    def match(message: str) -> bool:
        # Only a JSON object can match; most events are rejected here without decoding.
        # (lstrip copies the event, so only events that start with a blank pay for it).
        first = message[:1]
        if first != "{" and not (first.isspace() and message.lstrip()[:1] == "{"):
            return False
        try:
            doc = json.loads(message)
        except (ValueError, RecursionError):
            return False
        return isinstance(doc, dict) and bool(test(doc))

    return match


# --- space-delimited ----------------------------------------------------------------------------

_ELLIPSIS: Final = "..."
_FIELD_COND = re.compile(r"\s*([A-Za-z0-9_]*)\s*(!=|<=|>=|=|<|>)\s*(.+?)\s*$", re.DOTALL)
_FIELD_NAME = re.compile(r"[A-Za-z0-9_]+")
_DELIMITED_REGEX = re.compile(r"(?:!=|<=|>=|=|<|>)\s*%[^%]*%")
_EVENT_FIELD = re.compile(r'"[^"]*"|\[[^\]]*\]|\S+')


def _split_top(text: str, sep: str) -> list[str]:
    """Split on ``sep`` outside double quotes."""
    parts: list[str] = []
    depth_quote = False
    start = 0
    i = 0
    while i < len(text):
        c = text[i]
        if c == '"':
            depth_quote = not depth_quote
        elif not depth_quote and text.startswith(sep, i):
            parts.append(text[start:i])
            i += len(sep)
            start = i
            continue
        i += 1
    if depth_quote:
        raise _invalid()
    parts.append(text[start:])
    return parts


FieldTest = Callable[[str], bool]


def _field_condition(text: str) -> FieldTest:
    m = _FIELD_COND.match(text)
    if m is None:
        raise _invalid()
    _, op, raw = m.groups()
    kind = "str" if raw.startswith('"') and raw.endswith('"') and len(raw) >= 2 else "word"
    if kind == "word" and raw.startswith("%") and raw.endswith("%") and len(raw) >= 2:
        kind = "re"
    test = _comparison((0,), op, kind, raw)
    numeric = kind == "word" and _NUMBER.fullmatch(raw) is not None

    def field_test(value: str) -> bool:
        # A numeric condition compares the field as a number (a non-number never matches);
        # a string condition compares the field's text as it appears in the event.
        if numeric:
            return _NUMBER.fullmatch(value) is not None and test([float(value)])
        return test([value])

    return field_test


def _any_of_all(alternatives: list[list[FieldTest]]) -> FieldTest:
    """``a && b || c``: any alternative whose conditions all hold."""

    def test(value: str) -> bool:
        for conj in alternatives:
            for t in conj:
                if not t(value):
                    break
            else:
                return True
        return False

    return test


def _compile_delimited(body: str) -> Matcher:
    specs: list[FieldTest | None] = []  # None: any single field; _ELLIPSIS handled separately
    ellipses: list[int] = []
    if len(_DELIMITED_REGEX.findall(body)) > MAX_REGEX:
        raise _invalid()
    for raw_field in _split_top(body, ","):
        item = raw_field.strip()
        if not item:
            raise _invalid()
        if item == _ELLIPSIS:
            ellipses.append(len(specs))
            specs.append(None)
            continue
        if _FIELD_NAME.fullmatch(item):
            specs.append(None)
            continue
        alternatives = [
            [_field_condition(part) for part in _split_top(alt, "&&")] for alt in _split_top(item, "||")
        ]
        specs.append(
            alternatives[0][0]
            if len(alternatives) == 1 and len(alternatives[0]) == 1
            else _any_of_all(alternatives)
        )
    if len(ellipses) > 1:
        raise _invalid()
    ell = ellipses[0] if ellipses else -1
    # Only the fields with conditions are checked, each by its position from the start (before
    # the ellipsis) or from the end (after it): negative indexes.
    checks: list[tuple[int, FieldTest]] = []
    for i, spec in enumerate(specs):
        if spec is not None:
            checks.append((i if ell < 0 or i < ell else i - len(specs), spec))
    wanted = len(specs) - (1 if ell >= 0 else 0)

    def match(message: str) -> bool:
        if '"' in message or "[" in message:
            fields = [f[1:-1] if f[0] in '"[' else f for f in _EVENT_FIELD.findall(message)]
        else:  # most events: no quoted or bracketed field, so a plain split (C speed) will do
            fields = message.split()
        if len(fields) != wanted and (ell < 0 or len(fields) < wanted):
            return False
        for index, test in checks:  # noqa: SIM110 (no generator per event)
            if not test(fields[index]):
                return False
        return True

    return match
