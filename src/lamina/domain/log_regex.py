"""CloudWatch Logs' regex subset (``%...%`` filter patterns), matched in time linear in the event.

AWS's "Supported regular expressions (regex) syntax" (docs.aws.amazon.com/AmazonCloudWatch/latest/
logs/regex-expressions.html) allows only alphanumerics, the symbols ``: _ # = @ / ; , -`` and the
operators ``^ $ ? [ ] { } | \\ * + .``; parentheses (sub-patterns) and multi-byte characters are
refused. Without groups a pattern is a list of alternatives, each a sequence of single-character
atoms (a literal, ``.``, a ``[...]`` class, ``\\d \\w \\s`` and their negations) with an optional
quantifier (``? * + {m} {m,} {m,n}``), and the anchors ``^`` and ``$``.

Python's backtracking ``re`` can take exponential (``a?a?a?...aaa``) or polynomial (``a*a*a*b``)
time on such patterns over one 256 KB event, holding a server thread. So lamina compiles the subset
to a Thompson NFA and runs it as a lazily built DFA: every character of the event costs one cached
dictionary step (or, the first time a state meets a character, one closure over the NFA), so a
match costs at most ``len(event) x NFA size`` steps, whatever the pattern. The NFA is capped at
:data:`MAX_NODES` nodes (``{m,n}`` expands to copies of its atom) and the DFA cache at
:data:`MAX_DFA_STATES` states (then dropped and rebuilt), so memory is bounded too.

A pattern whose backtracking is bounded by a small constant per position (no ``*``, ``+`` or
``{m,}``, and few choices: :data:`MAX_BACKTRACK_STEPS`, e.g. ``%\\d{1,3}\\.\\d{1,3}%`` or
``%[A-Z]{5}%``) runs on Python's ``re`` instead, which is then linear too and about four times
faster than the automaton's Python loop.

Semantics are Python's for the same pattern (the judge before this module): ``.`` matches any
character but a newline, ``$`` matches at the end or before a final newline, ``\\d``/``\\w``/``\\s``
are Unicode-aware, matching is case-sensitive. Escapes lamina does not support (``\\b``, ``\\B``,
``\\A``, ``\\Z``, back references, ``\\x..``) are refused.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from lamina.errors import LaminaError

MAX_NODES: Final = 4096  # NFA nodes after expanding ``{m,n}``: more is refused
MAX_DFA_STATES: Final = 2048  # cached DFA states per pattern before the cache is rebuilt
MAX_EDGES: Final = 200_000  # cached transitions (state, character) before the same
# Python's ``re`` (C speed) runs a pattern whose backtracking is bounded by a small constant per
# position: no unbounded quantifier, and per alternative (the product of its quantifiers' choices)
# x (its longest match) summed over the alternatives at most this. Every other pattern runs on
# the automaton. Either way a search costs at most a constant times the event's length.
MAX_BACKTRACK_STEPS: Final = 1024


class RegexError(LaminaError):
    """The text is not in the supported subset (the caller answers "Invalid filter pattern")."""


CharTest = Callable[[str], bool]

_QUANT = re.compile(r"\{(\d*)(,?)(\d*)\}")
_CONTROL = {"n": "\n", "t": "\t", "r": "\r", "f": "\f", "v": "\v"}


def _is_digit(c: str) -> bool:
    return c.isdecimal()


def _is_word(c: str) -> bool:
    return c.isalnum() or c == "_"


def _is_space(c: str) -> bool:
    return c.isspace()


_CLASSES: dict[str, CharTest] = {
    "d": _is_digit,
    "D": lambda c: not _is_digit(c),
    "w": _is_word,
    "W": lambda c: not _is_word(c),
    "s": _is_space,
    "S": lambda c: not _is_space(c),
}


@dataclass(frozen=True)
class _Atom:
    """One character test; ``literal`` is its character when it matches exactly one."""

    test: CharTest
    literal: str | None


@dataclass(frozen=True)
class _Item:
    """An atom (or an anchor: ``kind`` "^" or "$") repeated ``low`` to ``high`` (None: no bound)."""

    kind: str  # "atom", "^" or "$"
    atom: _Atom | None
    low: int
    high: int | None


def _escape(body: str, i: int) -> tuple[str | CharTest, int]:
    """The escape at ``body[i] == '\\'``: a character or a class test, and the next index."""
    if i + 1 >= len(body):
        raise RegexError("a trailing backslash")
    c = body[i + 1]
    if c in _CLASSES:
        return _CLASSES[c], i + 2
    if c in _CONTROL:
        return _CONTROL[c], i + 2
    if c.isalnum():  # \b \B \A \Z \1 \x41 ...: not in the subset lamina runs
        raise RegexError(f"unsupported escape \\{c}")
    return c, i + 2


def _range(lo: int, hi: int) -> CharTest:
    return lambda ch: lo <= ord(ch) <= hi


def _char_class(body: str, i: int) -> tuple[_Atom, int]:
    """The ``[...]`` starting at ``body[i]``: Python's rules (a leading ``]`` is literal)."""
    i += 1
    negated = i < len(body) and body[i] == "^"
    if negated:
        i += 1
    chars: set[str] = set()
    tests: list[CharTest] = []
    first = True
    while True:
        if i >= len(body):
            raise RegexError("an unterminated character class")
        c = body[i]
        if c == "]" and not first:
            i += 1
            break
        first = False
        item: str | CharTest
        if c == "\\":
            item, i = _escape(body, i)
        else:
            item, i = c, i + 1
        if i + 1 < len(body) and body[i] == "-" and body[i + 1] != "]":
            if body[i + 1] == "\\":
                end, after = _escape(body, i + 1)
            else:
                end, after = body[i + 1], i + 2
            if not isinstance(item, str) or not isinstance(end, str) or ord(item) > ord(end):
                raise RegexError("a bad character range")
            tests.append(_range(ord(item), ord(end)))
            i = after
        elif isinstance(item, str):
            chars.add(item)
        else:
            tests.append(item)
    frozen = frozenset(chars)

    def test(ch: str) -> bool:
        hit = ch in frozen or any(t(ch) for t in tests)
        return hit != negated

    literal = next(iter(frozen)) if len(frozen) == 1 and not tests and not negated else None
    return _Atom(test, literal), i


def _quantifier(body: str, i: int) -> tuple[int, int | None, int] | None:
    """The quantifier at ``body[i]`` as (low, high, next index), or None when there is none."""
    if i >= len(body):
        return None
    c = body[i]
    if c == "*":
        return 0, None, i + 1
    if c == "+":
        return 1, None, i + 1
    if c == "?":
        return 0, 1, i + 1
    m = _QUANT.match(body, i) if c == "{" else None
    if m is None or (not m.group(1) and not m.group(2)):  # "{" or "{}": a literal brace
        return None
    low = int(m.group(1)) if m.group(1) else 0
    high: int | None = low
    if m.group(2):
        high = int(m.group(3)) if m.group(3) else None
    if high is not None and high < low:
        raise RegexError("min repeat greater than max repeat")
    if low > MAX_NODES or (high is not None and high > MAX_NODES):
        raise RegexError("a repeat count too large")
    return low, high, m.end()


def parse(body: str) -> list[list[_Item]]:
    """The alternatives of ``body``, each a sequence of items; :class:`RegexError` if unsupported."""
    alternatives: list[list[_Item]] = [[]]
    i = 0
    while i < len(body):
        c = body[i]
        if c == "|":
            alternatives.append([])
            i += 1
            continue
        if c in "()":
            raise RegexError("parentheses are not supported")
        if _quantifier(body, i) is not None:
            raise RegexError("nothing to repeat")
        kind = "atom"
        atom: _Atom | None = None
        if c in "^$":
            kind, i = c, i + 1
        elif c == ".":
            atom, i = _Atom(lambda ch: ch != "\n", None), i + 1
        elif c == "[":
            atom, i = _char_class(body, i)
        elif c == "\\":
            item, i = _escape(body, i)
            atom = _Atom(item, None) if not isinstance(item, str) else _literal(item)
        else:
            atom, i = _literal(c), i + 1
        low: int = 1
        high: int | None = 1
        quant = _quantifier(body, i)
        if quant is not None:
            if kind != "atom":
                raise RegexError("nothing to repeat")
            low, high, i = quant
            if i < len(body) and body[i] == "?":  # lazy: the same answer for a yes/no search
                i += 1
            if i < len(body) and (body[i] == "+" or _quantifier(body, i) is not None):
                raise RegexError("multiple repeat")  # (``*+`` possessive included: not in the subset)
        alternatives[-1].append(_Item(kind, atom, low, high))
    return alternatives


def _literal(c: str) -> _Atom:
    return _Atom(lambda ch: ch == c, c)


def backtracking_steps(alternatives: list[list[_Item]]) -> int | None:
    """An upper bound on the steps a backtracking matcher takes from one position (None: none,
    an unbounded quantifier makes it depend on the text)."""
    total = 0
    for seq in alternatives:
        choices = 1
        longest = 0
        for item in seq:
            if item.high is None:
                return None
            choices *= item.high - item.low + 1
            longest += item.high
        total += choices * max(longest, 1)
    return total


def required_literals(alternatives: list[list[_Item]]) -> tuple[str, ...] | None:
    """For each alternative, the longest run of literal text every match of it contains; None when
    some alternative has none (then nothing can be ruled out by a substring test)."""
    out: list[str] = []
    for seq in alternatives:
        best = run = ""
        for item in seq:
            if item.kind == "atom" and item.atom is not None and item.atom.literal is not None and item.low:
                run += item.atom.literal * item.low
                if len(run) > len(best):
                    best = run
                if item.high != item.low:
                    run = ""
            else:
                run = ""
        if not best:
            return None
        out.append(best)
    return tuple(dict.fromkeys(out))


# --- the automaton --------------------------------------------------------------------------------

# NFA node kinds.
_SET, _SPLIT, _BOL, _EOL, _MATCH = range(5)


def _never(ch: str) -> bool:
    return False


class _Nfa:
    def __init__(self) -> None:
        self.kind: list[int] = []
        self.test: list[CharTest] = []
        self.out: list[int] = []
        self.out2: list[int] = []

    def add(self, kind: int, test: CharTest = _never, out: int = -1, out2: int = -1) -> int:
        if len(self.kind) >= MAX_NODES:
            raise RegexError("the pattern is too large")
        self.kind.append(kind)
        self.test.append(test)
        self.out.append(out)
        self.out2.append(out2)
        return len(self.kind) - 1


def _build(alternatives: list[list[_Item]]) -> tuple[_Nfa, int]:
    nfa = _Nfa()
    match = nfa.add(_MATCH)
    entries: list[int] = []
    for seq in alternatives:
        node = match
        for item in reversed(seq):
            if item.kind == "^":
                node = nfa.add(_BOL, out=node)
                continue
            if item.kind == "$":
                node = nfa.add(_EOL, out=node)
                continue
            assert item.atom is not None
            test = item.atom.test
            nxt = node
            if item.high is None:  # x* after the mandatory copies: a loop
                loop = nfa.add(_SPLIT, out2=nxt)
                nfa.out[loop] = nfa.add(_SET, test, out=loop)
                node = loop
            else:
                for _ in range(item.high - item.low):  # optional copies: x? x? ...
                    node = nfa.add(_SPLIT, out=nfa.add(_SET, test, out=node), out2=nxt)
            for _ in range(item.low):
                node = nfa.add(_SET, test, out=node)
        entries.append(node)
    start = entries[0]
    for entry in entries[1:]:
        start = nfa.add(_SPLIT, out=start, out2=entry)
    return nfa, start


class _State:
    """A DFA state: the NFA character nodes alive, and whether a match is reached (now, or if the
    event ends here)."""

    __slots__ = ("accept", "eol_accept", "eols", "sets", "trans")

    def __init__(self, sets: frozenset[int], eols: frozenset[int], accept: bool, eol_accept: bool) -> None:
        self.sets = sets
        self.eols = eols
        self.accept = accept
        self.eol_accept = eol_accept
        self.trans: dict[str, _State] = {}


class LinearRegex:
    """A compiled pattern of the subset; :meth:`search` says whether it occurs in a text."""

    def __init__(self, body: str) -> None:
        alternatives = parse(body)
        self.required = required_literals(alternatives)
        steps = backtracking_steps(alternatives)
        # The same pattern in Python's ``re`` is the same meaning (see the module's docstring).
        self._fast = re.compile(body) if steps is not None and steps <= MAX_BACKTRACK_STEPS else None
        self._nfa, self._start = _build(alternatives)
        self._states: dict[tuple[frozenset[int], frozenset[int], bool, bool], _State] = {}
        self._reset()

    def _reset(self) -> None:
        for state in self._states.values():
            state.trans.clear()
        self._states = {}
        self._edges = 0
        self._initial = self._closure([self._start], at_start=True)
        self._inject = self._closure([self._start], at_start=False)

    def _walk(self, nodes: list[int], at_start: bool, at_end: bool) -> tuple[set[int], set[int], bool]:
        nfa = self._nfa
        seen: set[int] = set()
        sets: set[int] = set()
        eols: set[int] = set()
        accept = False
        stack = list(nodes)
        while stack:
            n = stack.pop()
            if n in seen:
                continue
            seen.add(n)
            kind = nfa.kind[n]
            if kind == _SET:
                sets.add(n)
            elif kind == _SPLIT:
                stack.append(nfa.out[n])
                stack.append(nfa.out2[n])
            elif kind == _BOL:
                if at_start:
                    stack.append(nfa.out[n])
            elif kind == _EOL:
                eols.add(n)
                if at_end:
                    stack.append(nfa.out[n])
            else:
                accept = True
        return sets, eols, accept

    def _closure(self, nodes: list[int], at_start: bool) -> _State:
        sets, eols, accept = self._walk(nodes, at_start, False)
        key = (frozenset(sets), frozenset(eols), accept, at_start)
        state = self._states.get(key)
        if state is not None:
            return state
        eol_accept = accept or (bool(eols) and self._walk(list(eols), at_start, True)[2])
        state = _State(key[0], key[1], accept, eol_accept)
        if len(self._states) >= MAX_DFA_STATES:  # bounded memory: start the cache again
            self._reset()
        self._states[key] = state
        return state

    def _step(self, state: _State, ch: str) -> _State:
        nfa = self._nfa
        nxt = [nfa.out[n] for n in state.sets if nfa.test[n](ch)]
        nxt.extend(self._inject.sets)  # a match may also start at the next character
        nxt.extend(self._inject.eols)
        target = self._closure(nxt, at_start=False)
        self._edges += 1
        if self._edges > MAX_EDGES:  # many distinct characters: bounded memory again
            self._reset()
        state.trans[ch] = target
        return target

    def _final_newline(self, state: _State, at_start: bool) -> bool:
        """The last character is a newline and some ``$`` is pending: Python's ``$`` also holds
        before a final newline, so follow it there, then consume the newline, exactly (once per
        event, uncached)."""
        nfa = self._nfa
        sets, _, accept = self._walk(list(state.eols), at_start, True)
        if accept:
            return True
        live = sets | state.sets
        nxt = [nfa.out[n] for n in live if nfa.test[n]("\n")]
        nxt.append(self._start)
        return self._walk(nxt, False, True)[2]

    def search(self, text: str) -> bool:
        """Whether the pattern matches somewhere in ``text``."""
        if self._fast is not None:
            return self._fast.search(text) is not None
        return self.search_automaton(text)

    def search_automaton(self, text: str) -> bool:
        """:meth:`search` on the automaton, whatever the pattern (tests compare the two paths)."""
        state = self._initial
        if state.accept:
            return True
        last = len(text) - 1
        for i, ch in enumerate(text):
            if i == last and ch == "\n" and state.eols:
                return self._final_newline(state, i == 0)
            nxt = state.trans.get(ch)
            state = nxt if nxt is not None else self._step(state, ch)
            if state.accept:
                return True
        return state.eol_accept
