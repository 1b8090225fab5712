-- The tables a run imports into, keyed by the files' natural keys so that a row imported twice is found, not doubled.
-- utf8mb4_bin compares keys byte for byte: "c1" and "C1" are two customers, as they are to the CSV file.
-- import_run and import_line say which run stored a row and from which line of its file. When one run's file holds
-- a key twice, tasks running in parallel may store either occurrence first; the lower line then replaces the higher
-- one, so the first occurrence wins whatever the order the tasks ran in.
CREATE TABLE IF NOT EXISTS customers (
    user_id      VARCHAR(64)  NOT NULL,
    name         VARCHAR(255) NOT NULL,
    address      VARCHAR(255) NOT NULL,
    zip_code     VARCHAR(16)  NOT NULL,
    phone_number VARCHAR(32)  NOT NULL,
    email        VARCHAR(255) NOT NULL,
    import_run   BIGINT UNSIGNED NOT NULL DEFAULT 0,
    import_line  BIGINT UNSIGNED NOT NULL DEFAULT 0,
    PRIMARY KEY (user_id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE IF NOT EXISTS products (
    product_id         VARCHAR(64)  NOT NULL,
    description        VARCHAR(255) NOT NULL,
    product_type       VARCHAR(64)  NOT NULL,
    quantity_available INT UNSIGNED NOT NULL,
    import_run         BIGINT UNSIGNED NOT NULL DEFAULT 0,
    import_line        BIGINT UNSIGNED NOT NULL DEFAULT 0,
    PRIMARY KEY (product_id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- One row per run, numbered: the number is what import_run holds. A run ID can be registered once only. A run's
-- records go once expires_at has passed (repo.DB.Prune); a row from before the column existed has it NULL.
CREATE TABLE IF NOT EXISTS import_runs (
    run_no     BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    run_id     VARCHAR(64)     NOT NULL,
    started_at TIMESTAMP(6)    NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    expires_at TIMESTAMP(6)    NULL,
    PRIMARY KEY (run_no),
    UNIQUE KEY import_runs_id (run_id),
    KEY import_runs_expires (expires_at)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- One row per import task whose rows have been committed, written in the same transaction as the rows. A task
-- that asynq delivers again finds its row here and reports the first delivery's counts instead of counting twice.
CREATE TABLE IF NOT EXISTS import_tasks (
    task_id     VARCHAR(191) NOT NULL,
    run_id      VARCHAR(64)  NOT NULL,
    kind        VARCHAR(16)  NOT NULL,
    added       INT UNSIGNED NOT NULL DEFAULT 0,
    present     INT UNSIGNED NOT NULL DEFAULT 0,
    -- Rows of this run that another task had stored from a later line, and this task replaced (repo.Written).
    displaced   INT UNSIGNED NOT NULL DEFAULT 0,
    -- The same for rows present from an earlier run: this task's earlier line took the place of another's.
    displaced_present INT UNSIGNED NOT NULL DEFAULT 0,
    -- The task's rows whose key the file held on an earlier line, as JSON [{"line", "first_line", "key"}, ...].
    duplicates  MEDIUMTEXT   NULL,
    finished_at TIMESTAMP(6) NULL,
    PRIMARY KEY (task_id),
    KEY import_tasks_run (run_id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- The keys a run found already present from an earlier run, with the first line it found each on. A key that a
-- file repeats is stored by neither occurrence then, so this is how a later occurrence, in another task, learns it
-- is a repeat. The run deletes its rows when it ends.
CREATE TABLE IF NOT EXISTS import_seen (
    run_no   BIGINT UNSIGNED NOT NULL,
    kind     VARCHAR(16)     NOT NULL,
    item_key VARCHAR(64)     NOT NULL,
    line     BIGINT UNSIGNED NOT NULL,
    PRIMARY KEY (run_no, kind, item_key)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- One row: a random value made when the database is first used, part of the database's identity (repo.DB.ID). Tasks
-- for this database travel on a queue named after that identity, so no worker of another database takes them.
CREATE TABLE IF NOT EXISTS import_meta (
    one         TINYINT UNSIGNED NOT NULL,
    database_id CHAR(32)         NOT NULL,
    PRIMARY KEY (one)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
