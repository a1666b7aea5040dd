"""CloudWatch Logs filter patterns, with the examples of AWS's "Filter pattern syntax" page."""

from __future__ import annotations

import json
import random
import re

import pytest

from lamina.domain.log_filters import (
    BRACE_MESSAGE,
    BRACKET_MESSAGE,
    InvalidFilterPattern,
    compile_pattern,
)
from lamina.domain.log_regex import MAX_BACKTRACK_STEPS, LinearRegex, backtracking_steps, parse
from lamina.errors import AwsError

# The unstructured events of AWS's page.
EVENTS = [
    "[ERROR 400] BAD REQUEST",
    "[ERROR 401] UNAUTHORIZED REQUEST",
    "[ERROR 419] MISSING ARGUMENTS",
    "[ERROR 420] INVALID ARGUMENTS",
    "[SUCCESS 200] AUTHORIZED REQUEST",
]

TERM_CASES = [
    ("", [0, 1, 2, 3, 4]),
    ("ERROR", [0, 1, 2, 3]),
    ("error", []),  # case-sensitive
    ("ERROR ARGUMENTS", [2, 3]),
    ("ERROR MISSING ARGUMENTS", [2]),
    ('"INVALID ARGUMENTS"', [3]),
    ('"ERROR 4"', []),  # a phrase matches whole words too: "4" is not "400"
    ("?ARGUMENTS ?REQUEST", [0, 1, 2, 3, 4]),
    ("?MISSING ?BAD", [0, 2]),
    ("ERROR -ARGUMENTS", [0, 1]),
    ("ERROR -ARGUMENTS -BAD", [1]),
    ("-ERROR", [4]),
    ("AUTHORIZED", [4]),  # whole words: UNAUTHORIZED does not count
    ("REQUEST -AUTHORIZED", [0, 1]),
    ("401", [1]),
    ("40", []),
    ("%AUTHORIZED%", [1, 4]),  # the regex page's example
    ("%ERROR 4[01]9?%", [0, 1, 2]),
    ("%^\\[SUCCESS%", [4]),
    ("%ERROR|SUCCESS%", [0, 1, 2, 3, 4]),
]


@pytest.mark.parametrize(("pattern", "expected"), TERM_CASES)
def test_unstructured(pattern: str, expected: list[int]) -> None:
    compiled = compile_pattern(pattern)
    assert [i for i, e in enumerate(EVENTS) if compiled.matches(e)] == expected


@pytest.mark.parametrize(
    ("pattern", "message", "expected"),
    [
        ("ERROR", "ERROR", True),
        ("ERROR", "ERROR: disk full", True),
        ("ERROR", "ERRORS happen", False),
        ("ERROR", "noERROR then ERROR.", True),  # a later occurrence on word boundaries
        ("Task", "2024 Task timed out after 3.00 seconds", True),
        ('"timed out"', "Task timed out after 3.00 seconds", True),
        ('"3.00 seconds"', "Task timed out after 3.00 seconds", True),
        ('"{"', "payload { x }", True),
        ("RequestId:", "START RequestId: 1 Version: $LATEST", True),
        ("user_id", "user_id=3", True),
        ("ERROR", "", False),
        ("", "", True),
        ('-"timed out" Task', "Task timed out", False),
        ('-"timed out" Task', "Task done", True),
        ("ERROR ?disk ?net", "ERROR net down", True),
        ("ERROR ?disk ?net", "ERROR cpu hot", False),
        ("ERROR ?disk ?net", "WARN disk full", False),
        ("ERROR  WARN", "WARN then ERROR", True),
        ("\tERROR\n", "an ERROR", True),
        ("  ", "anything", True),
    ],
)
def test_term_boundaries(pattern: str, message: str, expected: bool) -> None:
    assert compile_pattern(pattern).matches(message) is expected


# The JSON event of AWS's page (JSON filter patterns section).
JSON_EVENT = json.dumps(
    {
        "eventType": "UpdateTrail",
        "sourceIPAddress": "123.123.123.123",
        "arrayKey": ["value", "another value"],
        "objectList": [{"name": "a", "id": 1}, {"name": "b", "id": 2}],
        "SomeObject": None,
        "ThisFlag": True,
        "latency": 50,
        "cpu": 0.75,
        "user": {"id": 1, "email": "John.Doe@example.com"},
        "users": [{"id": 2, "email": "John.Doe@example.com"}],
        "actions": ["GET", "PUT", "DELETE"],
        "coordinates": [[0, 1], [2, 3]],
    }
)

JSON_CASES = [
    ('{ $.eventType = "UpdateTrail" }', True),
    ("{ $.eventType = UpdateTrail }", True),
    ('{ $.eventType = "Update*" }', True),
    ('{ $.eventType = "*Trail" }', True),
    ('{ $.eventType = "updatetrail" }', False),
    ('{ $.eventType != "UpdateTrail" }', False),
    ("{ $.sourceIPAddress != 123.123.* }", False),
    ("{ $.sourceIPAddress = 123.123.* }", True),
    ('{ $.arrayKey[0] = "value" }', True),
    ('{ $.arrayKey[1] = "another value" }', True),
    ('{ $.arrayKey[2] = "value" }', False),
    ("{ $.objectList[1].id = 2 }", True),
    ("{ $.objectList[1].id > 1 }", True),
    ("{ $.objectList[1].id >= 3 }", False),
    ("{ $.latency = 50 }", True),
    ("{ $.latency != 50 }", False),
    ("{ $.latency < 100 }", True),
    ("{ $.latency <= 50 }", True),
    ("{ $.latency > 50 }", False),
    ("{ $.cpu >= 0.5 }", True),
    ("{ $.cpu < 1e0 }", True),
    ("{ $.SomeObject IS NULL }", True),
    ("{ $.eventType IS NULL }", False),
    ("{ $.Nothing IS NULL }", False),
    ("{ $.SomeOtherObject NOT EXISTS }", True),
    ("{ $.SomeObject NOT EXISTS }", False),
    ("{ $.ThisFlag IS TRUE }", True),
    ("{ $.ThisFlag IS FALSE }", False),
    ("{ $.eventType IS TRUE }", False),
    ('{ $.missing = "x" }', False),
    ('{ $.missing != "x" }', False),
    ('{ ($.user.id = 1) && ($.users[0].email = "John.Doe@example.com") }', True),
    ('{ ($.user.id = 2 && $.users[0].email = "nonmatch") || $.actions[2] = "GET" }', False),
    ('{ ($.user.id = 2 && $.users[0].email = "nonmatch") || $.actions[0] = "GET" }', True),
    # && binds tighter than ||, as on AWS's page.
    (
        '{ $.user.email = "John.Doe@example.com" || $.coordinates[0][1] = nonmatch'
        " && $.actions[2] = nomatch }",
        True,
    ),
    (
        '{ ($.user.email = "John.Doe@example.com" || $.coordinates[0][1] = nonmatch)'
        " && $.actions[2] = nomatch }",
        False,
    ),
    ("{ $.coordinates[1][0] = 2 }", True),
    ("{ $.eventType = %Update[A-Z]%}", True),
    ("{ $.eventType = %^Trail% }", False),
    ("{$.latency=50&&$.ThisFlag IS TRUE}", True),
]


@pytest.mark.parametrize(("pattern", "expected"), JSON_CASES)
def test_json(pattern: str, expected: bool) -> None:
    assert compile_pattern(pattern).matches(JSON_EVENT) is expected


@pytest.mark.parametrize(
    "message",
    ["", "UpdateTrail", "[1, 2]", '{"eventType": "UpdateTrail"', '"{}"', "{not json}"],
)
def test_json_pattern_skips_events_that_are_not_json_objects(message: str) -> None:
    assert not compile_pattern('{ $.eventType = "UpdateTrail" }').matches(message)


def test_json_event_with_leading_blanks() -> None:
    assert compile_pattern("{ $.a = 1 }").matches('  {"a": 1}')


# The space-delimited event of AWS's page.
ACCESS_LOG = '127.0.0.1 - frank [10/Oct/2000:13:25:15 -0700] "GET /apache_pb.gif HTTP/1.0" 404 1534'

DELIMITED_CASES = [
    ("[ip, user, username, timestamp, request, status_code, bytes]", True),
    ('[ip, user, username, timestamp, request = "*gif*", status_code = 4*, bytes]', True),
    ('[ip, user, username, timestamp, request = "*html*", status_code = 4*, bytes]', False),
    ("[ip, user, ..., status_code = 4*, bytes]", True),
    ("[..., status_code = 4*, bytes]", True),
    ("[ip, ...]", True),
    ("[ip = 127.0.0.1, ...]", True),
    ("[ip, user, username = frank, ...]", True),
    ("[ip, user, username != frank, ...]", False),
    ("[..., status_code = 404, bytes > 1000]", True),
    ("[..., status_code = 404, bytes > 2000]", False),
    ("[..., status_code >= 500, bytes]", False),
    ("[..., status_code = 4* || status_code = 5*, bytes]", True),
    ("[..., status_code = 5* || status_code = 3*, bytes]", False),
    ("[..., status_code >= 400 && status_code < 500, bytes]", True),
    ("[ip, user, username, timestamp, request, status_code]", False),  # field count
    ("[ip, user, username = %fr.nk%, ...]", True),
    ("[ip, user, username, timestamp = *Oct*, ...]", True),
]


@pytest.mark.parametrize(("pattern", "expected"), DELIMITED_CASES)
def test_space_delimited(pattern: str, expected: bool) -> None:
    assert compile_pattern(pattern).matches(ACCESS_LOG) is expected


INVALID_CASES = [
    ("{ $.a = 1", BRACE_MESSAGE),
    ("[a, b", BRACKET_MESSAGE),
    ('""', "Invalid filter pattern: Invalid character(s) in term '\"\"'"),
    ('ERROR ""', "Invalid filter pattern: Invalid character(s) in term '\"\"'"),
    ('"unterminated', "Invalid filter pattern: Invalid character(s) in term '\"unterminated'"),
    ("email@domain.com", "Invalid filter pattern: Invalid character(s) in term 'email@domain.com'"),
    ("?", "Invalid filter pattern: Invalid character(s) in term '?'"),
    ("a=b", "Invalid filter pattern: Invalid character(s) in term 'a=b'"),
    ("{}", "Invalid filter pattern"),
    ("{ $.a }", "Invalid filter pattern"),
    ("{ $.a = }", "Invalid filter pattern"),
    ('{ $.a < "x" }', "Invalid filter pattern"),
    ("{ $.a > abc }", "Invalid filter pattern"),
    ("{ $.a = 1 && }", "Invalid filter pattern"),
    ("{ ($.a = 1 }", "Invalid filter pattern"),
    ("{ $.a = 1) }", "Invalid filter pattern"),
    ("{ $.a IS MAYBE }", "Invalid filter pattern"),
    ("{ $.a NOT THERE }", "Invalid filter pattern"),
    ("{ a = 1 }", "Invalid filter pattern"),
    ("{ $.a = %(x)% }", "Invalid filter pattern"),
    ("%(ERROR)%", "Invalid filter pattern"),
    ("%something!%", "Invalid filter pattern"),
    ("%é%", "Invalid filter pattern"),
    ("%[%", "Invalid filter pattern"),
    ("[]", "Invalid filter pattern"),
    ("[a,,b]", "Invalid filter pattern"),
    ("[..., a, ...]", "Invalid filter pattern"),
    ("[a = ]", "Invalid filter pattern"),
    ('[a = "x]', "Invalid filter pattern"),
]


@pytest.mark.parametrize(("pattern", "message"), INVALID_CASES)
def test_invalid_patterns(pattern: str, message: str) -> None:
    with pytest.raises(InvalidFilterPattern) as info:
        compile_pattern(pattern)
    error = info.value
    assert isinstance(error, AwsError)
    assert (error.code, error.status, error.message) == ("InvalidParameterException", 400, message)


def test_compiled_pattern_keeps_its_text_and_kind() -> None:
    assert compile_pattern("").kind == "all"
    assert compile_pattern("ERROR").kind == "terms"
    assert compile_pattern("{ $.a = 1 }").kind == "json"
    assert compile_pattern("[a, ...]").kind == "delimited"
    assert compile_pattern("%a%").kind == "regex"
    assert compile_pattern(" ERROR ").text == " ERROR "


@pytest.mark.parametrize(
    ("pattern", "message", "expected"),
    [
        ("[a, b = x]", "w x", True),
        ("[a, b = x]", "w  x", True),  # runs of blanks are one separator
        ("[a, b = x]", 'w "x"', True),
        ("[a, b = 1]", "w 1.0", True),
        ("[a, b = 1]", "w one", False),
        ("[a, b > 1]", "w 2e1", True),
        ("[a, b = *]", "w anything", True),
        ("[a, b != x]", "w y", True),
        ("[a, b]", "", False),
        ("[...]", "", True),
    ],
)
def test_space_delimited_fields(pattern: str, message: str, expected: bool) -> None:
    assert compile_pattern(pattern).matches(message) is expected


@pytest.mark.parametrize(
    ("pattern", "message", "expected"),
    [
        ('{ $.a = "x y" }', '{"a": "x y"}', True),
        ('{ $.a = "say \\"hi\\"" }', '{"a": "say \\"hi\\""}', True),
        ("{ $.a = 1 }", '{"a": "1"}', False),  # a number compares only with numbers
        ('{ $.a = "1" }', '{"a": 1}', True),
        ("{ $.a = true }", '{"a": true}', True),
        ("{ $.a IS TRUE }", '{"a": "true"}', False),
        ("{ $.a.b IS NULL }", '{"a": null}', False),
        ("{ $.a.b NOT EXISTS }", '{"a": null}', True),
        ("{ $.a = * }", '{"a": "anything"}', True),
        ("{ $.a = * }", '{"b": 1}', False),
        ("{ $.a-b = 1 }", '{"a-b": 1}', True),
        ("{ $.a = 1 }", '{"a": 1, "a": 2}', False),  # the last duplicate key wins, as in JSON parsers
    ],
)
def test_json_values(pattern: str, message: str, expected: bool) -> None:
    assert compile_pattern(pattern).matches(message) is expected


def test_json_pattern_survives_an_event_nested_past_the_decoder() -> None:
    deep = '{"a":' * 5000 + "1" + "}" * 5000
    assert not compile_pattern("{ $.a = 1 }").matches(deep)


# -- hostile patterns: answered, never a hang or a crash ----------------------------------------------


def test_wildcards_match_in_linear_time() -> None:
    # As a regex of ``.*`` runs this backtracks without bound over a long event; matched piece by
    # piece it answers at once (the test would not finish otherwise).
    pattern = compile_pattern('{ $.x = "*a*a*a*a*a*a*a*a*c" }')
    assert not pattern.matches(json.dumps({"x": "a" * 20_000}))
    assert pattern.matches(json.dumps({"x": "a" * 20_000 + "c"}))
    assert compile_pattern('{ $.x = "ab*cd*ef" }').matches('{"x": "abXcdYef"}')
    assert not compile_pattern('{ $.x = "ab*ba" }').matches('{"x": "aba"}')  # pieces may not overlap


@pytest.mark.parametrize(
    "pattern",
    ["{ " + "(" * 400 + "$.a = 1" + ")" * 400 + " }", '{ $.a = "\\x" }'],
    ids=["nested-past-the-limit", "bad-string-escape"],
)
def test_hostile_json_patterns_are_invalid(pattern: str) -> None:
    with pytest.raises(InvalidFilterPattern):
        compile_pattern(pattern)


# -- regex: AWS's subset, matched by a linear-time automaton -------------------------------------------


def test_catastrophic_regexes_are_answered() -> None:
    # Python's backtracking ``re`` takes 2**30 steps on the first and about n**5 on the second
    # (minutes, hours): the automaton answers both at once, so this test finishes.
    exponential = compile_pattern("%" + "a?" * 30 + "a" * 30 + "%")
    assert exponential.matches("a" * 30)
    assert not exponential.matches("a" * 29)
    polynomial = compile_pattern("%a*a*a*a*a*b%")
    assert not polynomial.matches("a" * 100_000)
    assert polynomial.matches("a" * 100_000 + "b")
    assert not compile_pattern("%.*.*.*=.*.*x%").matches("=" * 50_000)


@pytest.mark.parametrize(
    "pattern",
    [
        "%(a+)+b%",  # nested quantifiers need parentheses: refused by AWS's syntax
        "%a**%",
        "%a*+%",  # possessive: not in the subset
        "%*a%",
        "%^*%",
        "%a{3,2}%",
        "%[z-a]%",
        "%a\\%",
        "%\\bword%",  # escapes lamina does not run
        "%\\1%",
        "%a{5000}%",  # more automaton than a pattern of 1,024 characters needs
        "{ $.a = %x% || $.b = %y% || $.c = %z% }",  # at most 2 regex per pattern
        "[a = %x%, b = %y%, c = %z%]",
    ],
)
def test_regexes_outside_the_subset_are_invalid(pattern: str) -> None:
    with pytest.raises(InvalidFilterPattern) as info:
        compile_pattern(pattern)
    assert info.value.message == "Invalid filter pattern"


def test_two_regexes_in_a_pattern_are_allowed() -> None:
    pattern = compile_pattern("{ $.a = %^x% && $.b = %y$% }")
    assert pattern.matches('{"a": "xa", "b": "ay"}')
    assert not pattern.matches('{"a": "ax", "b": "ay"}')


def _random_regex(rng: random.Random) -> str:
    atoms = ["a", "b", ".", "[ab]", "[^a]", "\\d", "\\s", "\\w", "x", "^", "$", "[a-c]", "\\.", "1"]
    quantifiers = ["", "", "", "*", "+", "?", "{2}", "{1,3}", "{,2}", "{2,}", "*?"]
    parts = []
    for _ in range(rng.randint(1, 5)):
        atom = rng.choice(atoms)
        parts.append(atom + ("" if atom in "^$" else rng.choice(quantifiers)))
        if rng.random() < 0.1:
            parts.append("|")
    return "".join(parts)


def test_regex_answers_as_python_re_does() -> None:
    # Python's ``re`` is the reference for the subset's meaning (on short texts it is quick).
    rng = random.Random(17)
    checked = 0
    while checked < 400:
        body = _random_regex(rng)
        try:
            reference = re.compile(body)
        except re.error:
            continue
        pattern = compile_pattern(f"%{body}%")
        automaton = LinearRegex(body)  # the automaton even where ``re`` is safe and used
        checked += 1
        for _ in range(50):
            text = "".join(rng.choice("ab x1.\n") for _ in range(rng.randint(0, 10)))
            expected = reference.search(text) is not None
            assert pattern.matches(text) is expected, (body, text)
            assert automaton.search_automaton(text) is expected, (body, text)


def test_only_patterns_with_bounded_backtracking_run_on_python_re() -> None:
    assert backtracking_steps(parse("[A-Z]{5}[0-9]")) == 6
    assert backtracking_steps(parse("colou?r|x")) == 2 * 6 + 1
    assert backtracking_steps(parse("a*b")) is None  # unbounded: the automaton
    steps = backtracking_steps(parse("a?" * 30 + "a" * 30))
    assert steps is not None and steps > MAX_BACKTRACK_STEPS


@pytest.mark.parametrize(
    ("pattern", "required"),
    [
        ("", None),
        ("ERROR", (("ERROR",),)),
        ('ERROR "timed out" -Retry', (("ERROR", "timed out"),)),
        ("?ERROR ?WARN", (("ERROR",), ("WARN",))),
        ("Task ?ERROR ?WARN", (("Task", "ERROR"), ("Task", "WARN"))),
        ("-ERROR", None),
        ("%ERR[O]R%", (("ERROR",),)),  # a one-character class is that character
        ("%ERR[OX]R%", (("ERR",),)),
        ("%colou?r%", (("colo",),)),
        ("%ab{3}c|xyz%", (("abbbc",), ("xyz",))),
        ("%a|.%", None),
        ("{ $.a = 1 }", None),
        ("[a, b = x]", None),
    ],
)
def test_required_texts(pattern: str, required: tuple[tuple[str, ...], ...] | None) -> None:
    assert compile_pattern(pattern).required == required
