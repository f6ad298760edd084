"""The project database schema, as numbered migrations applied in order.

``links`` say which job outputs feed a job's input ports (a job keeps consuming them as they grow, which is
how streaming works); ``edges`` record the exact artifacts each job consumed (provenance).

Plain SQL with plain types, so anyone can query a project with ``sqlite3 project.db``.
"""

MIGRATIONS: list[str] = [
    # 1: the initial schema.
    """
    CREATE TABLE jobs (
        id INTEGER PRIMARY KEY,
        step TEXT NOT NULL,
        folder TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('pending', 'running', 'done', 'failed')),
        params_hash TEXT NOT NULL,
        inputs_hash TEXT NOT NULL,
        created REAL NOT NULL,
        started REAL,
        finished REAL,
        pid INTEGER,
        host TEXT,
        metrics TEXT NOT NULL DEFAULT '{}',
        message TEXT
    );
    CREATE INDEX jobs_lookup ON jobs (step, params_hash, inputs_hash);
    CREATE TABLE params (
        job INTEGER NOT NULL REFERENCES jobs(id),
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (job, key)
    );
    CREATE TABLE artifacts (
        id INTEGER PRIMARY KEY,
        job INTEGER NOT NULL REFERENCES jobs(id),
        port TEXT NOT NULL,
        key TEXT NOT NULL,
        type TEXT NOT NULL,
        uri TEXT NOT NULL,
        meta TEXT NOT NULL DEFAULT '{}',
        checksum TEXT NOT NULL,
        created REAL NOT NULL,
        UNIQUE (job, port, key)
    );
    CREATE TABLE edges (
        artifact INTEGER NOT NULL REFERENCES artifacts(id),
        job INTEGER NOT NULL REFERENCES jobs(id),
        port TEXT NOT NULL,
        PRIMARY KEY (artifact, job, port)
    );
    CREATE TABLE units (
        job INTEGER NOT NULL REFERENCES jobs(id),
        key TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('pending', 'running', 'done', 'failed')),
        attempts INTEGER NOT NULL DEFAULT 0,
        host TEXT,
        started REAL,
        finished REAL,
        metrics TEXT NOT NULL DEFAULT '{}',
        error TEXT,
        signature TEXT,
        PRIMARY KEY (job, key)
    );
    CREATE TABLE links (
        job INTEGER NOT NULL REFERENCES jobs(id),
        port TEXT NOT NULL,
        source_job INTEGER NOT NULL REFERENCES jobs(id),
        source_port TEXT NOT NULL,
        PRIMARY KEY (job, port, source_job, source_port)
    );
    CREATE TABLE events (
        id INTEGER PRIMARY KEY,
        time REAL NOT NULL,
        job INTEGER,
        kind TEXT NOT NULL,
        payload TEXT NOT NULL DEFAULT '{}'
    );
    """,
]

SCHEMA_VERSION = len(MIGRATIONS)
