"""The PostgreSQL backend's SQL: every statement it runs, by name, grouped by operation.

Only text lives here; `backend` runs the statements (and owns transactions and connections) and `rows`
maps their rows to sitq's models. Every value is a bound parameter (lists travel as arrays, unnested);
the one thing written into the text is the schema, as `{s}`, which `in_schema` fills in with a quoted
identifier that `schema.validate_name` has checked. Nothing here is shared with the SQLite backend: the
dialects differ, and so do the claims (this one locks rows with ``FOR UPDATE SKIP LOCKED``).
"""

from __future__ import annotations

import functools

# The literal status values in these WHERE clauses must match the partial indexes in schema.py.


@functools.lru_cache(maxsize=512)
def in_schema(statement: str, quoted_schema: str) -> str:
    """`statement` with its tables qualified by the (already quoted) schema."""
    return statement.replace("{s}", quoted_schema)


# Change notification: sent inside the transaction that enqueues or completes, so that it is delivered
# when (and only if) that transaction commits; it carries nothing, listeners always look again.
NOTIFY = "SELECT pg_notify($1, '')"

# Enqueueing: a batch is one INSERT of unnested arrays (see rows.task_columns), numbered in batch order.
_TASK_ARRAYS = (
    "$1::text[], $2::text[], $3::text[], $4::bytea[], $5::timestamptz[], $6::timestamptz[], $7::text[],"
    " $8::int[], $9::int[], $10::text[], $11::float8[], $12::text[], $13::float8[], $14::int[], $15::int[],"
    " $16::float8[], $17::text[], $18::int[], $19::text[], $20::text[], $21::text[]"
)
_INSERT = f"""
INSERT INTO {{s}}.tasks (id, name, serializer, payload, enqueued_at, eta, queue, priority, max_attempts,
    retry, timeout, description, unique_for, concurrency_limit, rate_count, rate_period, limit_key, unmet,
    depends_on, workflow_id, unique_key, status)
SELECT id, name, serializer, payload, enqueued_at, eta, queue, priority, max_attempts, retry, timeout,
    description, unique_for, concurrency_limit, rate_count, rate_period, limit_key, unmet, depends_on::jsonb,
    workflow_id, unique_key, 'pending'
FROM unnest({_TASK_ARRAYS}) WITH ORDINALITY AS new (id, name, serializer, payload, enqueued_at, eta, queue,
    priority, max_attempts, retry, timeout, description, unique_for, concurrency_limit, rate_count,
    rate_period, limit_key, unmet, depends_on, workflow_id, unique_key, position)
ORDER BY position
"""
# A batch without parents, and its notification, in one statement: atomic without a transaction.
INSERT_AND_NOTIFY = f"WITH inserted AS ({_INSERT} RETURNING 1) SELECT pg_notify($22, '')"
INSERT = _INSERT

# Unique keys: a transaction-scoped advisory lock per key, taken in the order of the array (unnest keeps
# it; `keys.lock_ids` sorts it, so two batches never wait for each other in a cycle) and held to the end
# of the transaction; then the tasks that may hold the keys (`sitq.semantics.key_holders` picks), in
# enqueue order: pending or running, or succeeded after $2 (NULL: none). Each statement at READ
# COMMITTED sees what committed before it began, so the read sees every task that another holder of the
# lock committed: the lock is released only once its transaction's rows are visible.
LOCK_UNIQUE_KEYS = "SELECT count(pg_advisory_xact_lock(lock_id)) FROM unnest($1::bigint[]) AS lock_id"
KEY_HOLDERS = """
SELECT unique_key, id, status, finished_at FROM {s}.tasks
WHERE unique_key = ANY($1::text[])
    AND (status IN ('pending', 'in_progress') OR (status = 'success' AND finished_at > $2))
ORDER BY seq
"""

# Dependencies: the parents a batch names, as stored before it, locked against a concurrent change of
# status (an ending parent updates its row first, so it waits for this batch's edges, or this batch for
# its end); the batch's edges, by seq.
PARENTS = "SELECT id, seq, status, finished_at FROM {s}.tasks WHERE id = ANY($1::text[]) FOR SHARE"
DEPEND = """
INSERT INTO {s}.dependencies (parent_seq, task_seq)
SELECT parent.seq, child.seq
FROM unnest($1::text[], $2::text[]) AS edge (parent_id, child_id)
JOIN {s}.tasks AS parent ON parent.id = edge.parent_id
JOIN {s}.tasks AS child ON child.id = edge.child_id
"""
# The pending tasks that depend on a task, directly or through other pending tasks, as edges; each task
# is reached once (UNION), so the cost follows the size of that subgraph, not the number of paths.
DEPENDENTS = """
WITH RECURSIVE reached (seq) AS (
    VALUES ($1::bigint)
    UNION
    SELECT dependencies.task_seq FROM reached
    JOIN {s}.dependencies ON dependencies.parent_seq = reached.seq
    JOIN {s}.tasks ON tasks.seq = dependencies.task_seq
    WHERE tasks.status = 'pending'
)
SELECT dependencies.parent_seq, tasks.seq, tasks.id FROM reached
JOIN {s}.dependencies ON dependencies.parent_seq = reached.seq
JOIN {s}.tasks ON tasks.seq = dependencies.task_seq
WHERE tasks.status = 'pending'
"""
CANCEL_DEPENDENTS = """
UPDATE {s}.tasks SET status = 'cancelled', finished_at = $1, error = cancelled.error
FROM unnest($2::bigint[], $3::text[]) AS cancelled (seq, error)
WHERE tasks.seq = cancelled.seq AND tasks.status = 'pending'
"""

# Lost leases: those that ran out before $1, whose workers are presumed dead. The rows are locked as
# they are read, skipping any another transaction holds (its claim is recovering them, or their worker
# is completing them); the history row is written from the row as it was. A claim ($2 false) takes back
# only the tasks that go pending again; recover_lost ($2 true) all of them. What an attempt left
# (result, traceback) is forgotten, as when another attempt ends.
RECOVER_LOST = """
WITH lost AS (
    SELECT seq, attempts, worker_id, started_at, lease_expires_at FROM {s}.tasks
    WHERE status = 'in_progress' AND lease_expires_at < $1
        AND ($2 OR (NOT cancel_requested AND attempts < max_attempts))
    ORDER BY seq
    FOR UPDATE SKIP LOCKED
), history AS (
    INSERT INTO {s}.attempts (task_seq, attempt, worker_id, started_at, finished_at, outcome, error)
    SELECT seq, attempts, worker_id, started_at, lease_expires_at, 'lost', $3 || worker_id || $4
    FROM lost ORDER BY seq
)
UPDATE {s}.tasks SET
    status = CASE
        WHEN cancel_requested THEN 'cancelled' WHEN tasks.attempts >= max_attempts THEN 'failed'
        ELSE 'pending'
    END,
    finished_at = CASE
        WHEN cancel_requested OR tasks.attempts >= max_attempts THEN tasks.lease_expires_at ELSE finished_at
    END,
    error = CASE WHEN cancel_requested THEN $6 ELSE
        $3 || tasks.worker_id || $4 || CASE WHEN tasks.attempts >= max_attempts THEN $5 ELSE '' END
    END,
    worker_id = NULL, lease_expires_at = NULL, cancel_requested = false, result = NULL, traceback = NULL
FROM lost WHERE tasks.seq = lost.seq
RETURNING tasks.seq, tasks.id, tasks.status, tasks.finished_at
"""

# Claiming: the columns a claim returns, for `rows.reserved`.
_RESERVED_COLUMNS = (
    "tasks.seq, tasks.id, tasks.name, tasks.payload, tasks.serializer, tasks.attempts, tasks.enqueued_at,"
    " tasks.eta, tasks.queue, tasks.priority, tasks.max_attempts, tasks.retry, tasks.timeout,"
    " tasks.description, tasks.unique_for, tasks.concurrency_limit, tasks.rate_count, tasks.rate_period,"
    " tasks.depends_on"
)
_RESERVE = (
    "UPDATE {s}.tasks SET status = 'in_progress', attempts = tasks.attempts + 1, worker_id = $1,"
    " started_at = $2, lease_expires_at = $3"
)
# A batch in one statement: the due, ready tasks in claim order, locked as they are read; a row that
# another claimer holds is skipped, not waited for. One queue compares with `=`, so that the scan walks
# tasks_ready in claim order and stops after $4 rows.
_CLAIM = f"""
WITH chosen AS (
    SELECT seq FROM {{s}}.tasks
    WHERE status = 'pending' AND unmet = 0 AND limit_key IS NULL AND eta <= $2 AND queue {{queues}}
    ORDER BY priority DESC, eta, seq
    LIMIT $4
    FOR UPDATE SKIP LOCKED
)
{_RESERVE}
FROM chosen WHERE tasks.seq = chosen.seq
RETURNING {_RESERVED_COLUMNS}
"""
CLAIM_ONE_QUEUE = _CLAIM.replace("{queues}", "= $5")
CLAIM_QUEUES = _CLAIM.replace("{queues}", "= ANY($5::text[])")
# Tasks with a limit key are claimed apart, in a transaction (see `sitq_postgres.limits`): these are the
# first claimable tasks without a key, locked, for it to merge with those its limits admit; then the
# claim of the chosen ones, by seq.
_CANDIDATES = """
SELECT seq, priority, eta FROM {s}.tasks
WHERE status = 'pending' AND unmet = 0 AND limit_key IS NULL AND eta <= $1 AND queue {queues}
ORDER BY priority DESC, eta, seq
LIMIT $2
FOR UPDATE SKIP LOCKED
"""
CANDIDATES_ONE_QUEUE = _CANDIDATES.replace("{queues}", "= $3")
CANDIDATES_QUEUES = _CANDIDATES.replace("{queues}", "= ANY($3::text[])")
CLAIM_SEQS = (
    f"{_RESERVE} WHERE seq = ANY($4::bigint[]) AND status = 'pending' AND unmet = 0"
    f" RETURNING {_RESERVED_COLUMNS}"
)

# Limits per key (`sitq.limiting`). `keys` steps through the keys that have ready tasks, one probe of
# tasks_limited each (a loose index scan, written with ORDER BY ... LIMIT 1, which the planner makes that
# probe even before the table has statistics, where it may plan min() as a scan of the index); each key
# ($4: only these, or NULL for all) gives its first $2 due tasks of the queues $3 in claim order, with
# its running tasks (leases not expired at $1) and its remembered starts (as two arrays in one order, so
# that they pair up), so a key's held-back tasks beyond those are never read.
_LIMITED = "status = 'pending' AND unmet = 0 AND limit_key IS NOT NULL"
_LIMIT_KEYS = f"""
WITH RECURSIVE keys (key) AS (
    SELECT (SELECT limit_key FROM {{s}}.tasks WHERE {_LIMITED} ORDER BY limit_key LIMIT 1)
    UNION ALL
    SELECT (
        SELECT limit_key FROM {{s}}.tasks WHERE {_LIMITED} AND limit_key > keys.key ORDER BY limit_key LIMIT 1
    )
    FROM keys WHERE keys.key IS NOT NULL
)
"""
_KEY_STATE = """
    (SELECT count(*) FROM {s}.tasks AS running WHERE running.status = 'in_progress'
        AND running.limit_key = keys.key AND running.lease_expires_at >= $1) AS running,
    (SELECT array_agg(started_at ORDER BY started_at, until) FROM {s}.limit_starts
        WHERE limit_key = keys.key) AS started,
    (SELECT array_agg(until ORDER BY started_at, until) FROM {s}.limit_starts
        WHERE limit_key = keys.key) AS until
"""
_CANDIDATE_COLUMNS = (
    "task.seq, keys.key, task.priority, task.eta, task.concurrency_limit, task.rate_count, task.rate_period"
)
LIMITED_CANDIDATES = f"""{_LIMIT_KEYS}
SELECT {_CANDIDATE_COLUMNS}, {_KEY_STATE}
FROM keys CROSS JOIN LATERAL (
    SELECT * FROM {{s}}.tasks
    WHERE limit_key = keys.key AND {_LIMITED} AND eta <= $1 AND queue = ANY($3::text[])
    ORDER BY priority DESC, eta, seq LIMIT $2
) AS task
WHERE keys.key IS NOT NULL AND ($4::text[] IS NULL OR keys.key = ANY($4::text[]))
"""
# For next_due: each key's earliest ready task of the queues $2, with every running task of its key
# ($1 is -infinity: an expiring lease wakes a worker anyway) and its starts.
LIMITED_FIRST = f"""{_LIMIT_KEYS}
SELECT {_CANDIDATE_COLUMNS}, {_KEY_STATE}
FROM keys CROSS JOIN LATERAL (
    SELECT * FROM {{s}}.tasks
    WHERE limit_key = keys.key AND {_LIMITED} AND queue = ANY($2::text[])
    ORDER BY eta, seq LIMIT 1
) AS task
WHERE keys.key IS NOT NULL
"""
# One task, if it is ready and has a limit key (for claim_task), with its key's state.
LIMITED_TASK = f"""
SELECT {_CANDIDATE_COLUMNS}, {_KEY_STATE}
FROM {{s}}.tasks AS task CROSS JOIN LATERAL (SELECT task.limit_key AS key) AS keys
WHERE task.id = $2 AND task.{_LIMITED.replace(" AND ", " AND task.")}
"""
# Claims of a key are serialized by a transaction-scoped advisory lock on it (named after the schema
# and the key, $1 || key), taken before its counts are read: a claim skips a key another is claiming
# (try, never wait), and `claim_task`, which takes one key, waits for it.
LOCK_KEYS = (
    "SELECT key FROM unnest($2::text[]) AS key"
    " WHERE pg_try_advisory_xact_lock(hashtextextended($1 || key, 0))"
)
LOCK_KEY = "SELECT pg_advisory_xact_lock(hashtextextended($1 || $2, 0))"
# The starts of rate-limited tasks just claimed; those of the claimed keys past their period, forgotten.
ADD_STARTS = """
WITH forgotten AS (DELETE FROM {s}.limit_starts WHERE limit_key = ANY($1::text[]) AND until <= $2)
INSERT INTO {s}.limit_starts (limit_key, started_at, until)
SELECT * FROM unnest($1::text[], $3::timestamptz[], $4::timestamptz[])
"""

# Claims one task by id, if it is ready, whatever its eta.
CLAIM_TASK = f"{_RESERVE} WHERE id = $4 AND status = 'pending' AND unmet = 0 RETURNING {_RESERVED_COLUMNS}"

# Renewing leases: extends those the worker still holds; returns whether each was asked to cancel.
RENEW = """
UPDATE {s}.tasks SET lease_expires_at = $1
WHERE id = ANY($2::text[]) AND status = 'in_progress' AND worker_id = $3
RETURNING id, cancel_requested
"""

# Releasing tasks a worker holds without running them: pending again, due at once, the attempt not
# counted; a task asked to cancel ends cancelled instead, its attempt counted.
RELEASE = """
WITH held AS (
    SELECT seq, attempts, worker_id, started_at FROM {s}.tasks
    WHERE id = ANY($2::text[]) AND status = 'in_progress' AND worker_id = $3
    ORDER BY seq
    FOR UPDATE
), history AS (
    INSERT INTO {s}.attempts (task_seq, attempt, worker_id, started_at, finished_at, outcome, error)
    SELECT seq, attempts, worker_id, started_at, $1, 'released', NULL FROM held ORDER BY seq
)
UPDATE {s}.tasks SET
    status = CASE WHEN cancel_requested THEN 'cancelled' ELSE 'pending' END,
    eta = CASE WHEN cancel_requested THEN eta ELSE $1 END,
    attempts = CASE WHEN cancel_requested THEN tasks.attempts ELSE tasks.attempts - 1 END,
    finished_at = CASE WHEN cancel_requested THEN $1 ELSE finished_at END,
    error = CASE WHEN cancel_requested THEN $4 ELSE error END,
    result = CASE WHEN cancel_requested THEN NULL ELSE result END,
    traceback = CASE WHEN cancel_requested THEN NULL ELSE traceback END,
    worker_id = NULL, lease_expires_at = NULL, cancel_requested = false
FROM held WHERE tasks.seq = held.seq
RETURNING tasks.seq, tasks.id, tasks.status
"""

# Cancelling: a pending task ends at once, a running one is asked to stop (see `RENEW`).
CANCEL = """
UPDATE {s}.tasks SET
    status = CASE status WHEN 'pending' THEN 'cancelled' ELSE status END,
    finished_at = CASE status WHEN 'pending' THEN $2 ELSE finished_at END,
    cancel_requested = CASE status WHEN 'in_progress' THEN true ELSE cancel_requested END
WHERE id = $1 AND status IN ('pending', 'in_progress')
RETURNING seq, status
"""
# A task's status, when a change found nothing to do.
STATUS = "SELECT status FROM {s}.tasks WHERE id = $1"

# Recording ended attempts, a batch of unnested arrays (see rows.outcome_columns), fenced: an outcome
# applies only to a task still in progress for the worker that sent it. The history rows, the tasks'
# rows, and the successes meeting their pending dependents' `unmet`, in one statement, which also
# notifies channel $12 when it applies any (PostgreSQL sends a transaction's identical notifications
# once). Returns the tasks that ended without success and have dependents, whose cascade the backend
# walks.
COMPLETE = """
WITH given AS (
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[],
        $6::timestamptz[], $7::timestamptz[], $8::bytea[], $9::text[], $10::text[], $11::timestamptz[])
        WITH ORDINALITY
    AS given (task_id, worker_id, status, outcome, finished_at, finished_at_or_null, retry_at, result,
        error, traceback, began, position)
), held AS (
    SELECT tasks.seq, tasks.attempts, coalesce(given.began, tasks.started_at) AS started_at, given.*
    FROM given
    JOIN {s}.tasks ON tasks.id = given.task_id AND tasks.worker_id = given.worker_id
    WHERE tasks.status = 'in_progress'
    ORDER BY tasks.seq
    FOR UPDATE OF tasks
), history AS (
    INSERT INTO {s}.attempts (task_seq, attempt, worker_id, started_at, finished_at, outcome, error)
    SELECT seq, attempts, worker_id, started_at, finished_at, outcome, error FROM held ORDER BY position
), ended AS (
    UPDATE {s}.tasks SET status = held.status, eta = coalesce(held.retry_at, tasks.eta),
        started_at = held.started_at, finished_at = held.finished_at_or_null, error = held.error,
        result = held.result, traceback = held.traceback, worker_id = NULL, lease_expires_at = NULL,
        cancel_requested = false
    FROM held WHERE tasks.seq = held.seq
    RETURNING tasks.seq, tasks.id, tasks.status, held.finished_at, held.position, pg_notify($12, '')
), met AS (
    UPDATE {s}.tasks SET unmet = tasks.unmet - succeeded.parents
    FROM (
        SELECT dependencies.task_seq, count(*) AS parents FROM ended
        JOIN {s}.dependencies ON dependencies.parent_seq = ended.seq
        WHERE ended.status = 'success'
        GROUP BY dependencies.task_seq
    ) AS succeeded
    WHERE tasks.seq = succeeded.task_seq AND tasks.status = 'pending'
)
SELECT seq, id, status, finished_at FROM ended
WHERE status IN ('failed', 'timeout', 'cancelled')
    AND EXISTS (SELECT 1 FROM {s}.dependencies WHERE dependencies.parent_seq = ended.seq)
ORDER BY position
"""

# Reading: the columns of `rows.record`; a task's attempts in the order they ended.
_RECORD_COLUMNS = (
    "SELECT id, name, status, serializer, enqueued_at, eta, attempts, started_at, finished_at, worker_id,"
    " result, error, traceback, cancel_requested, depends_on, workflow_id, unique_key, limit_key, queue,"
    " priority, max_attempts, retry, timeout, description, unique_for, concurrency_limit, rate_count,"
    " rate_period FROM {s}.tasks"
)
GET = f"{_RECORD_COLUMNS} WHERE id = $1"
GET_MANY = f"{_RECORD_COLUMNS} WHERE id = ANY($1::text[]) ORDER BY seq"
HISTORY = """
SELECT attempts.attempt, attempts.worker_id, attempts.started_at, attempts.finished_at, attempts.outcome,
    attempts.error
FROM {s}.tasks JOIN {s}.attempts ON attempts.task_seq = tasks.seq WHERE tasks.id = $1 ORDER BY attempts.id
"""

# Inspection and administration. Listing walks `seq` (enqueue order) from the cursor on.
CURSOR = "SELECT seq FROM {s}.tasks WHERE id = $1"
LIST = f"""{_RECORD_COLUMNS}
WHERE seq > $1 AND status = ANY($2::text[]) AND ($3::text[] IS NULL OR queue = ANY($3::text[]))
ORDER BY seq LIMIT $4
"""
# In the order each pair first appears in enqueue order (`Backend.stats`).
STATS = "SELECT queue, status, count(*) FROM {s}.tasks GROUP BY queue, status ORDER BY min(seq)"
# Attempts count from zero again; `unmet` is counted afresh from the parents as they are now (a parent no
# longer stored was finished and purged: it counts as met, as `Backend.requeue` says).
REQUEUE = """
UPDATE {s}.tasks SET status = 'pending', eta = $2, attempts = 0, started_at = NULL, finished_at = NULL,
    error = NULL, result = NULL, traceback = NULL,
    unmet = (
        SELECT count(DISTINCT parents.id)
        FROM jsonb_array_elements_text(coalesce(tasks.depends_on, '[]'::jsonb)) AS parents (id)
        WHERE EXISTS (
            SELECT 1 FROM {s}.tasks AS parent WHERE parent.id = parents.id AND parent.status <> 'success'
        )
    )
WHERE id = $1 AND status IN ('failed', 'timeout', 'cancelled')
RETURNING seq
"""
# Finished before the cutoff, and no pending task depends on it; history and edges go with it (ON DELETE
# CASCADE).
PURGE = """
DELETE FROM {s}.tasks WHERE finished_at < $1
    AND ($2::text[] IS NULL OR queue = ANY($2::text[]))
    AND NOT EXISTS (
        SELECT 1 FROM {s}.dependencies JOIN {s}.tasks AS child ON child.seq = dependencies.task_seq
        WHERE dependencies.parent_seq = tasks.seq AND child.status = 'pending'
    )
"""

# How many of a workflow's tasks are in each status.
WORKFLOW_COUNTS = "SELECT status, count(*) FROM {s}.tasks WHERE workflow_id = $1 GROUP BY status"

# Waiting: per queue, the earliest ready eta (of tasks without a limit key: for those, `LIMITED_FIRST`)
# and the earliest lease expiry, one index probe each.
NEXT_DUE = """
SELECT min(due) FROM unnest($1::text[]) AS queues (name)
CROSS JOIN LATERAL (
    SELECT (
        SELECT eta FROM {s}.tasks
        WHERE status = 'pending' AND unmet = 0 AND limit_key IS NULL AND queue = queues.name
        ORDER BY eta LIMIT 1
    )
    UNION ALL
    SELECT (
        SELECT lease_expires_at FROM {s}.tasks WHERE status = 'in_progress' AND queue = queues.name
        ORDER BY lease_expires_at LIMIT 1
    )
) AS earliest (due)
"""

# Describing and compacting: the settings that decide durability, and the space sitq's tables take.
DESCRIBE = (
    "SELECT current_setting('synchronous_commit'), current_setting('fsync'),"
    " current_setting('server_version'), current_database()"
)
TABLES = ("tasks", "dependencies", "attempts", "migrations")
SIZE = """
SELECT coalesce(sum(pg_total_relation_size(format('%I.%I', $1::text, name)::regclass)), 0)::bigint
FROM unnest($2::text[]) AS tables (name)
"""
# VACUUM takes no parameters: the backend fills in the quoted schema and a table name from `TABLES`.
VACUUM = "VACUUM (ANALYZE) {s}.{table}"

# Transactional enqueue: the application's connection must reach this database and this schema.
SAME_STORE = "SELECT current_database(), (SELECT max(version) FROM {s}.migrations)"

# Schedules (periodic tasks). A fire moves a schedule on only if it is still the version the caller read
# (its id), not paused, and due exactly when the caller saw it: of racing workers, one updates the row,
# and the others, once its transaction commits, find it no longer matching and change nothing.
_SCHEDULE_COLUMNS = (
    "id, name, cron, timezone, catch_up, task_name, payload, serializer, options, next_run, paused, last_run"
)
PUT_SCHEDULE = f"""
INSERT INTO {{s}}.schedules ({_SCHEDULE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
ON CONFLICT (name) DO UPDATE SET
    id = excluded.id, cron = excluded.cron, timezone = excluded.timezone, catch_up = excluded.catch_up,
    task_name = excluded.task_name, payload = excluded.payload, serializer = excluded.serializer,
    options = excluded.options, next_run = excluded.next_run, paused = excluded.paused,
    last_run = excluded.last_run
"""
DELETE_SCHEDULE = "DELETE FROM {s}.schedules WHERE name = $1"
LIST_SCHEDULES = f'SELECT {_SCHEDULE_COLUMNS} FROM {{s}}.schedules ORDER BY name COLLATE "C"'
PAUSE_SCHEDULE = "UPDATE {s}.schedules SET paused = $2, next_run = coalesce($3, next_run) WHERE name = $1"
FIRE_SCHEDULE = (
    "UPDATE {s}.schedules SET next_run = $3, last_run = coalesce($4, last_run)"
    " WHERE id = $1 AND next_run = $2 AND NOT paused"
)
