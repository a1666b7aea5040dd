"""The console's signed-in sessions and one-use download links, in the database so that any node
serves a session (or a link) another node made. Only SHA-256 digests of their tokens are stored:
whoever reads the database cannot present them."""

from __future__ import annotations

from dataclasses import dataclass

from lamina.store.db import Database


@dataclass(frozen=True)
class ConsoleSession:
    """A session: the principal it acts as (``principal_expires``: its temporary credentials'
    expiry) and when it ends."""

    account: str
    access_key_id: str
    arn: str
    principal_expires: float | None
    expires: float


class ConsoleSessionStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def create(
        self, token_hash: str, session: ConsoleSession, now: float, *, per_key: int, total: int
    ) -> None:
        """Store a new session; ended ones are dropped, and the oldest sessions of its access key
        beyond ``per_key`` (and the oldest of all beyond ``total``) are signed out."""
        with self.db.write() as c:
            c.execute("DELETE FROM console_sessions WHERE expires < ?", (now,))
            own = c.execute(
                "SELECT token_hash FROM console_sessions WHERE access_key_id=? ORDER BY created, token_hash",
                (session.access_key_id,),
            ).fetchall()
            for (old,) in own[: max(0, len(own) - per_key + 1)]:
                c.execute("DELETE FROM console_sessions WHERE token_hash=?", (old,))
            count = int(c.execute("SELECT COUNT(*) FROM console_sessions").fetchone()[0])
            if count >= total:
                oldest = c.execute(
                    "SELECT token_hash FROM console_sessions ORDER BY created, token_hash LIMIT ?",
                    (count - total + 1,),
                ).fetchall()
                for (old,) in oldest:
                    c.execute("DELETE FROM console_sessions WHERE token_hash=?", (old,))
            c.execute(
                "INSERT INTO console_sessions (token_hash, account, access_key_id, arn, principal_expires, expires,"
                " created) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    token_hash,
                    session.account,
                    session.access_key_id,
                    session.arn,
                    session.principal_expires,
                    session.expires,
                    now,
                ),
            )

    def get(self, token_hash: str, now: float) -> ConsoleSession | None:
        """The session of ``token_hash`` unless it has ended."""
        row = self.db.read(
            lambda c: c.execute(
                "SELECT account, access_key_id, arn, principal_expires, expires FROM console_sessions"
                " WHERE token_hash=? AND expires >= ?",
                (token_hash, now),
            ).fetchone()
        )
        if row is None:
            return None
        account, key, arn, principal_expires, expires = row
        return ConsoleSession(
            str(account),
            str(key),
            str(arn),
            None if principal_expires is None else float(principal_expires),
            float(expires),
        )

    def delete(self, token_hash: str) -> None:
        with self.db.write() as c:
            c.execute("DELETE FROM console_sessions WHERE token_hash=?", (token_hash,))


@dataclass(frozen=True)
class ConsoleDownload:
    """A one-use link to one object, for the session (by its token's digest) that asked for it."""

    session_hash: str
    region: str
    bucket: str
    key: str
    expires: float


class ConsoleDownloadStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def create(self, token_hash: str, download: ConsoleDownload, now: float, *, total: int) -> None:
        """Store a link; ended ones are dropped, and past ``total`` the oldest."""
        with self.db.write() as c:
            c.execute("DELETE FROM console_downloads WHERE expires < ?", (now,))
            count = int(c.execute("SELECT COUNT(*) FROM console_downloads").fetchone()[0])
            if count >= total:
                for (old,) in c.execute(
                    "SELECT token_hash FROM console_downloads ORDER BY created, token_hash LIMIT ?",
                    (count - total + 1,),
                ).fetchall():
                    c.execute("DELETE FROM console_downloads WHERE token_hash=?", (old,))
            c.execute(
                "INSERT INTO console_downloads (token_hash, session_hash, region, bucket, object_key, expires,"
                " created) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    token_hash,
                    download.session_hash,
                    download.region,
                    download.bucket,
                    download.key,
                    download.expires,
                    now,
                ),
            )

    def take(self, token_hash: str) -> ConsoleDownload | None:
        """The link, used up (whichever node asks first gets it; ended or not: the caller checks)."""
        with self.db.write() as c:
            row = c.execute(
                "SELECT session_hash, region, bucket, object_key, expires FROM console_downloads WHERE token_hash=?",
                (token_hash,),
            ).fetchone()
            if row is None:
                return None
            c.execute("DELETE FROM console_downloads WHERE token_hash=?", (token_hash,))
        session_hash, region, bucket, key, expires = row
        return ConsoleDownload(str(session_hash), str(region), str(bucket), str(key), float(expires))
