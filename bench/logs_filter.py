"""FilterLogEvents over a million events in one log group, through the real server with boto3.

- **Input**: ``--events`` (1,000,000) Lambda-like lines (``bench/log_filters.py``'s generator,
  seeded; 1 in 1,000 carries the term ``ERROR``) in one group of 10 streams, loaded straight into a
  fresh server's database with :class:`lamina.store.logs.LogGroupStore` (batches of 10,000, untimed),
  timestamps spread over the last hour.
- **Figure**: wall time of ``filter_log_events(logGroupName=..., filterPattern="ERROR")``, the first
  page (the default limit, 10,000 events), p50 over ``--runs`` (5) calls after one untimed call.
  The answer is checked: every ERROR event of the group, in order, and no nextToken.
- **Baselines, same run**: (1) the old path, in-process without HTTP: pages of 1,000 events read
  from the store and every event judged by the compiled pattern in Python (what FilterLogEvents did
  before the store learned to skip, in SQL, events without the pattern's required texts), timed
  over the whole group; (2) the floor: one ``SELECT count(*)`` of the group's rows whose message
  contains ``ERROR`` (``instr``) on the same database: what a scan of the table costs SQLite alone.
- **Target** (issue 17): p50 < 1 s for the first page.

Run: ``.venv/bin/python bench/logs_filter.py [--events N] [--runs N] [--profile]``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import LaminaServer, client, verdict, workdir  # noqa: E402
from log_filters import events as make_events  # noqa: E402

from lamina.domain.log_filters import compile_pattern  # noqa: E402
from lamina.store import Database  # noqa: E402
from lamina.store.logs import LogGroupStore, Scope  # noqa: E402

TARGET_S = 1.0
GROUP = "/bench/logs-filter"
STREAMS = 10
BATCH = 10_000
ACCOUNT = "000000000000"  # the "test" credentials' account (tests/functional/lamina_server.py)
REGION = "us-east-1"


def load(db: Database, messages: list[str], now_ms: int) -> None:
    """The events into GROUP, round-robin over its streams, in batches (timestamps ascending)."""
    store = LogGroupStore(db)
    scope = Scope(ACCOUNT, REGION)
    start = now_ms - 3_600_000
    step = 3_600_000 / max(1, len(messages))
    for s in range(STREAMS):
        store.create_stream(scope, GROUP, f"stream-{s}", now_ms)
    for s in range(STREAMS):
        mine = list(range(s, len(messages), STREAMS))
        for at in range(0, len(mine), BATCH):
            chunk = mine[at : at + BATCH]
            store.put_events(
                scope, GROUP, f"stream-{s}", [(int(start + i * step), messages[i]) for i in chunk], now_ms
            )


def old_path(db: Database, pattern: str) -> tuple[float, int]:
    """The pre-prefilter FilterLogEvents loop over the whole group: (seconds, matches)."""
    store = LogGroupStore(db)
    matcher = compile_pattern(pattern)
    t0 = time.perf_counter()
    cursor: tuple[int, int] | None = None
    hits = 0
    while True:
        page = store.group_events(
            Scope(ACCOUNT, REGION), GROUP, streams=None, since_ms=0, until_ms=2**62, cursor=cursor, limit=1000
        )
        for event in page:
            if matcher.matches(event.message):
                hits += 1
        if len(page) < 1000:
            break
        cursor = (page[-1].ts, page[-1].id)
    return time.perf_counter() - t0, hits


def sql_floor(db: Database) -> tuple[float, int]:
    t0 = time.perf_counter()
    count = db.read(
        lambda c: c.execute(
            "SELECT count(*) FROM log_events WHERE account=? AND region=? AND grp=?"
            " AND instr(message, 'ERROR') > 0",
            (ACCOUNT, REGION, GROUP),
        ).fetchone()[0]
    )
    return time.perf_counter() - t0, int(count)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--profile", action="store_true", help="accepted for run.py; nothing to profile")
    args = parser.parse_args(argv)
    messages = make_events(args.events)
    expected = [m for m in messages if compile_pattern("ERROR").matches(m)]
    with workdir("logs-filter") as tmp:
        data = tmp / "data"
        server = LaminaServer(data, lambda_role=False)
        try:
            logs = client(server, "logs")
            logs.create_log_group(logGroupName=GROUP)
            db = Database(data / "lamina.db", loop_guard=False)
            t0 = time.perf_counter()
            load(db, messages, int(time.time() * 1000))
            print(f"loaded {len(messages):,} events in {time.perf_counter() - t0:.1f} s (untimed)")
            logs.filter_log_events(logGroupName=GROUP, filterPattern="ERROR")  # warm up
            samples = []
            for _ in range(args.runs):
                t0 = time.perf_counter()
                answer = logs.filter_log_events(logGroupName=GROUP, filterPattern="ERROR")
                samples.append(time.perf_counter() - t0)
                got = [e["message"] for e in answer["events"]]
                if got != expected or "nextToken" in answer:
                    raise SystemExit("FilterLogEvents answered other events, or not all of them")
            p50 = statistics.median(samples)
            old_s, old_hits = old_path(db, "ERROR")
            floor_s, floor_hits = sql_floor(db)
            db.close()
        finally:
            server.stop()
    print(f"FilterLogEvents ERROR, first page, p50 of {args.runs}: {p50:8.3f} s  ({len(got):,} events)")
    print(f"baseline: old path (Python judges every event), in-process: {old_s:8.3f} s  ({old_hits:,} hits)")
    print(
        f"baseline: SQLite count(*) with instr(message, 'ERROR'):     {floor_s:8.3f} s  ({floor_hits:,} rows)"
    )
    print(f"target: first page p50 under {TARGET_S:.1f} s: {p50:.3f} s: {verdict(p50 < TARGET_S)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
