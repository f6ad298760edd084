"""The project store: a folder with ``project.db`` (SQLite, WAL) and readable job folders.

Only this module writes the database. Every write is one short ``BEGIN IMMEDIATE`` transaction, so two
CLI processes on one project serialise cleanly instead of corrupting it.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tomoforge.errors import InputError
from tomoforge.project.schema import MIGRATIONS, SCHEMA_VERSION

DB_NAME = "project.db"


@dataclass(frozen=True)
class JobRow:
    id: int
    step: str
    folder: str
    status: str
    params_hash: str
    inputs_hash: str
    created: float
    started: float | None
    finished: float | None
    pid: int | None
    host: str | None
    metrics: dict[str, Any]
    message: str | None


@dataclass(frozen=True)
class ArtifactRow:
    id: int
    job: int
    port: str
    key: str
    type: str
    uri: str
    meta: dict[str, Any]
    checksum: str


@dataclass(frozen=True)
class UnitRow:
    job: int
    key: str
    status: str
    attempts: int
    host: str | None
    metrics: dict[str, Any]
    error: str | None
    signature: str | None


def file_checksum(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def hash_json(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


class Project:
    """A tomoforge project folder."""

    def __init__(self, root: str | Path):
        self.root = Path(root).resolve()
        self.db_path = self.root / DB_NAME
        if not self.db_path.is_file():
            raise InputError("not a tomoforge project (no project.db); create one with 'tomoforge init'",
                             path=self.root)
        self._migrate()

    # -- creation and connection -------------------------------------------------------------------
    @classmethod
    def create(cls, root: str | Path) -> Project:
        root = Path(root)
        root.mkdir(parents=True, exist_ok=True)
        (root / "jobs").mkdir(exist_ok=True)
        db = root / DB_NAME
        if not db.exists():
            con = sqlite3.connect(db)
            con.execute("PRAGMA journal_mode=WAL")
            con.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            con.commit()
            con.close()
        return cls(root)

    def connect(self) -> sqlite3.Connection:
        con = sqlite3.connect(self.db_path, timeout=60, isolation_level=None)
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("PRAGMA busy_timeout=60000")
        con.execute("PRAGMA foreign_keys=ON")
        con.row_factory = sqlite3.Row
        return con

    @contextmanager
    def reading(self) -> Iterator[sqlite3.Connection]:
        con = self.connect()
        try:
            yield con
        finally:
            con.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        con = self.connect()
        try:
            con.execute("BEGIN IMMEDIATE")
            yield con
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        finally:
            con.close()

    def _migrate(self) -> None:
        with self.transaction() as con:
            con.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            row = con.execute("SELECT version FROM schema_version").fetchone()
            version = row[0] if row else 0
            if version > SCHEMA_VERSION:
                raise InputError(f"project schema {version} is newer than this tomoforge ({SCHEMA_VERSION})",
                                 path=self.db_path)
            for sql in MIGRATIONS[version:]:
                for statement in sql.split(";"):
                    if statement.strip():
                        con.execute(statement)
            if row is None:
                con.execute("INSERT INTO schema_version VALUES (?)", (SCHEMA_VERSION,))
            else:
                con.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION,))

    def schema_version(self) -> int:
        with self.reading() as con:
            return con.execute("SELECT version FROM schema_version").fetchone()[0]

    # -- jobs ---------------------------------------------------------------------------------------
    def find_job(self, step: str, params_hash: str, inputs_hash: str) -> JobRow | None:
        with self.reading() as con:
            row = con.execute(
                "SELECT * FROM jobs WHERE step=? AND params_hash=? AND inputs_hash=? ORDER BY id DESC LIMIT 1",
                (step, params_hash, inputs_hash)).fetchone()
        return _job(row) if row else None

    def create_job(self, step: str, params: dict[str, Any], params_hash: str, inputs_hash: str,
                   links: dict[str, list[tuple[int, str]]]) -> JobRow:
        with self.transaction() as con:
            cur = con.execute(
                "INSERT INTO jobs (step, folder, status, params_hash, inputs_hash, created) "
                "VALUES (?, '', 'pending', ?, ?, ?)", (step, params_hash, inputs_hash, time.time()))
            job_id = cur.lastrowid
            folder = f"jobs/{job_id:03d}_{step}"
            con.execute("UPDATE jobs SET folder=? WHERE id=?", (folder, job_id))
            con.executemany("INSERT INTO params (job, key, value) VALUES (?, ?, ?)",
                            [(job_id, k, json.dumps(v, default=str)) for k, v in params.items()])
            con.executemany("INSERT INTO links (job, port, source_job, source_port) VALUES (?, ?, ?, ?)",
                            [(job_id, port, sj, sp) for port, refs in links.items() for sj, sp in refs])
            _event(con, job_id, "job_created", {"step": step})
        (self.root / folder).mkdir(parents=True, exist_ok=True)
        return self.job(job_id)

    def links(self, job_id: int) -> dict[str, list[tuple[int, str]]]:
        with self.reading() as con:
            rows = con.execute("SELECT port, source_job, source_port FROM links WHERE job=? "
                               "ORDER BY port, source_job, source_port", (job_id,)).fetchall()
        out: dict[str, list[tuple[int, str]]] = {}
        for r in rows:
            out.setdefault(r["port"], []).append((r["source_job"], r["source_port"]))
        return out

    def record_edges(self, job_id: int, edges: list[tuple[int, str]]) -> None:
        """Record that ``job_id`` consumed these ``(artifact id, input port)`` pairs."""
        with self.transaction() as con:
            con.executemany("INSERT OR IGNORE INTO edges (artifact, job, port) VALUES (?, ?, ?)",
                            [(a, job_id, port) for a, port in edges])

    def job(self, job_id: int) -> JobRow:
        with self.reading() as con:
            row = con.execute("SELECT * FROM jobs WHERE id=?", (job_id,)).fetchone()
        if row is None:
            raise InputError(f"no job {job_id} in this project", path=self.root)
        return _job(row)

    def jobs(self) -> list[JobRow]:
        with self.reading() as con:
            return [_job(r) for r in con.execute("SELECT * FROM jobs ORDER BY id")]

    def job_dir(self, job: JobRow | int) -> Path:
        job = self.job(job) if isinstance(job, int) else job
        return self.root / job.folder

    def job_params(self, job_id: int) -> dict[str, Any]:
        with self.reading() as con:
            return {r["key"]: json.loads(r["value"])
                    for r in con.execute("SELECT key, value FROM params WHERE job=?", (job_id,))}

    def claim_job(self, job_id: int) -> None:
        """Mark a job running in this process; refuse if another live process holds it."""
        host, pid = socket.gethostname(), os.getpid()
        with self.transaction() as con:
            row = con.execute("SELECT status, pid, host FROM jobs WHERE id=?", (job_id,)).fetchone()
            if row["status"] == "running" and row["pid"] and row["pid"] != pid and row["host"] == host \
                    and _pid_alive(row["pid"]):
                raise InputError(f"job {job_id} is already running in process {row['pid']}")
            con.execute("UPDATE jobs SET status='running', started=?, pid=?, host=?, message=NULL WHERE id=?",
                        (time.time(), pid, host, job_id))
            _event(con, job_id, "job_started", {"pid": pid, "host": host})

    def finish_job(self, job_id: int, status: str, metrics: dict[str, Any], message: str | None = None) -> None:
        with self.transaction() as con:
            con.execute("UPDATE jobs SET status=?, finished=?, metrics=?, message=? WHERE id=?",
                        (status, time.time(), json.dumps(metrics), message, job_id))
            _event(con, job_id, f"job_{status}", {"message": message})

    # -- units --------------------------------------------------------------------------------------
    def ensure_units(self, job_id: int, signatures: dict[str, str]) -> None:
        """Add new units; a done unit whose inputs changed (another signature) goes back to pending."""
        with self.transaction() as con:
            for key, sig in signatures.items():
                con.execute("INSERT OR IGNORE INTO units (job, key, status, signature) VALUES (?, ?, 'pending', ?)",
                            (job_id, key, sig))
                con.execute("UPDATE units SET status='pending', signature=? WHERE job=? AND key=? "
                            "AND signature IS NOT ?", (sig, job_id, key, sig))

    def units(self, job_id: int) -> list[UnitRow]:
        with self.reading() as con:
            return [UnitRow(job=r["job"], key=r["key"], status=r["status"], attempts=r["attempts"],
                            host=r["host"], metrics=json.loads(r["metrics"]), error=r["error"],
                            signature=r["signature"])
                    for r in con.execute("SELECT * FROM units WHERE job=? ORDER BY key", (job_id,))]

    def start_unit(self, job_id: int, key: str, host: str | None = None) -> None:
        with self.transaction() as con:
            con.execute("UPDATE units SET status='running', attempts=attempts+1, started=?, host=? "
                        "WHERE job=? AND key=?", (time.time(), host or socket.gethostname(), job_id, key))
            _event(con, job_id, "unit_started", {"key": key})

    def complete_unit(self, job_id: int, key: str, artifacts: list[dict[str, Any]],
                      metrics: dict[str, Any]) -> None:
        """Register a unit's artifacts and mark it done in one transaction.

        Each artifact's file must already exist under its final name: a checksum is taken here, so nothing
        half-written can be registered.
        """
        rows = []
        for art in artifacts:
            path = Path(art["path"])
            if not path.is_file():
                raise FileNotFoundError(f"unit {key} of job {job_id} reported {path}, which does not exist")
            rows.append((job_id, art["port"], art["key"], art["type"], self.to_uri(path),
                         json.dumps(art.get("meta", {})), file_checksum(path), time.time()))
        with self.transaction() as con:
            con.executemany(
                "INSERT INTO artifacts (job, port, key, type, uri, meta, checksum, created) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (job, port, key) DO UPDATE SET "
                "type=excluded.type, uri=excluded.uri, meta=excluded.meta, checksum=excluded.checksum, "
                "created=excluded.created", rows)
            con.execute("UPDATE units SET status='done', finished=?, metrics=?, error=NULL WHERE job=? AND key=?",
                        (time.time(), json.dumps(metrics), job_id, key))
            _event(con, job_id, "unit_done", {"key": key, "metrics": metrics})

    def fail_unit(self, job_id: int, key: str, error: str) -> None:
        with self.transaction() as con:
            con.execute("UPDATE units SET status='failed', finished=?, error=? WHERE job=? AND key=?",
                        (time.time(), error, job_id, key))
            _event(con, job_id, "unit_failed", {"key": key, "error": error})

    # -- artifacts ----------------------------------------------------------------------------------
    def to_uri(self, path: Path) -> str:
        path = Path(path).resolve()
        try:
            return str(path.relative_to(self.root))
        except ValueError:
            return str(path)

    def resolve(self, uri: str) -> Path:
        p = Path(uri)
        return p if p.is_absolute() else self.root / p

    def artifacts(self, job_id: int, port: str | None = None) -> list[ArtifactRow]:
        sql, args = "SELECT * FROM artifacts WHERE job=?", [job_id]
        if port is not None:
            sql += " AND port=?"
            args.append(port)
        with self.reading() as con:
            return [_artifact(r) for r in con.execute(sql + " ORDER BY port, key", args)]

    def artifact(self, artifact_id: int) -> ArtifactRow:
        with self.reading() as con:
            row = con.execute("SELECT * FROM artifacts WHERE id=?", (artifact_id,)).fetchone()
        if row is None:
            raise InputError(f"no artifact {artifact_id} in this project", path=self.root)
        return _artifact(row)

    def job_inputs(self, job_id: int) -> dict[str, list[ArtifactRow]]:
        with self.reading() as con:
            rows = con.execute("SELECT a.*, e.port AS in_port FROM edges e JOIN artifacts a ON a.id = e.artifact "
                               "WHERE e.job=? ORDER BY e.port, a.key", (job_id,)).fetchall()
        out: dict[str, list[ArtifactRow]] = {}
        for r in rows:
            out.setdefault(r["in_port"], []).append(_artifact(r))
        return out

    def events(self, since_id: int = 0, job_id: int | None = None) -> list[dict[str, Any]]:
        sql, args = "SELECT * FROM events WHERE id > ?", [since_id]
        if job_id is not None:
            sql += " AND job=?"
            args.append(job_id)
        with self.reading() as con:
            return [dict(r) | {"payload": json.loads(r["payload"])} for r in con.execute(sql + " ORDER BY id", args)]

    def log_event(self, job_id: int | None, kind: str, payload: dict[str, Any]) -> None:
        with self.transaction() as con:
            _event(con, job_id, kind, payload)


def _event(con: sqlite3.Connection, job_id: int | None, kind: str, payload: dict[str, Any]) -> None:
    con.execute("INSERT INTO events (time, job, kind, payload) VALUES (?, ?, ?, ?)",
                (time.time(), job_id, kind, json.dumps(payload, default=str)))


def _job(r: sqlite3.Row) -> JobRow:
    return JobRow(id=r["id"], step=r["step"], folder=r["folder"], status=r["status"], params_hash=r["params_hash"],
                  inputs_hash=r["inputs_hash"], created=r["created"], started=r["started"], finished=r["finished"],
                  pid=r["pid"], host=r["host"], metrics=json.loads(r["metrics"]), message=r["message"])


def _artifact(r: sqlite3.Row) -> ArtifactRow:
    return ArtifactRow(id=r["id"], job=r["job"], port=r["port"], key=r["key"], type=r["type"], uri=r["uri"],
                       meta=json.loads(r["meta"]), checksum=r["checksum"])


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
