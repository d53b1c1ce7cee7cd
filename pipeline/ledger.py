"""The ledger: a SQLite file that remembers every file ever seen, every run, and every mail.

It is what makes the nightly job safe to repeat: a run compares the inbox with the last completed
run, a mail moves through built → sending → sent so that no message goes out twice, and the
values and issues of each run are kept so the next one can say what changed.
"""

from __future__ import annotations

import json
import sqlite3
import zlib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Iterable

# Each entry upgrades the schema by one version; PRAGMA user_version records how far a file is.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE files (
        sha256 TEXT NOT NULL,
        name TEXT NOT NULL,
        size INTEGER NOT NULL,
        mtime REAL NOT NULL,
        unit TEXT NOT NULL DEFAULT '',
        verdict TEXT NOT NULL DEFAULT '',
        first_seen TEXT NOT NULL,
        last_seen TEXT NOT NULL,
        PRIMARY KEY (sha256, name)
    );
    CREATE TABLE runs (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        name TEXT NOT NULL DEFAULT '',
        started_at TEXT NOT NULL,
        finished_at TEXT,
        state TEXT NOT NULL,
        fingerprint TEXT NOT NULL DEFAULT '',
        counts TEXT NOT NULL DEFAULT '{}',
        folder TEXT NOT NULL DEFAULT '',
        outputs TEXT NOT NULL DEFAULT '[]',
        message TEXT NOT NULL DEFAULT ''
    );
    CREATE TABLE run_values (
        run_id INTEGER NOT NULL REFERENCES runs(id),
        unit TEXT NOT NULL, year INTEGER NOT NULL, metric TEXT NOT NULL, value INTEGER NOT NULL,
        PRIMARY KEY (run_id, unit, year, metric)
    );
    CREATE TABLE run_units (
        run_id INTEGER NOT NULL REFERENCES runs(id),
        unit TEXT NOT NULL, status TEXT NOT NULL, file TEXT NOT NULL DEFAULT '', sha256 TEXT NOT NULL DEFAULT '',
        PRIMARY KEY (run_id, unit)
    );
    CREATE TABLE run_issues (
        run_id INTEGER NOT NULL REFERENCES runs(id),
        unit TEXT NOT NULL, file TEXT NOT NULL, cell TEXT NOT NULL, severity TEXT NOT NULL, code TEXT NOT NULL,
        message TEXT NOT NULL
    );
    CREATE INDEX run_issues_run ON run_issues(run_id);
    CREATE TABLE mails (
        message_id TEXT PRIMARY KEY,
        run_id INTEGER NOT NULL REFERENCES runs(id),
        kind TEXT NOT NULL,
        recipients TEXT NOT NULL,
        eml_path TEXT NOT NULL,
        state TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        last_error TEXT NOT NULL DEFAULT '',
        updated_at TEXT NOT NULL
    );
    """,
    # 2: a run's snapshot as one compressed JSON document; row-per-value inserts cost seconds at 10,000 units.
    """
    CREATE TABLE run_snapshots (
        run_id INTEGER PRIMARY KEY REFERENCES runs(id),
        data BLOB NOT NULL
    );
    """,
)

MAIL_STATES = ("built", "sending", "sent", "failed", "written", "too_large", "failed_build")


def _now() -> str:
    return datetime.now().astimezone().isoformat(timespec="seconds")


@dataclass(frozen=True)
class RunRecord:
    id: int
    name: str
    started_at: str
    finished_at: str | None
    state: str
    fingerprint: str
    counts: dict[str, Any]
    folder: str
    message: str


@dataclass(frozen=True)
class MailRecord:
    message_id: str
    run_id: int
    kind: str
    recipients: str
    eml_path: str
    state: str
    attempts: int
    last_error: str
    updated_at: str


@dataclass(frozen=True)
class Snapshot:
    """What a completed run found, as the next run compares against it."""

    values: dict[tuple[str, int, str], int]
    units: dict[str, tuple[str, str, str]]  # unit → (status, file, sha256)
    issues: set[tuple[str, str, str, str, str]]  # (unit, code, cell, severity, message)


class Ledger:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.db = sqlite3.connect(path, timeout=30, isolation_level=None)
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.execute("PRAGMA foreign_keys=ON")
        self.migrate()

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> "Ledger":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def version(self) -> int:
        return int(self.db.execute("PRAGMA user_version").fetchone()[0])

    def migrate(self) -> None:
        current = self.version
        if current > len(MIGRATIONS):
            raise RuntimeError(f"ledger {self.path} has schema version {current}, newer than this program knows")
        for number in range(current, len(MIGRATIONS)):
            with self.transaction():
                self._script(MIGRATIONS[number])
                self.db.execute(f"PRAGMA user_version = {number + 1}")

    def _script(self, script: str) -> None:
        for statement in script.split(";"):
            if statement.strip():
                self.db.execute(statement)

    def transaction(self):
        return _Transaction(self.db)

    # ---------------------------------------------------------------- runs

    def start_run(self, fingerprint: str) -> int:
        with self.transaction():
            cursor = self.db.execute("INSERT INTO runs (started_at, state, fingerprint) VALUES (?, 'running', ?)",
                                     (_now(), fingerprint))
        return int(cursor.lastrowid)

    def finish_run(self, run_id: int, state: str, *, name: str = "", counts: dict | None = None, folder: str = "",
                   outputs: Iterable[str] = (), message: str = "") -> None:
        with self.transaction():
            self.db.execute(
                "UPDATE runs SET finished_at=?, state=?, name=?, counts=?, folder=?, outputs=?, message=? WHERE id=?",
                (_now(), state, name, json.dumps(counts or {}, ensure_ascii=False), folder,
                 json.dumps(list(outputs), ensure_ascii=False), message, run_id))

    def last_completed(self) -> RunRecord | None:
        row = self.db.execute("SELECT * FROM runs WHERE state='completed' ORDER BY id DESC LIMIT 1").fetchone()
        return _run(row) if row else None

    def recent_runs(self, limit: int = 10) -> list[RunRecord]:
        rows = self.db.execute("SELECT * FROM runs ORDER BY id DESC LIMIT ?", (limit,)).fetchall()
        return [_run(r) for r in rows]

    # ---------------------------------------------------------------- files and snapshots

    def record_files(self, rows: Iterable[tuple[str, str, int, float, str, str]]) -> None:
        """(sha256, name, size, mtime, unit, verdict) for every file of a run."""
        now = _now()
        with self.transaction():
            self.db.executemany(
                "INSERT INTO files (sha256, name, size, mtime, unit, verdict, first_seen, last_seen) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(sha256, name) DO UPDATE SET "
                "size=excluded.size, mtime=excluded.mtime, unit=excluded.unit, verdict=excluded.verdict, "
                "last_seen=excluded.last_seen",
                [(*row, now, now) for row in rows])

    def file_count(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM files").fetchone()[0])

    def save_snapshot(self, run_id: int, snapshot: Snapshot) -> None:
        blob = _packed_snapshot(snapshot)
        with self.transaction():
            self.db.execute("INSERT OR REPLACE INTO run_snapshots (run_id, data) VALUES (?, ?)", (run_id, blob))

    def snapshot(self, run_id: int) -> Snapshot:
        row = self.db.execute("SELECT data FROM run_snapshots WHERE run_id=?", (run_id,)).fetchone()
        if row is not None:
            document = json.loads(zlib.decompress(row["data"]).decode("utf-8"))
            return Snapshot(values={(u, y, m): v for u, y, m, v in document["values"]},
                            units={u: (status, file, sha) for u, status, file, sha in document["units"]},
                            issues={tuple(issue) for issue in document["issues"]})
        # Runs recorded before schema version 2 kept their snapshot row by row.
        values = {(r["unit"], r["year"], r["metric"]): r["value"]
                  for r in self.db.execute("SELECT * FROM run_values WHERE run_id=?", (run_id,))}
        units = {r["unit"]: (r["status"], r["file"], r["sha256"])
                 for r in self.db.execute("SELECT * FROM run_units WHERE run_id=?", (run_id,))}
        issues = {(r["unit"], r["code"], r["cell"], r["severity"], r["message"])
                  for r in self.db.execute("SELECT * FROM run_issues WHERE run_id=?", (run_id,))}
        return Snapshot(values, units, issues)

    # ---------------------------------------------------------------- mail

    def add_mail(self, message_id: str, run_id: int, kind: str, recipients: str, eml_path: str, state: str) -> None:
        with self.transaction():
            self.db.execute("INSERT OR IGNORE INTO mails (message_id, run_id, kind, recipients, eml_path, state, "
                            "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                            (message_id, run_id, kind, recipients, eml_path, state, _now()))

    def set_mail_state(self, message_id: str, state: str, error: str = "", attempt: bool = False) -> None:
        if state not in MAIL_STATES:
            raise ValueError(state)
        with self.transaction():
            self.db.execute("UPDATE mails SET state=?, last_error=?, attempts=attempts+?, updated_at=? "
                            "WHERE message_id=?", (state, error, 1 if attempt else 0, _now(), message_id))

    def mail(self, message_id: str) -> MailRecord | None:
        row = self.db.execute("SELECT * FROM mails WHERE message_id=?", (message_id,)).fetchone()
        return MailRecord(**dict(row)) if row else None

    def mails(self, states: tuple[str, ...] | None = None, limit: int = 50) -> list[MailRecord]:
        if states:
            marks = ",".join("?" * len(states))
            rows = self.db.execute(f"SELECT * FROM mails WHERE state IN ({marks}) ORDER BY rowid", states).fetchall()
        else:
            rows = self.db.execute("SELECT * FROM mails ORDER BY rowid DESC LIMIT ?", (limit,)).fetchall()
        return [MailRecord(**dict(r)) for r in rows]


class _Transaction:
    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type, *rest: object) -> None:
        self.db.execute("COMMIT" if exc_type is None else "ROLLBACK")


def _run(row: sqlite3.Row) -> RunRecord:
    return RunRecord(id=row["id"], name=row["name"], started_at=row["started_at"], finished_at=row["finished_at"],
                     state=row["state"], fingerprint=row["fingerprint"], counts=json.loads(row["counts"] or "{}"),
                     folder=row["folder"], message=row["message"])


_SNAPSHOT_BATCH = 5_000


def _packed_snapshot(snapshot: Snapshot) -> bytes:
    """The snapshot as compressed JSON ({"values": [[unit, year, metric, value], …], "units": …,
    "issues": …}), encoded a few thousand entries at a time: a national run's snapshot is
    hundreds of thousands of values, and holding all of them as JSON text at once is not needed."""
    packer = zlib.compressobj(1)
    pieces: list[bytes] = []

    def put(text: str) -> None:
        pieces.append(packer.compress(text.encode("utf-8")))

    def put_array(key: str, rows: Iterable[list], first: bool = False) -> None:
        put(("{" if first else ",") + json.dumps(key) + ":[")
        batch: list[list] = []
        started = False
        for row in rows:
            batch.append(row)
            if len(batch) == _SNAPSHOT_BATCH:
                put(("," if started else "") + json.dumps(batch, ensure_ascii=False)[1:-1])
                started, batch = True, []
        if batch:
            put(("," if started else "") + json.dumps(batch, ensure_ascii=False)[1:-1])
        put("]")

    put_array("values", ([u, y, m, v] for (u, y, m), v in snapshot.values.items()), first=True)
    put_array("units", ([u, *rest] for u, rest in snapshot.units.items()))
    put_array("issues", (list(issue) for issue in sorted(snapshot.issues)))
    put("}")
    pieces.append(packer.flush())
    return b"".join(pieces)
