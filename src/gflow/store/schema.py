"""The schema, one migration per version; `PRAGMA user_version` says which have run."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

from gflow.core.states import ACTIVE_STATES, ENDED_STATES

# The states as SQL literals, in a fixed order: a partial index is used only by a query
# whose WHERE clause has its term spelled the same way.
ACTIVE_CLAUSE = f"state IN ({', '.join(repr(s.value) for s in sorted(ACTIVE_STATES))})"
ENDED_LIST = ", ".join(repr(s.value) for s in sorted(ENDED_STATES))
# One ended job added to its day's totals (the trigger's body; `new` is the job's row).
_ADD_TO_TOTALS = """
    INSERT INTO daily_totals VALUES (new.uid, new.project,
        CAST(new.submitted_at / 86400 AS INTEGER), new.state, new.user, 1,
        new.started_at IS NOT NULL, COALESCE(new.started_at - new.submitted_at, 0),
        COALESCE(new.finished_at - new.started_at, 0),
        COALESCE(json_array_length(new.gpu_ids) * (new.finished_at - new.started_at), 0))
    ON CONFLICT DO UPDATE SET jobs = jobs + 1, started = started + excluded.started,
        wait_seconds = wait_seconds + excluded.wait_seconds,
        run_seconds = run_seconds + excluded.run_seconds,
        gpu_seconds = gpu_seconds + excluded.gpu_seconds, user = excluded.user;
"""

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
    # 2: resources beyond a GPU count, dependency kinds, begin times, groups, settings
    """
    ALTER TABLE jobs ADD COLUMN shared INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE jobs ADD COLUMN gpu_memory_mb INTEGER;
    ALTER TABLE jobs ADD COLUMN gpu_pin TEXT NOT NULL DEFAULT '[]';
    ALTER TABLE jobs ADD COLUMN memory_mb INTEGER;
    ALTER TABLE jobs ADD COLUMN dependencies TEXT NOT NULL DEFAULT '[]';
    ALTER TABLE jobs ADD COLUMN dependency_mode TEXT NOT NULL DEFAULT 'all';
    ALTER TABLE jobs ADD COLUMN auto_cancel INTEGER NOT NULL DEFAULT 1;
    ALTER TABLE jobs ADD COLUMN begin_at REAL;
    ALTER TABLE jobs ADD COLUMN group_id INTEGER;
    ALTER TABLE jobs ADD COLUMN max_concurrent INTEGER;
    UPDATE jobs SET dependencies = (
        SELECT json_group_array(json_array(value, 'afterok')) FROM json_each(jobs.depends_on)
    );
    ALTER TABLE jobs DROP COLUMN depends_on;
    CREATE INDEX jobs_by_group ON jobs(group_id);
    CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    """,
    # 3: conda environments and automatic retries (attempts of one job)
    """
    ALTER TABLE jobs ADD COLUMN conda_env TEXT NOT NULL DEFAULT '';
    ALTER TABLE jobs ADD COLUMN max_retries INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE jobs ADD COLUMN retry_on_timeout INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE jobs ADD COLUMN attempt INTEGER NOT NULL DEFAULT 1;
    ALTER TABLE jobs ADD COLUMN first_attempt INTEGER;
    CREATE INDEX jobs_by_first_attempt ON jobs(first_attempt);
    """,
    # 4: projects (gqueue -P, gbatch -P)
    """
    ALTER TABLE jobs ADD COLUMN project TEXT NOT NULL DEFAULT '';
    CREATE INDEX jobs_by_submitted ON jobs(submitted_at);
    """,
    # 5: environments and script bodies in their own table, one row per distinct one in a
    # submission (an array shares one): job rows shrink ~5x, so listings read less
    """
    CREATE TABLE payloads (
        id INTEGER PRIMARY KEY,
        env TEXT NOT NULL,
        script_body TEXT NOT NULL
    );
    ALTER TABLE jobs ADD COLUMN payload_id INTEGER;
    INSERT INTO payloads (id, env, script_body) SELECT id, env, script_body FROM jobs;
    UPDATE jobs SET payload_id = id;
    ALTER TABLE jobs DROP COLUMN env;
    ALTER TABLE jobs DROP COLUMN script_body;
    CREATE INDEX jobs_by_payload ON jobs(payload_id);
    """,
    # 6: each running job's processes as the daemon saw them (pid + start time + boot), so
    # only processes proven to be the job's are ever signalled; the id ranges of big
    # submissions still being written in slices (store/submissions.py)
    """
    CREATE TABLE staged_submissions (
        first_id INTEGER PRIMARY KEY,
        last_id INTEGER NOT NULL
    );
    CREATE TABLE processes (
        job_id INTEGER PRIMARY KEY,
        boot_id TEXT NOT NULL,
        wrapper_pid INTEGER NOT NULL,
        wrapper_ticks INTEGER,
        group_id INTEGER,
        group_ticks INTEGER
    );
    """,
    # 7: CPU cores as a resource, --exclusive, GPU types, an array's first id, and the
    # batch options a job needs only when it runs (arguments, output files, --signal)
    """
    ALTER TABLE jobs ADD COLUMN cpus INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE jobs ADD COLUMN exclusive INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE jobs ADD COLUMN gpu_model TEXT NOT NULL DEFAULT '';
    ALTER TABLE jobs ADD COLUMN cpu_ids TEXT NOT NULL DEFAULT '[]';
    ALTER TABLE jobs ADD COLUMN array_job_id INTEGER;
    ALTER TABLE payloads ADD COLUMN batch TEXT NOT NULL DEFAULT '{}';
    """,
    # 8: the submission each job came in (named by its first job: an array's id), so '@'
    # means every job of the last one; GPU processes an admin told the scheduler to ignore.
    # Older rows: the jobs one user submitted at the same instant were one submission.
    """
    ALTER TABLE jobs ADD COLUMN submission INTEGER;
    UPDATE jobs SET submission = (
        SELECT MIN(s.id) FROM jobs s
        WHERE s.submitted_at = jobs.submitted_at AND s.uid = jobs.uid AND s.first_attempt IS NULL
    ) WHERE first_attempt IS NULL;
    UPDATE jobs SET submission = (SELECT f.submission FROM jobs f WHERE f.id = jobs.first_attempt)
    WHERE first_attempt IS NOT NULL;
    CREATE INDEX jobs_by_submission ON jobs(submission);
    CREATE INDEX jobs_by_uid_submission ON jobs(uid, submission);
    CREATE TABLE ignored_gpu_processes (
        pid INTEGER PRIMARY KEY,
        started_at REAL,
        user TEXT NOT NULL,
        added_by TEXT NOT NULL,
        added_at REAL NOT NULL
    );
    """,
    # 9: what each job really used (peak RSS, CPU time, GPU memory and utilisation), as JSON
    # (core/usage.py), saved as it runs and at its end
    """
    ALTER TABLE jobs ADD COLUMN usage TEXT NOT NULL DEFAULT '{}';
    """,
    # 10: GPU reservations (gctl reserve): GPUs kept for one user for a while
    """
    CREATE TABLE reservations (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        user TEXT NOT NULL,
        uid INTEGER NOT NULL,
        start REAL NOT NULL,
        end REAL NOT NULL,
        gpu_ids TEXT NOT NULL,
        gpus INTEGER NOT NULL,
        created_by TEXT NOT NULL,
        created_at REAL NOT NULL,
        cancelled_at REAL
    );
    CREATE INDEX reservations_by_end ON reservations(end);
    """,
    # 11: the notification outbox (rows written in the same transaction as their event, so
    # a delivery survives kill -9; deleted once delivered or given up) and per-job e-mail
    # (--notify-email / --notify-on, Slurm's --mail-user / --mail-type)
    """
    CREATE TABLE outbox (
        id INTEGER PRIMARY KEY,
        event_id INTEGER NOT NULL,
        target TEXT NOT NULL,
        address TEXT NOT NULL DEFAULT '',
        attempts INTEGER NOT NULL DEFAULT 0,
        next_at REAL NOT NULL DEFAULT 0
    );
    CREATE INDEX outbox_by_next ON outbox(next_at);
    ALTER TABLE jobs ADD COLUMN notify_email TEXT NOT NULL DEFAULT '';
    ALTER TABLE jobs ADD COLUMN notify_on TEXT NOT NULL DEFAULT '';
    """,
    # 12: a year of history. The active queue found by its state, not by walking a user's
    # history (a partial index: the query must spell its WHERE term exactly as here,
    # ACTIVE_CLAUSE above); the longest runs found without a scan; and per-day totals of
    # ended jobs (by submission day, UTC), kept by triggers in the same transaction as the
    # job's end, so gstats reads a few thousand rows, not a million, and accounting
    # outlives the purge of the jobs themselves ([history] keep). The GPU jobs by their end,
    # for the fair-share and quota history (Store.gpu_spans spells the same terms).
    f"""
    CREATE INDEX jobs_active ON jobs(id) WHERE {ACTIVE_CLAUSE};
    CREATE INDEX jobs_by_runtime ON jobs(finished_at - started_at);
    CREATE INDEX jobs_gpu_ended ON jobs(finished_at)
        WHERE started_at IS NOT NULL AND gpu_ids != '[]';
    CREATE TABLE daily_totals (
        uid INTEGER NOT NULL,
        project TEXT NOT NULL,
        day INTEGER NOT NULL,
        state TEXT NOT NULL,
        user TEXT NOT NULL,
        jobs INTEGER NOT NULL,
        started INTEGER NOT NULL,
        wait_seconds REAL NOT NULL,
        run_seconds REAL NOT NULL,
        gpu_seconds REAL NOT NULL,
        PRIMARY KEY (uid, project, day, state)
    ) WITHOUT ROWID;
    CREATE TRIGGER job_ended AFTER UPDATE OF state ON jobs
    WHEN new.state IN ({ENDED_LIST}) AND old.state NOT IN ({ENDED_LIST})
    BEGIN {_ADD_TO_TOTALS} END;
    CREATE TRIGGER job_inserted_ended AFTER INSERT ON jobs
    WHEN new.state IN ({ENDED_LIST})
    BEGIN {_ADD_TO_TOTALS} END;
    INSERT INTO daily_totals
    SELECT uid, project, CAST(submitted_at / 86400 AS INTEGER), state, MAX(user), COUNT(*),
        COUNT(started_at), TOTAL(started_at - submitted_at),
        TOTAL(finished_at - started_at),
        TOTAL(json_array_length(gpu_ids) * (finished_at - started_at))
    FROM jobs WHERE state IN ({ENDED_LIST})
    GROUP BY uid, project, CAST(submitted_at / 86400 AS INTEGER), state;
    """,
    # 13: the Slurm executor: the Slurm job id ('123', an array task '123_4'), the node it
    # ran on, and whether it is being handed to sbatch right now (set before sbatch runs,
    # so a daemon killed in between looks for it by its mark instead of submitting again)
    """
    ALTER TABLE jobs ADD COLUMN slurm_job_id TEXT NOT NULL DEFAULT '';
    ALTER TABLE jobs ADD COLUMN node TEXT NOT NULL DEFAULT '';
    ALTER TABLE jobs ADD COLUMN slurm_handing INTEGER NOT NULL DEFAULT 0;
    """,
    # 14: jobs by their end, for "what ended in the last day" (the dashboard's default
    # queue) without a walk through a year of history
    """
    CREATE INDEX jobs_by_finished ON jobs(finished_at);
    """,
]

SCHEMA_VERSION = len(MIGRATIONS)


def statements(script: str) -> Iterator[str]:
    """A migration's statements, one at a time (a trigger's body has ';' of its own)."""
    statement = ""
    for piece in script.split(";"):
        statement += piece + ";"
        if sqlite3.complete_statement(statement):
            if statement.strip(" \n;"):
                yield statement
            statement = ""
