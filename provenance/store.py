"""The response store: one SQLite file that holds every answer an audit collected.

A response is keyed by (model key, prompt hash, sample index). The model key hashes
everything that changes a model's answers (weights hash, chat template, system prompt,
sampling settings), so a changed model never reuses old answers and an unchanged one is
never asked twice. Rows are written in WAL mode and committed batch by batch, so a crash
loses at most the batch in flight and never leaves a partial row.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable

from .errors import StoreError
from .models.base import Completion, text_hash

SCHEMA_VERSION = 1

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS models (
    model_key TEXT PRIMARY KEY,
    identity TEXT NOT NULL,
    sampling TEXT,
    first_seen TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS responses (
    model_key TEXT NOT NULL,
    prompt_hash TEXT NOT NULL,
    sample INTEGER NOT NULL,
    prompt_id TEXT NOT NULL,
    prompt TEXT NOT NULL,
    text TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    finish_reason TEXT,
    tokens_in INTEGER,
    tokens_out INTEGER,
    seconds REAL,
    seed INTEGER,
    created_at TEXT NOT NULL,
    meta TEXT,
    PRIMARY KEY (model_key, prompt_hash, sample)
);
"""

#: Added within schema version 1 (a table older stores lack is created on open; older
#: readers ignore it): the evidence log of every API call, one row per HTTP attempt.
REQUESTS_SCHEMA = """
CREATE TABLE IF NOT EXISTS requests (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    time TEXT NOT NULL,
    run_id TEXT,
    model_key TEXT NOT NULL,
    endpoint TEXT NOT NULL,
    model TEXT NOT NULL,
    prompt_hash TEXT,
    sample INTEGER,
    attempt INTEGER,
    settings TEXT,
    status INTEGER,
    outcome TEXT NOT NULL,
    error TEXT,
    response_id TEXT,
    served_model TEXT,
    content_hash TEXT,
    tokens_in INTEGER,
    tokens_out INTEGER,
    cost REAL,
    seconds REAL
);
CREATE INDEX IF NOT EXISTS requests_by_key ON requests (model_key, prompt_hash, sample);
CREATE TABLE IF NOT EXISTS claims (
    model_key TEXT NOT NULL,
    prompt_hash TEXT NOT NULL,
    sample INTEGER NOT NULL,
    owner TEXT NOT NULL,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    until REAL NOT NULL,
    PRIMARY KEY (model_key, prompt_hash, sample)
);
"""
REQUEST_COLUMNS = ("time", "run_id", "model_key", "endpoint", "model", "prompt_hash", "sample", "attempt", "settings",
                   "status", "outcome", "error", "response_id", "served_model", "content_hash", "tokens_in",
                   "tokens_out", "cost", "seconds")


@dataclass(frozen=True, slots=True)
class StoredResponse:
    model_key: str
    prompt_hash: str
    sample: int
    prompt_id: str
    prompt: str
    text: str
    content_hash: str
    finish_reason: str | None
    tokens_in: int | None
    tokens_out: int | None
    seconds: float | None
    seed: int | None
    created_at: str

    @property
    def store_key(self) -> str:
        """A short, unique reference to this row, printed beside evidence in reports."""
        return f"{self.model_key}/{self.prompt_hash[:16]}/{self.sample}"


#: prompt hashes per query of :meth:`Store.responses` (below SQLite's limit on variables)
_SQL_VARIABLES = 900


class Store:
    """A SQLite response store. Safe to share between processes (WAL, idempotent inserts)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # one thread at a time, but not always the one that opened it (API collection
            # writes from a worker thread: provenance.fetch)
            self.conn = sqlite3.connect(self.path, timeout=30.0, check_same_thread=False)
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=NORMAL")
            version = self._schema_version()
        except sqlite3.DatabaseError as e:
            raise StoreError(f"{self.path}: not a readable provenance store ({e}); "
                             f"move it aside and re-run to start a new one") from None
        if version is None:
            with self.conn:
                self.conn.executescript(SCHEMA)
                self.conn.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
        elif version != SCHEMA_VERSION:
            raise StoreError(f"{self.path}: store schema version {version}, this provenance reads version "
                             f"{SCHEMA_VERSION}; use a matching provenance release or start a new store")
        with self.conn:
            self.conn.executescript(REQUESTS_SCHEMA)

    def _schema_version(self) -> int | None:
        has_meta = self.conn.execute("SELECT name FROM sqlite_master WHERE type='table' AND name='meta'").fetchone()
        if not has_meta:
            tables = self.conn.execute("SELECT count(*) FROM sqlite_master WHERE type='table'").fetchone()[0]
            if tables:
                raise sqlite3.DatabaseError("it holds tables of another program")
            return None
        row = self.conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        return int(row[0]) if row else None

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- writing -----------------------------------------------------------------------------
    def register_model(self, model_key: str, identity: dict[str, Any], sampling: dict[str, Any] | None) -> None:
        with self.conn:
            self.conn.execute(
                "INSERT OR IGNORE INTO models VALUES (?, ?, ?, ?)",
                (model_key, json.dumps(identity, sort_keys=True), json.dumps(sampling, sort_keys=True) if sampling else None,
                 _now()),
            )

    def put_many(self, model_key: str, rows: Iterable[tuple[str, str, int, str, int | None, Completion]]) -> int:
        """Insert (prompt_hash, prompt_id, sample, prompt, seed, completion) rows in one
        transaction. Existing keys are left as they are. Returns rows inserted."""
        now = _now()
        values = [
            (model_key, ph, sample, pid, prompt, c.text, text_hash(c.text), c.finish_reason, c.tokens_in,
             c.tokens_out, c.seconds, seed, now, json.dumps(c.meta) if c.meta else None)
            for ph, pid, sample, prompt, seed, c in rows
        ]
        with self.conn:
            before = self.conn.total_changes
            self.conn.executemany(
                "INSERT OR IGNORE INTO responses VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", values)
            return self.conn.total_changes - before

    def log_request(self, entry: dict[str, Any]) -> None:
        """Append one API call to the evidence log (committed at once)."""
        with self.conn:
            self._insert_request(entry)

    def put_logged(self, model_key: str, row: tuple[str, str, int, str, int | None, Completion],
                   entry: dict[str, Any], claim_owner: str | None = None) -> int:
        """Store one answer and its evidence-log entry in one transaction (dropping the
        owner's claim on it); 1 if inserted, 0 if that (model, prompt, sample) was already
        stored (by another process)."""
        ph, pid, sample, prompt, seed, c = row
        with self.conn:
            if claim_owner is not None:
                self.conn.execute("DELETE FROM claims WHERE owner=? AND model_key=? AND prompt_hash=? AND sample=?",
                                  (claim_owner, model_key, ph, sample))
            cur = self.conn.execute(
                "INSERT OR IGNORE INTO responses VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (model_key, ph, sample, pid, prompt, c.text, text_hash(c.text), c.finish_reason, c.tokens_in,
                 c.tokens_out, c.seconds, seed, _now(), json.dumps(c.meta) if c.meta else None))
            self._insert_request({**entry, "content_hash": text_hash(c.text)})
            return cur.rowcount

    def _insert_request(self, entry: dict[str, Any]) -> None:
        values = [entry.get(c) for c in REQUEST_COLUMNS]
        i = REQUEST_COLUMNS.index("settings")
        if values[i] is not None and not isinstance(values[i], str):
            values[i] = json.dumps(values[i], sort_keys=True)
        self.conn.execute(f"INSERT INTO requests ({', '.join(REQUEST_COLUMNS)}) VALUES "
                          f"({', '.join('?' * len(REQUEST_COLUMNS))})", values)

    def claim(self, model_key: str, prompt_hash: str, sample: int, owner: str, lease: float) -> str:
        """Take the right to ask for one (model, prompt, sample), so that two audits sharing
        this store do not pay for the same answer twice: ``"claimed"``, ``"answered"`` (it is
        stored already: nothing to ask) or ``"busy"`` (another live process holds it). A claim
        whose lease ran out, or whose process on this host is gone (kill -9), is taken over.
        The check for a stored answer is made inside the claiming transaction, which holds
        SQLite's write lock: an answer another process commits a moment earlier is seen, so it
        is never asked for again."""
        import os
        import socket
        import time

        key = (model_key, prompt_hash, sample)
        now, host, pid = time.time(), socket.gethostname(), os.getpid()
        upsert = ("INSERT INTO claims VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (model_key, prompt_hash, sample) "
                  "DO UPDATE SET owner=excluded.owner, host=excluded.host, pid=excluded.pid, until=excluded.until ")
        with self.conn:
            cur = self.conn.execute(upsert + "WHERE claims.owner=excluded.owner OR claims.until < ?",
                                    (*key, owner, host, pid, now + lease, now))
            if not cur.rowcount:
                row = self.conn.execute("SELECT owner, host, pid FROM claims WHERE model_key=? AND prompt_hash=? "
                                        "AND sample=?", key).fetchone()
                if row is not None and not (row[1] == host and not _alive(row[2])):
                    return "busy"
                cur = self.conn.execute(upsert + "WHERE claims.owner=?",
                                        (*key, owner, host, pid, now + lease, row[0] if row else owner))
                if not cur.rowcount:
                    return "busy"
            if self.conn.execute("SELECT 1 FROM responses WHERE model_key=? AND prompt_hash=? AND sample=?",
                                 key).fetchone() is not None:
                self.conn.execute("DELETE FROM claims WHERE owner=? AND model_key=? AND prompt_hash=? AND sample=?",
                                  (owner, *key))
                return "answered"
            return "claimed"

    def release_claims(self, owner: str, key: tuple[str, str, int] | None = None) -> None:
        with self.conn:
            if key is None:
                self.conn.execute("DELETE FROM claims WHERE owner=?", (owner,))
            else:
                self.conn.execute("DELETE FROM claims WHERE owner=? AND model_key=? AND prompt_hash=? AND sample=?",
                                  (owner, *key))

    def request_log(self, model_key: str | None = None) -> list[dict[str, Any]]:
        """The evidence log, oldest first."""
        sql = f"SELECT {', '.join(REQUEST_COLUMNS)} FROM requests"
        rows = (self.conn.execute(sql + " WHERE model_key=? ORDER BY id", (model_key,)) if model_key
                else self.conn.execute(sql + " ORDER BY id"))
        return [dict(zip(REQUEST_COLUMNS, r)) for r in rows]

    # -- reading -----------------------------------------------------------------------------
    def existing(self, model_key: str) -> set[tuple[str, int]]:
        """(prompt_hash, sample) pairs already stored for a model key."""
        rows = self.conn.execute("SELECT prompt_hash, sample FROM responses WHERE model_key=?", (model_key,))
        return {(r[0], r[1]) for r in rows}

    def responses(self, model_key: str, prompt_hashes: Iterable[str] | None = None) -> list[StoredResponse]:
        """A model's stored answers, ordered by prompt hash and sample; only those to
        ``prompt_hashes`` when given (selected in SQL, so a battery does not read the answers
        to every other battery that shares the model's sampling settings)."""
        columns = ("SELECT model_key, prompt_hash, sample, prompt_id, prompt, text, content_hash, finish_reason, "
                   "tokens_in, tokens_out, seconds, seed, created_at FROM responses WHERE model_key=?")
        if prompt_hashes is None:
            rows = self.conn.execute(columns + " ORDER BY prompt_hash, sample", (model_key,)).fetchall()
        else:
            wanted = sorted(set(prompt_hashes))
            rows = []
            for i in range(0, len(wanted), _SQL_VARIABLES):  # in order, so the chunks stay sorted
                part = wanted[i:i + _SQL_VARIABLES]
                rows += self.conn.execute(columns + f" AND prompt_hash IN ({','.join('?' * len(part))})"
                                          " ORDER BY prompt_hash, sample", (model_key, *part)).fetchall()
        # the model key, prompt and other repeated fields as one string object each: an audit
        # holds every answer, and these copies were most of each answer's memory
        shared: dict[str, str] = {}
        one = shared.setdefault
        return [StoredResponse(one(r[0], r[0]), one(r[1], r[1]), r[2], one(r[3], r[3]), one(r[4], r[4]), r[5], r[6],
                               r[7] if r[7] is None else one(r[7], r[7]), *r[8:12],
                               r[12] if r[12] is None else one(r[12], r[12])) for r in rows]

    def model_identity(self, model_key: str) -> dict[str, Any] | None:
        row = self.conn.execute("SELECT identity FROM models WHERE model_key=?", (model_key,)).fetchone()
        return json.loads(row[0]) if row else None

    def count(self) -> int:
        return self.conn.execute("SELECT count(*) FROM responses").fetchone()[0]


def _alive(pid: int) -> bool:
    import os

    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
