"""The SQLite backend's SQL: every statement it runs, by name, grouped by operation.

Only text lives here; `backend` runs the statements (and owns transactions and connection handling) and
`rows` maps their rows to sitq's models. Parameters are bound, never formatted in: the only values
written into the text are fixed fragments of this module and, in `claim_sql`, placeholder numbers.
Fragments that only build statements keep a leading underscore.
"""

from __future__ import annotations

import functools

# The literal status values in these WHERE clauses must match the partial indexes in schema.py.
# A task's payload, result and traceback live beside its row (see schema version 4), so that the
# statements that move a task along rewrite its small row only.

# Enqueueing. A batch's rows are numbered in the write that stores them (see transitions.store); a
# lone row is numbered by SQLite (a NULL seq).
LAST_SEQ = "SELECT coalesce(max(seq), 0) FROM tasks"
INSERT = (
    "INSERT INTO tasks (seq, id, name, status, serializer, enqueued_at, eta, queue, priority,"
    " max_attempts, retry, timeout, description, unique_for, concurrency_limit, rate_count, rate_period,"
    " limit_key, unmet, depends_on, workflow_id, unique_key)"
    " VALUES (?, ?, ?, 'pending', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
INSERT_PAYLOAD = "INSERT INTO payloads (task_seq, payload) VALUES (?, ?)"
# The tasks that may hold one of a batch's unique keys (`sitq.semantics.key_holders` picks), in enqueue
# order: pending or running, or succeeded after :since (NULL: none). The IS NOT NULL term is the partial
# index's own, so that the planner uses tasks_by_unique_key.
KEY_HOLDERS = """
SELECT unique_key, id, status, finished_at FROM tasks
WHERE unique_key IS NOT NULL AND unique_key IN (SELECT value FROM json_each(:keys))
    AND (status IN ('pending', 'in_progress') OR (status = 'success' AND finished_at > :since))
ORDER BY seq
"""

# What an attempt left (a result, a traceback), beside its task's row: set, and forgotten.
SET_RESULT = (
    "INSERT INTO results (task_seq, result, traceback) VALUES (?, ?, ?)"
    " ON CONFLICT (task_seq) DO UPDATE SET result = excluded.result, traceback = excluded.traceback"
)
FORGET_RESULTS = "DELETE FROM results WHERE task_seq IN (SELECT value FROM json_each(?))"
# The option columns, in the order `sitq.semantics.task_options` takes them.
_OPTIONS = (
    "queue, priority, max_attempts, retry, timeout, description, unique_for, concurrency_limit, rate_count,"
    " rate_period"
)

# Dependencies: the parents a batch names, as stored before it; its edges, by seq; a success meeting one
# of each child's unmet parents.
PARENTS = "SELECT id, seq, status, finished_at FROM tasks WHERE id IN (SELECT value FROM json_each(:parents))"
DEPEND = (
    "INSERT INTO dependencies (parent_seq, task_seq)"
    " SELECT parent.seq, child.seq FROM tasks AS parent, tasks AS child WHERE parent.id = ? AND child.id = ?"
)
MET = (
    "UPDATE tasks SET unmet = unmet - 1"
    " WHERE seq IN (SELECT task_seq FROM dependencies WHERE parent_seq = ?) AND status = 'pending'"
)
# The pending tasks that depend on a task, directly or through other pending tasks, as edges; each task
# is reached once (UNION), so the cost follows the size of that subgraph, not the number of paths.
DEPENDENTS = """
WITH RECURSIVE reached (seq) AS (
    VALUES (?)
    UNION
    SELECT dependencies.task_seq FROM reached
    JOIN dependencies ON dependencies.parent_seq = reached.seq
    JOIN tasks ON tasks.seq = dependencies.task_seq
    WHERE tasks.status = 'pending'
)
SELECT dependencies.parent_seq, tasks.seq, tasks.id FROM reached
JOIN dependencies ON dependencies.parent_seq = reached.seq
JOIN tasks ON tasks.seq = dependencies.task_seq
WHERE tasks.status = 'pending'
"""
CANCEL_DEPENDENT = (
    "UPDATE tasks SET status = 'cancelled', finished_at = ?, error = ? WHERE seq = ? AND status = 'pending'"
)

# Recovering lost leases: those that ran out before :now, whose workers are presumed dead. The history
# row is written first, from the row as it still is; it doubles as the check, so the common case (nothing
# lost) costs one index probe. A claim (:end = 0) takes back only the tasks that go pending again;
# recover_lost (:end = 1) all of them.
_EXPIRED = (
    "status = 'in_progress' AND lease_expires_at < :now"
    " AND (:end OR (NOT cancel_requested AND attempts < max_attempts))"
)
# A history row: `ended` numbers the task's attempts in the order they end.
_ADD_ATTEMPT = """
INSERT INTO attempts (task_seq, ended, attempt, worker_id, started_at, finished_at, outcome, error)
SELECT seq, coalesce((SELECT max(ended) FROM attempts WHERE task_seq = tasks.seq), 0) + 1,
"""
LOST_HISTORY = f"""{_ADD_ATTEMPT}
    attempts, worker_id, started_at, lease_expires_at, 'lost',
    :lost || worker_id || :lost_after
FROM tasks WHERE {_EXPIRED}
RETURNING task_seq
"""
RECOVER_LOST = f"""
UPDATE tasks SET
    status = CASE
        WHEN cancel_requested THEN 'cancelled' WHEN attempts >= max_attempts THEN 'failed' ELSE 'pending'
    END,
    finished_at = CASE
        WHEN cancel_requested OR attempts >= max_attempts THEN lease_expires_at ELSE finished_at
    END,
    error = CASE WHEN cancel_requested THEN :cancelled ELSE
        :lost || worker_id || :lost_after
        || CASE WHEN attempts >= max_attempts THEN :no_attempts ELSE '' END
    END,
    worker_id = NULL, lease_expires_at = NULL, cancel_requested = 0
WHERE {_EXPIRED}
RETURNING seq, id, status, finished_at
"""

# Claiming: the columns a claim sets, and those it returns for `rows.reserved`.
_RESERVE = (
    "UPDATE tasks SET status = 'in_progress', attempts = attempts + 1, worker_id = :worker_id,"
    " started_at = :now, lease_expires_at = :expires"
)
_RESERVED_COLUMNS = (
    "RETURNING seq, id, name, (SELECT payload FROM payloads WHERE task_seq = tasks.seq), serializer,"
    f" attempts, enqueued_at, eta, {_OPTIONS}, depends_on"
)
# Claims one task by id, if it is ready.
CLAIM_TASK = f"{_RESERVE} WHERE id = :task_id AND status = 'pending' AND unmet = 0 {_RESERVED_COLUMNS}"
# One arm per queue, each walking tasks_ready_by_priority in claim order; SQLite merges the arms and
# stops after `limit` rows, so a claim reads about `limit` rows however many tasks the file holds (plus
# the higher-priority tasks not yet due that it steps over). A compound SELECT has at most 500 arms.
# INDEXED BY: left to itself, the planner prefers tasks_ready_by_eta's range on eta, then sorts every due
# task of the queue to find the first `limit`.
MERGED_QUEUES = 100
# Tasks with a limit key are claimed apart (see `LIMITED_CANDIDATES`): this index leaves them out.
_CLAIM_ARM = (
    "SELECT seq, priority, eta FROM tasks INDEXED BY tasks_ready_by_priority"
    " WHERE status = 'pending' AND unmet = 0 AND limit_key IS NULL AND queue = :q{} AND eta <= :now"
)
_CLAIM_MANY_QUEUES = (
    "SELECT seq, priority, eta FROM tasks INDEXED BY tasks_ready_by_priority"
    " WHERE status = 'pending' AND unmet = 0 AND limit_key IS NULL"
    " AND queue IN (SELECT value FROM json_each(:queues)) AND eta <= :now"
)


@functools.lru_cache(maxsize=32)
def candidates_sql(queues: int) -> str:
    """The first `:limit` claimable tasks without a limit key, of this many distinct queues, in claim
    order: (seq, priority, eta)."""
    if queues <= MERGED_QUEUES:
        candidates = " UNION ALL ".join(_CLAIM_ARM.format(index) for index in range(queues))
    else:
        candidates = _CLAIM_MANY_QUEUES
    # The ORDER BY of the compound itself, so that SQLite merges the arms (each already in claim order).
    return f"{candidates} ORDER BY priority DESC, eta, seq LIMIT :limit"


@functools.lru_cache(maxsize=32)
def claim_sql(queues: int) -> str:
    """The claim for this many distinct queues, when no task with a limit key may start."""
    return f"{_RESERVE} WHERE seq IN (SELECT seq FROM ({candidates_sql(queues)})) {_RESERVED_COLUMNS}"


# Claims the tasks chosen by seq (the ones `sitq.limiting.admit` let start, and others beside them).
CLAIM_SEQS = (
    f"{_RESERVE} WHERE seq IN (SELECT value FROM json_each(:seqs)) AND status = 'pending' {_RESERVED_COLUMNS}"
)

# Limits per key (`sitq.limiting`). `keys` steps through the keys that have ready tasks, one probe of
# tasks_limited_by_key each (a loose index scan), and each key gives its first `:limit` due tasks of the
# claimed queues in claim order, so a key's held-back tasks beyond those are never read.
_LIMITED = "status = 'pending' AND unmet = 0 AND limit_key IS NOT NULL"
_LIMIT_KEYS = f"""
WITH RECURSIVE keys (key) AS (
    SELECT min(limit_key) FROM tasks WHERE {_LIMITED}
    UNION ALL
    SELECT (SELECT min(limit_key) FROM tasks WHERE {_LIMITED} AND limit_key > keys.key)
    FROM keys WHERE keys.key IS NOT NULL
)
"""
# A candidate, and how many tasks of its key run with a lease not expired at :now (a dead worker's
# slot frees then), read through tasks_running_by_key.
_CANDIDATE_COLUMNS = (
    "tasks.seq, tasks.limit_key, tasks.priority, tasks.eta, tasks.concurrency_limit, tasks.rate_count,"
    " tasks.rate_period, (SELECT count(*) FROM tasks AS running WHERE running.status = 'in_progress'"
    " AND running.limit_key = tasks.limit_key AND running.lease_expires_at >= :now)"
)
LIMITED_CANDIDATES = f"""{_LIMIT_KEYS}
SELECT {_CANDIDATE_COLUMNS} FROM keys JOIN tasks ON tasks.seq IN (
    SELECT seq FROM tasks INDEXED BY tasks_limited_by_key
    WHERE limit_key = keys.key AND {_LIMITED} AND eta <= :now
        AND queue IN (SELECT value FROM json_each(:queues))
    ORDER BY priority DESC, eta, seq LIMIT :limit
)
"""
# For next_due: each key's earliest ready task of the queues (:now far back: every running task counts).
LIMITED_FIRST = f"""{_LIMIT_KEYS}
SELECT {_CANDIDATE_COLUMNS} FROM keys JOIN tasks ON tasks.seq = (
    SELECT seq FROM tasks WHERE limit_key = keys.key AND {_LIMITED}
        AND queue IN (SELECT value FROM json_each(:queues))
    ORDER BY eta, seq LIMIT 1
)
"""
# One task, if it is ready and has a limit key (for claim_task).
LIMITED_TASK = f"SELECT {_CANDIDATE_COLUMNS} FROM tasks WHERE id = :task_id AND {_LIMITED}"
FORGET_STARTS = "DELETE FROM limit_starts WHERE until <= :now"
STARTS = "SELECT limit_key, started_at, until FROM limit_starts"
ADD_START = "INSERT INTO limit_starts (limit_key, started_at, until) VALUES (?, ?, ?)"


# Renewing leases: extends those the worker still holds; returns whether each was asked to cancel.
RENEW = """
UPDATE tasks SET lease_expires_at = :expires
WHERE id IN (SELECT value FROM json_each(:task_ids)) AND status = 'in_progress' AND worker_id = :worker_id
RETURNING id, cancel_requested
"""

# Releasing tasks a worker holds without running them: pending again, the attempt not counted.
_HELD = (
    "FROM tasks WHERE id IN (SELECT value FROM json_each(:task_ids))"
    " AND status = 'in_progress' AND worker_id = :worker_id"
)
RELEASE_HISTORY = f"""{_ADD_ATTEMPT}
    attempts, worker_id, started_at, :now, 'released', NULL {_HELD}
"""
# A task asked to cancel ends cancelled instead, its attempt counted.
RELEASE = f"""
UPDATE tasks SET
    status = CASE WHEN cancel_requested THEN 'cancelled' ELSE 'pending' END,
    eta = CASE WHEN cancel_requested THEN eta ELSE :now END,
    attempts = CASE WHEN cancel_requested THEN attempts ELSE attempts - 1 END,
    finished_at = CASE WHEN cancel_requested THEN :now ELSE finished_at END,
    error = CASE WHEN cancel_requested THEN :cancelled ELSE error END,
    worker_id = NULL, lease_expires_at = NULL, cancel_requested = 0
WHERE seq IN (SELECT seq {_HELD})
RETURNING seq, id, status
"""

# Cancelling: a pending task ends at once, a running one is asked to stop (see `RENEW`).
CANCEL = """
UPDATE tasks SET
    status = CASE status WHEN 'pending' THEN 'cancelled' ELSE status END,
    finished_at = CASE status WHEN 'pending' THEN :now ELSE finished_at END,
    cancel_requested = CASE status WHEN 'in_progress' THEN 1 ELSE cancel_requested END
WHERE id = :task_id AND status IN ('pending', 'in_progress')
RETURNING seq, status
"""
# A task's status, when a change found nothing to do.
STATUS = "SELECT status FROM tasks WHERE id = ?"

# Recording an ended attempt (see rows.outcome_params): its history row, then its task's row.
COMPLETE_HISTORY = f"""{_ADD_ATTEMPT}
    attempts, worker_id, coalesce(:started_at, started_at), :finished_at, :outcome, :error
FROM tasks WHERE id = :task_id AND status = 'in_progress' AND worker_id = :worker_id
"""
COMPLETE = """
UPDATE tasks SET status = :status, eta = coalesce(:retry_at, eta), finished_at = :finished_at_or_null,
    started_at = coalesce(:started_at, started_at), error = :error, worker_id = NULL, lease_expires_at = NULL,
    cancel_requested = 0
WHERE id = :task_id AND status = 'in_progress' AND worker_id = :worker_id
RETURNING seq, status
"""

# Reading: the columns of `rows.record`; a task's attempts in the order they ended.
_RECORD_COLUMNS = (
    "SELECT id, name, status, serializer, enqueued_at, eta, attempts, started_at, finished_at, worker_id,"
    " result, error, traceback, cancel_requested, depends_on, workflow_id, unique_key, limit_key,"
    f" {_OPTIONS} FROM tasks LEFT JOIN results ON results.task_seq = tasks.seq"
)
GET = f"{_RECORD_COLUMNS} WHERE id = ?"
HISTORY = """
SELECT attempts.attempt, attempts.worker_id, attempts.started_at, attempts.finished_at, attempts.outcome,
    attempts.error
FROM tasks JOIN attempts ON attempts.task_seq = tasks.seq WHERE tasks.id = ? ORDER BY attempts.ended
"""

# Inspection and administration. Listing walks the rowid (enqueue order) from the cursor on.
CURSOR = "SELECT seq FROM tasks WHERE id = ?"
LIST = (
    f"{_RECORD_COLUMNS} WHERE seq > :after"
    " AND status IN (SELECT value FROM json_each(:statuses))"
    " AND (:queues IS NULL OR queue IN (SELECT value FROM json_each(:queues)))"
    " ORDER BY seq LIMIT :limit"
)
# In the order each pair first appears in enqueue order (`Backend.stats`).
STATS = "SELECT queue, status, count(*) FROM tasks GROUP BY queue, status ORDER BY min(seq)"
# Attempts count from zero again; a parent's status did not change, so `unmet` is counted afresh from the
# parents as they are now (a parent no longer stored was finished and purged: it counts as met, as
# `Backend.requeue` says). A task that was cancelled by a cascade missed the decrements of parents
# succeeding meanwhile, hence the recount.
REQUEUE = """
UPDATE tasks SET status = 'pending', eta = :now, attempts = 0, started_at = NULL, finished_at = NULL,
    error = NULL,
    unmet = (
        SELECT count(DISTINCT parents.value) FROM json_each(coalesce(tasks.depends_on, '[]')) AS parents
        WHERE EXISTS (SELECT 1 FROM tasks AS parent WHERE parent.id = parents.value
            AND parent.status != 'success')
    )
WHERE id = :task_id AND status IN ('failed', 'timeout', 'cancelled')
RETURNING seq
"""
# Finished before the cutoff, and no pending task depends on it (one primary-key probe per candidate).
PURGE = """
DELETE FROM tasks WHERE finished_at < :before
    AND (:queues IS NULL OR queue IN (SELECT value FROM json_each(:queues)))
    AND NOT EXISTS (
        SELECT 1 FROM dependencies JOIN tasks AS child ON child.seq = dependencies.task_seq
        WHERE dependencies.parent_seq = tasks.seq AND child.status = 'pending'
    )
RETURNING seq
"""
# Then what the purged tasks kept beside their rows, and their edges.
PURGE_SIDE_TABLES = tuple(
    f"DELETE FROM {table} WHERE task_seq IN (SELECT value FROM json_each(?))"
    for table in ("attempts", "payloads", "results")
)
PURGE_DEPENDENCIES = (
    "DELETE FROM dependencies WHERE parent_seq IN (SELECT value FROM json_each(:seqs))"
    " OR task_seq IN (SELECT value FROM json_each(:seqs))"
)

# How many of a workflow's tasks are in each status.
WORKFLOW_COUNTS = "SELECT status, count(*) FROM tasks WHERE workflow_id = ? GROUP BY status"

# Waiting: per queue, the earliest ready eta (of tasks without a limit key: for those, `LIMITED_FIRST`)
# and the earliest lease expiry. tasks_ready_by_priority holds
# each priority's tasks in eta order, so `levels` steps from one priority in use to the next (one index
# probe each), and the earliest eta of each is its first entry. Running tasks are few: their index is read
# whole.
NEXT_DUE = """
WITH RECURSIVE levels (queue, priority) AS (
    SELECT queues.value, (
        SELECT max(priority) FROM tasks WHERE status = 'pending' AND unmet = 0 AND limit_key IS NULL
            AND queue = queues.value
    ) FROM json_each(:queues) AS queues
    UNION ALL
    SELECT levels.queue, (
        SELECT max(priority) FROM tasks WHERE status = 'pending' AND unmet = 0 AND limit_key IS NULL
            AND queue = levels.queue
            AND priority < levels.priority
    ) FROM levels WHERE levels.priority IS NOT NULL
)
SELECT min(due) FROM (
    SELECT (
        SELECT min(eta) FROM tasks WHERE status = 'pending' AND unmet = 0 AND limit_key IS NULL
            AND queue = levels.queue
            AND priority = levels.priority
    ) AS due FROM levels WHERE levels.priority IS NOT NULL
    UNION ALL
    SELECT (
        SELECT min(lease_expires_at) FROM tasks WHERE status = 'in_progress' AND queue = queues.value
    ) FROM json_each(:queues) AS queues
)
"""

# Opening: lists of ids and queues are bound as one JSON array each, so SQLite must have its JSON
# functions (before 3.38 it could be built without them).
JSON_CHECK = "SELECT json_valid('[]')"
# Describing the database: its schema version, journal mode and sizes.
DESCRIBE = (
    "SELECT user_version, journal_mode, page_size, freelist_count FROM pragma_user_version(),"
    " pragma_journal_mode(), pragma_page_size(), pragma_freelist_count()"
)

# Schedules (periodic tasks). A fire moves a schedule on only if it is still the version the caller read
# (its id), not paused, and due exactly when the caller saw it: of racing workers, one changes a row.
_SCHEDULE_COLUMNS = (
    "id, name, cron, timezone, catch_up, task_name, payload, serializer, options, next_run, paused, last_run"
)
PUT_SCHEDULE = f"""
INSERT INTO schedules ({_SCHEDULE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (name) DO UPDATE SET
    id = excluded.id, cron = excluded.cron, timezone = excluded.timezone, catch_up = excluded.catch_up,
    task_name = excluded.task_name, payload = excluded.payload, serializer = excluded.serializer,
    options = excluded.options, next_run = excluded.next_run, paused = excluded.paused,
    last_run = excluded.last_run
"""
DELETE_SCHEDULE = "DELETE FROM schedules WHERE name = ?"
LIST_SCHEDULES = f"SELECT {_SCHEDULE_COLUMNS} FROM schedules ORDER BY name"
PAUSE_SCHEDULE = (
    "UPDATE schedules SET paused = :paused, next_run = coalesce(:next_run, next_run) WHERE name = :name"
)
FIRE_SCHEDULE = (
    "UPDATE schedules SET next_run = :next_run, last_run = coalesce(:last_run, last_run)"
    " WHERE id = :id AND next_run = :due AND paused = 0"
)
