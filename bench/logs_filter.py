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

Printed first, **storing events** (no target; ``--store-only`` prints only this): one transaction
of ``put_events`` of 10,000 of the same lines into one stream (named as Lambda names a function's) (already holding ``--store-preload``
events), the median of ``--store-runs`` (15) per schema, alternating: (1) now, events keyed by the
stream's and group's integer ids (migration 21), through :class:`LogGroupStore`; (2) before, in the
same run: the text-keyed schema of migrations 1-20 (account, region, group and stream names in
every row and in both indexes) written as the store wrote it then (a tuple of the four names per
event, each message checked and measured apart).

Run: ``.venv/bin/python bench/logs_filter.py [--events N] [--runs N] [--store-only] [--profile]``.
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import LaminaServer, client, verdict, workdir  # noqa: E402
from log_filters import events as make_events  # noqa: E402

from lamina.domain.log_filters import compile_pattern  # noqa: E402
from lamina.store import Database, SqliteDatabase  # noqa: E402
from lamina.store.logs import LogGroupStore, Scope, storable  # noqa: E402
from lamina.store.schema import MIGRATIONS  # noqa: E402

TARGET_S = 1.0
GROUP = "/bench/logs-filter"
STREAMS = 10
BATCH = 10_000
ACCOUNT = "000000000000"  # the "test" credentials' account (tests/functional/lamina_server.py)
REGION = "us-east-1"
# The storing figure's stream is named as Lambda names a function's (the names' length is what the
# text-keyed schema repeated in every event and both its indexes).
STORE_GROUP = "/aws/lambda/bench-store"
STORE_STREAM = "2026/12/06/[$LATEST]0123456789abcdef0123456789abcdef"


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
            "SELECT count(*) FROM log_events"
            " WHERE gid = (SELECT id FROM log_groups WHERE account=? AND region=? AND name=?)"
            " AND instr(message, 'ERROR') > 0",
            (ACCOUNT, REGION, GROUP),
        ).fetchone()[0]
    )
    return time.perf_counter() - t0, int(count)


class TextKeyed:
    """The store as it was before migration 21 (text keys in every event), for the baseline."""

    def __init__(self, path: Path) -> None:
        self.conn = sqlite3.connect(path, isolation_level=None)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=FULL")
        for script in MIGRATIONS[:20]:
            for statement in filter(str.strip, script.split(";")):
                self.conn.execute(statement)
        self.key = (ACCOUNT, REGION, STORE_GROUP, STORE_STREAM)
        self.conn.execute(
            "INSERT INTO log_groups (account, region, name, created_ms) VALUES (?,?,?,0)", self.key[:3]
        )
        self.conn.execute(
            "INSERT INTO log_streams (account, region, grp, name, created_ms) VALUES (?,?,?,?,0)", self.key
        )

    def put_events(self, events: list[tuple[int, str]], now_ms: int) -> None:
        """The old ``put_events``/``_insert``, statement for statement."""
        c, key = self.conn, self.key
        c.execute("BEGIN IMMEDIATE")
        c.execute(
            "SELECT 1 FROM log_streams WHERE account=? AND region=? AND grp=? AND name=?", key
        ).fetchone()
        c.executemany(
            "INSERT INTO log_events (account, region, grp, stream, ts, ingested_ms, message) VALUES (?,?,?,?,?,?,?)",
            [(*key, ts, now_ms, storable(message)) for ts, message in events],
        )
        first = min(ts for ts, _ in events)
        last = max(ts for ts, _ in events)
        size = sum(len(message.encode("utf-8", "surrogatepass")) for _, message in events)
        c.execute(
            "UPDATE log_streams SET first_ms=min(coalesce(first_ms, ?), ?),"
            " last_ms=max(coalesce(last_ms, ?), ?), ingested_ms=?, stored_bytes=stored_bytes + ?"
            " WHERE account=? AND region=? AND grp=? AND name=?",
            (first, first, last, last, now_ms, size, *key),
        )
        c.execute(
            "UPDATE log_groups SET stored_bytes=stored_bytes + ? WHERE account=? AND region=? AND name=?",
            (size, *key[:3]),
        )
        c.execute("COMMIT")


def store_figures(tmp: Path, messages: list[str], preload: int, runs: int) -> None:
    """Median time of one 10,000-event put_events, integer keys (now) vs text keys (before)."""
    batch = [(1_700_000_000_000 + i, messages[i % len(messages)]) for i in range(BATCH)]
    db = SqliteDatabase(tmp / "now.db", loop_guard=False)
    store = LogGroupStore(db)
    scope = Scope(ACCOUNT, REGION)
    store.create_group(scope, STORE_GROUP, 0, {})
    store.create_stream(scope, STORE_GROUP, STORE_STREAM, 0)
    old = TextKeyed(tmp / "before.db")
    for _ in range(0, preload, BATCH):  # both tables hold as many events to begin with
        store.put_events(scope, STORE_GROUP, STORE_STREAM, batch, 0)
        old.put_events(batch, 0)
    now_s: list[float] = []
    before_s: list[float] = []
    for _ in range(runs):
        t0 = time.perf_counter()
        store.put_events(scope, STORE_GROUP, STORE_STREAM, batch, 1)
        now_s.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        old.put_events(batch, 1)
        before_s.append(time.perf_counter() - t0)
    db.close()
    old.conn.close()
    now, before = statistics.median(now_s), statistics.median(before_s)
    print(f"store {BATCH:,} events (one put_events, median of {runs}, stream holding {preload:,}+):")
    print(f"  now (integer keys):              {now * 1000:7.1f} ms  ({now / BATCH * 1e6:5.2f} us/event)")
    print(
        f"  before (text keys, same run):    {before * 1000:7.1f} ms  ({before / BATCH * 1e6:5.2f} us/event)"
    )
    print(f"  now / before: {now / before:.2f}x")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--profile", action="store_true", help="accepted for run.py; nothing to profile")
    parser.add_argument("--store-only", action="store_true", help="only the cost of storing events")
    parser.add_argument("--store-runs", type=int, default=15)
    parser.add_argument("--store-preload", type=int, default=100_000)
    args = parser.parse_args(argv)
    messages = make_events(args.events)
    with workdir("logs-store") as tmp:
        store_figures(tmp, messages, args.store_preload, args.store_runs)
    if args.store_only:
        return 0
    expected = [m for m in messages if compile_pattern("ERROR").matches(m)]
    with workdir("logs-filter") as tmp:
        data = tmp / "data"
        server = LaminaServer(data, lambda_role=False)
        try:
            logs = client(server, "logs")
            logs.create_log_group(logGroupName=GROUP)
            db = SqliteDatabase(data / "lamina.db", loop_guard=False)
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
