"""The SQLite store: idempotent keys, resumable, clear errors on foreign files."""

from __future__ import annotations

import sqlite3

import pytest

from provenance.errors import StoreError
from provenance.models.base import Completion
from provenance.store import SCHEMA_VERSION, Store


def test_put_is_idempotent_and_persistent(tmp_path):
    path = tmp_path / "s.sqlite"
    with Store(path) as s:
        s.register_model("k1", {"name": "m"}, {"temperature": 0.8})
        assert s.put_many("k1", [("h1", "p1", 0, "Hi", 5, Completion("a")), ("h1", "p1", 1, "Hi", 6, Completion("b"))]) == 2
        assert s.put_many("k1", [("h1", "p1", 0, "Hi", 5, Completion("changed"))]) == 0
    with Store(path) as s:
        rows = s.responses("k1")
        assert [r.text for r in rows] == ["a", "b"]
        assert s.existing("k1") == {("h1", 0), ("h1", 1)}
        assert rows[0].store_key.startswith("k1/h1/") and len(rows[0].content_hash) == 64
        assert s.model_identity("k1") == {"name": "m"}
        assert s.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_other_schema_version_is_refused(tmp_path):
    path = tmp_path / "s.sqlite"
    Store(path).close()
    con = sqlite3.connect(path)
    con.execute("UPDATE meta SET value=? WHERE key='schema_version'", (str(SCHEMA_VERSION + 1),))
    con.commit()
    con.close()
    with pytest.raises(StoreError, match="schema version"):
        Store(path)


def test_foreign_sqlite_and_garbage_files(tmp_path):
    foreign = tmp_path / "foreign.sqlite"
    con = sqlite3.connect(foreign)
    con.execute("CREATE TABLE t (x)")
    con.commit()
    con.close()
    with pytest.raises(StoreError, match="not a readable provenance store"):
        Store(foreign)
    garbage = tmp_path / "garbage.sqlite"
    garbage.write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(StoreError, match="garbage.sqlite"):
        Store(garbage)


def test_claims_between_two_processes_sharing_a_store(tmp_path):
    """A claim says whether to ask: claimed, answered (stored meanwhile: never asked twice)
    or busy (another live process holds it); a dead process's claim is taken over."""
    import subprocess
    import sys

    path = tmp_path / "s.sqlite"
    with Store(path) as a, Store(path) as b:
        a.register_model("k1", {"name": "m"}, {})
        assert a.claim("k1", "h1", 0, "run-a", lease=60) == "claimed"
        assert b.claim("k1", "h1", 0, "run-b", lease=60) == "busy"  # same host, this process is alive
        assert a.claim("k1", "h1", 0, "run-a", lease=60) == "claimed"  # renewing one's own claim
        # a answers and stores: its claim goes in the same transaction; b must not ask again
        a.put_logged("k1", ("h1", "p1", 0, "Hi", 5, Completion("a")), {"time": "2026-11-29T00:00:00+00:00", "run_id": "run-a", "model_key": "k1", "model": "m", "endpoint": "http://127.0.0.1:1/v1", "outcome": "ok"},
                     claim_owner="run-a")
        assert b.claim("k1", "h1", 0, "run-b", lease=60) == "answered"
        assert b.conn.execute("SELECT COUNT(*) FROM claims").fetchone()[0] == 0
        # an expired lease is taken over
        assert a.claim("k1", "h2", 0, "run-a", lease=-1) == "claimed"
        assert b.claim("k1", "h2", 0, "run-b", lease=60) == "claimed"
        # so is the claim of a process on this host that is gone (kill -9)
        dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
        a.conn.execute("INSERT INTO claims VALUES ('k1', 'h3', 0, 'run-dead', ?, ?, ?)",
                       (__import__("socket").gethostname(), int(dead.stdout), 1e12))
        a.conn.commit()
        assert b.claim("k1", "h3", 0, "run-b", lease=60) == "claimed"
