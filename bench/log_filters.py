"""What a compiled filter pattern costs per log event, beside a bare ``in`` test.

FilterLogEvents runs one pattern over up to a million events, so the cost per event is what counts.
No server: the patterns are compiled once by ``lamina.domain.log_filters.compile_pattern`` and run
over ``--events`` synthetic Lambda-like log lines (seeded; 1 in 1,000 carries ``ERROR``).

Printed per pattern: ns per event, and the ratio over the baseline measured in the same run, a
plain ``"ERROR" in message`` over the same events (what a term costs at the least).
**Target**: the term pattern ``ERROR`` costs under 1 µs per event (nearly all of them non-matching).
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from lamina.domain.log_filters import compile_pattern  # noqa: E402

TARGET_NS = 1000.0
PATTERNS = [
    "ERROR",
    "ERROR -Retry",
    "?ERROR ?WARN",
    '"Task timed out"',
    '{ $.level = "ERROR" }',
    "[ts, id, level = ERROR, ...]",
    "%ERR[O]R%",
    "%[A-Z]{5}[0-9]%",  # no literal text to test first: the automaton reads every character
]


def events(count: int, seed: int = 17) -> list[str]:
    """Lines like a Lambda function's: START/END/REPORT, INFO lines, a few JSON and ERROR ones."""
    rng = random.Random(seed)
    out = []
    for i in range(count):
        rid = f"{rng.getrandbits(64):016x}-{i:08d}"
        roll = i % 1000
        if roll == 0:
            out.append(f"2026-12-06T17:00:00.000Z {rid} ERROR Something failed: code {rng.randint(1, 99)}")
        elif roll % 100 == 1:
            out.append(f'{{"level": "INFO", "requestId": "{rid}", "latency": {rng.randint(1, 900)}}}')
        elif roll % 10 == 2:
            out.append(f"REPORT RequestId: {rid}\tDuration: {rng.random() * 100:.2f} ms\tMemory Size: 128 MB")
        else:
            out.append(f"2026-12-06T17:00:00.000Z {rid} INFO handled item {rng.randint(1, 10**6)} in region")
    return out


def per_event_ns(test: Callable[[str], bool], messages: list[str]) -> tuple[float, int]:
    t0 = time.perf_counter()
    hits = 0
    for message in messages:
        if test(message):
            hits += 1
    return (time.perf_counter() - t0) * 1e9 / len(messages), hits


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--profile", action="store_true", help="accepted for run.py; nothing to profile")
    args = parser.parse_args(argv)
    messages = events(args.events)
    print(f"{len(messages):,} events, {sum(map(len, messages)) / len(messages):.0f} characters on average")

    def baseline(message: str) -> bool:
        return "ERROR" in message

    base, base_hits = per_event_ns(baseline, messages)
    label = 'baseline: "ERROR" in message'
    print(f"{label:40} {base:8.1f} ns/event  {base_hits:>8,} hits")
    term_ns = 0.0
    for text in PATTERNS:
        pattern = compile_pattern(text)
        cost, hits = per_event_ns(pattern.matches, messages)
        if text == "ERROR":
            term_ns = cost
        print(f"{text:40} {cost:8.1f} ns/event  {hits:>8,} hits  {cost / base:5.1f}x baseline")
    met = term_ns < TARGET_NS
    print(
        f"target: term pattern under {TARGET_NS:.0f} ns/event: {term_ns:.0f} ns: {'MET' if met else 'MISSED'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
