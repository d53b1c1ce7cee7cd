"""The ledger: a SQLite file that remembers every file ever seen, every run, and every mail.

It is what makes the nightly job safe to repeat: a run compares the inbox with the last completed
run, a mail moves through built → sending → sent so that no message goes out twice, and the
values and issues of each run are kept so the next one can say what changed.
"""

from __future__ import annotations

import json
import os
import sqlite3
import zlib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from collections.abc import Iterable, Sequence

from pipeline.stages.changes import Snapshot

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
    # 3: "sending" used to mean "a server may have the message"; that is now "unknown", and "sending"
    # means an attempt under way that no server has seen the message of yet.
    """
    UPDATE mails SET state = 'unknown' WHERE state = 'sending';
    """,
)

# built → sending → (the message handed to a server) unknown → sent; failed is retried by the next run;
# abandoned: built by a run that never completed, so never sent (its run's successor builds its own).
MAIL_STATES = ("built", "sending", "unknown", "sent", "failed", "written", "too_large", "failed_build", "abandoned")
RESENDABLE = ("built", "failed")
BUSY_TIMEOUT_SECONDS = 10.0  # how long a write waits for another program holding the ledger


class LedgerError(RuntimeError):
    """The ledger cannot be used as it is; the message (Vietnamese) says what to do."""


class LedgerDamaged(LedgerError):
    """The ledger file is not a readable SQLite database of ours (damaged, emptied, overwritten)."""


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


class Ledger:
    def __init__(self, path: Path, *, busy_timeout: float = BUSY_TIMEOUT_SECONDS) -> None:
        """Open (or create) the ledger at `path`. Raises LedgerDamaged when the file is not a sound
        ledger, LedgerError when it cannot be used for another reason (locked, a folder, too new)."""
        if path.is_dir():
            raise LedgerError(f"Sổ ghi {path} là một thư mục, không phải tệp; hãy đổi tên hoặc chuyển thư mục "
                              f"đó đi rồi chạy lại.")
        if path.exists() and path.stat().st_size == 0:
            # SQLite would take an empty file for a new database: a ledger that lost its contents must
            # not come back silently empty, as if no file had ever been seen nor any mail sent.
            raise LedgerDamaged(f"Sổ ghi {path} rỗng (0 byte)")
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        try:
            self.db = sqlite3.connect(path, timeout=busy_timeout, isolation_level=None)
        except sqlite3.Error as exc:
            raise LedgerError(f"Không mở được sổ ghi {path} ({exc}); hãy kiểm tra quyền ghi vào thư mục "
                              f"{path.parent}.") from exc
        try:
            self.db.row_factory = sqlite3.Row
            self._check_sound()
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=FULL")
            self.db.execute("PRAGMA foreign_keys=ON")
            self.migrate()
        except BaseException:
            self.db.close()
            raise

    def _check_sound(self) -> None:
        try:
            verdict = self.db.execute("PRAGMA quick_check(1)").fetchone()[0]
        except sqlite3.OperationalError as exc:
            if _locked(exc):
                raise LedgerError(locked_message(self.path)) from exc
            raise LedgerDamaged(f"Sổ ghi {self.path} bị hỏng ({exc})") from exc
        except sqlite3.DatabaseError as exc:
            raise LedgerDamaged(f"Sổ ghi {self.path} bị hỏng ({exc})") from exc
        if verdict != "ok":
            raise LedgerDamaged(f"Sổ ghi {self.path} bị hỏng ({verdict})")

    @classmethod
    def open_or_replace(cls, path: Path) -> tuple[Ledger, str]:
        """The ledger at `path`; a damaged one is moved aside (kept, never deleted) and a new one started.
        Returns the ledger and, when that happened, a Vietnamese warning saying so and where the old one is."""
        try:
            return cls(path), ""
        except LedgerDamaged as exc:
            kept = set_aside(path)
            warning = (f"{exc}. Đã chuyển sổ ghi hỏng sang {kept} (không xoá) và bắt đầu sổ ghi mới: lần chạy này "
                       f"coi mọi tệp là mới và không so sánh được với các lần trước.")
            return cls(path), warning

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def version(self) -> int:
        return int(self.db.execute("PRAGMA user_version").fetchone()[0])

    def migrate(self) -> None:
        current = self.version
        if current > len(MIGRATIONS):
            raise LedgerError(f"Sổ ghi {self.path} do một phiên bản tonghop mới hơn tạo (lược đồ {current}, phiên "
                              f"bản này chỉ biết tới {len(MIGRATIONS)}); hãy cập nhật tonghop rồi chạy lại.")
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
        assert cursor.lastrowid is not None  # set by the INSERT just made
        return int(cursor.lastrowid)

    def finish_run(self, run_id: int, state: str, *, name: str = "", counts: dict | None = None, folder: str = "",
                   outputs: Iterable[str] = (), message: str = "") -> None:
        with self.transaction():
            self.db.execute(
                "UPDATE runs SET finished_at=?, state=?, name=?, counts=?, folder=?, outputs=?, message=? WHERE id=?",
                (_now(), state, name, json.dumps(counts or {}, ensure_ascii=False), folder,
                 json.dumps(list(outputs), ensure_ascii=False), message, run_id))

    def record_failed_run(self, message: str) -> None:
        """A run that failed before it started consolidating, so `tonghop status` shows why."""
        with self.transaction():
            self.db.execute("INSERT INTO runs (started_at, finished_at, state, message) VALUES (?, ?, 'failed', ?)",
                            (_now(), _now(), message))

    def complete_run(self, run_id: int, *, name: str, counts: dict, folder: str, outputs: Iterable[str],
                     mails: Sequence[tuple[str, str, str, str, str, str]] = ()) -> None:
        """Mark the run completed and record its mails — (message_id, kind, recipients, eml_path, state,
        error) — in one transaction: a run that dies before this leaves no mail behind to be sent."""
        with self.transaction():
            for message_id, kind, recipients, eml_path, state, error in mails:
                self.db.execute("INSERT OR IGNORE INTO mails (message_id, run_id, kind, recipients, eml_path, state, "
                                "last_error, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                                (message_id, run_id, kind, recipients, eml_path, state, error, _now()))
            self.db.execute(
                "UPDATE runs SET finished_at=?, state='completed', name=?, counts=?, folder=?, outputs=?, message='' "
                "WHERE id=?",
                (_now(), name, json.dumps(counts, ensure_ascii=False), folder,
                 json.dumps(list(outputs), ensure_ascii=False), run_id))

    def recover_interrupted(self) -> tuple[int, int, int]:
        """Called under the outbox lock, so nothing else is running: runs still 'running' died, and are
        marked interrupted; mails their runs never completed are abandoned; a mail left 'sending' was
        never handed to a server (that moment is recorded as 'unknown'), so it is safe to send again.
        Returns (runs, abandoned mails, mails to retry)."""
        with self.transaction():
            runs = self.db.execute("UPDATE runs SET state='interrupted', finished_at=?, message=? "
                                   "WHERE state='running'",
                                   (_now(), "lần chạy bị dừng giữa chừng (máy tắt, tiến trình bị dừng…)")).rowcount
            abandoned = self.db.execute(
                "UPDATE mails SET state='abandoned', updated_at=?, last_error=? WHERE state IN ('built', 'failed', "
                "'sending') AND run_id IN (SELECT id FROM runs WHERE state != 'completed')",
                (_now(), "lần tổng hợp tạo thư này không hoàn tất; lần sau tạo thư của riêng nó")).rowcount
            retried = self.db.execute(
                "UPDATE mails SET state='failed', updated_at=?, last_error=? WHERE state='sending'",
                (_now(), "lần gửi trước bị dừng trước khi máy chủ thư nhận thư; sẽ gửi lại")).rowcount
        return runs, abandoned, retried

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
                            issues={tuple(issue) for issue in document["issues"]},
                            edition=document.get("edition", ""))
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

    def mails_to_send(self) -> list[MailRecord]:
        """Mails waiting to go out, of completed runs only, oldest first."""
        rows = self.db.execute("SELECT mails.* FROM mails JOIN runs ON runs.id = mails.run_id WHERE "
                               "runs.state = 'completed' AND mails.state IN ('built', 'failed') ORDER BY mails.rowid"
                               ).fetchall()
        return [MailRecord(**dict(r)) for r in rows]

    def mails(self, states: tuple[str, ...] | None = None, limit: int = 50) -> list[MailRecord]:
        if states:
            marks = ",".join("?" * len(states))
            rows = self.db.execute(f"SELECT * FROM mails WHERE state IN ({marks}) ORDER BY rowid", states).fetchall()
        else:
            rows = self.db.execute("SELECT * FROM mails ORDER BY rowid DESC LIMIT ?", (limit,)).fetchall()
        return [MailRecord(**dict(r)) for r in rows]


def _locked(exc: sqlite3.Error) -> bool:
    return "locked" in str(exc) or "busy" in str(exc)


def locked_message(path: Path) -> str:
    return (f"Sổ ghi {path} đang bị một chương trình khác giữ (có thể đang mở bằng một công cụ xem SQLite); "
            f"hãy đóng chương trình đó rồi chạy lại.")


def set_aside(path: Path) -> Path:
    """Move a damaged ledger (and its WAL and shared-memory files) aside under a dated name; returns it."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    kept = path.with_name(f"{path.name}.hong-{stamp}")
    counter = 1
    while kept.exists():
        counter += 1
        kept = path.with_name(f"{path.name}.hong-{stamp}-{counter}")
    for suffix in ("-wal", "-shm"):
        companion = path.with_name(path.name + suffix)
        if companion.exists():
            os.replace(companion, kept.with_name(kept.name + suffix))
    os.replace(path, kept)
    return kept


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
    "issues": …, "edition": …}), encoded a few thousand entries at a time: a national run's snapshot is
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
    put(',"edition":' + json.dumps(snapshot.edition, ensure_ascii=False) + "}")
    pieces.append(packer.flush())
    return b"".join(pieces)
