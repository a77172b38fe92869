"""The schema, one migration per version; `PRAGMA user_version` says which have run."""

from __future__ import annotations

# Append a new entry to move the schema forward; never edit a released one.
MIGRATIONS: list[str] = [
    # 1: jobs and their events
    """
    CREATE TABLE jobs (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        name TEXT NOT NULL,
        user TEXT NOT NULL,
        uid INTEGER NOT NULL,
        command TEXT NOT NULL,
        script TEXT NOT NULL,
        script_body TEXT NOT NULL,
        workdir TEXT NOT NULL,
        env TEXT NOT NULL,
        state TEXT NOT NULL,
        reason TEXT,
        priority INTEGER NOT NULL,
        gpus INTEGER NOT NULL,
        time_limit INTEGER,
        depends_on TEXT NOT NULL,
        array_task_id INTEGER,
        keep_session INTEGER NOT NULL,
        submitted_at REAL NOT NULL,
        started_at REAL,
        finished_at REAL,
        exit_code INTEGER,
        signal INTEGER,
        gpu_ids TEXT NOT NULL,
        pid INTEGER,
        stop_reason TEXT,
        executor TEXT NOT NULL,
        session TEXT NOT NULL,
        log_path TEXT NOT NULL
    );
    CREATE INDEX jobs_by_state ON jobs(state);
    CREATE INDEX jobs_by_uid ON jobs(uid, id);
    CREATE TABLE events (
        id INTEGER PRIMARY KEY,
        job_id INTEGER NOT NULL,
        at REAL NOT NULL,
        kind TEXT NOT NULL,
        state TEXT NOT NULL,
        detail TEXT NOT NULL
    );
    CREATE INDEX events_by_job ON events(job_id);
    """,
]

SCHEMA_VERSION = len(MIGRATIONS)
