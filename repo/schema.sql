-- The tables a run imports into, keyed by the files' natural keys so that a row imported twice is found, not doubled.
-- utf8mb4_bin compares keys byte for byte: "c1" and "C1" are two customers, as they are to the CSV file. They hold
-- the files' columns and nothing else: the enqueuer settles a key that a file repeats before any row is written.
CREATE TABLE IF NOT EXISTS customers (
    user_id      VARCHAR(64)  NOT NULL,
    name         VARCHAR(255) NOT NULL,
    address      VARCHAR(255) NOT NULL,
    zip_code     VARCHAR(16)  NOT NULL,
    phone_number VARCHAR(32)  NOT NULL,
    email        VARCHAR(255) NOT NULL,
    PRIMARY KEY (user_id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE IF NOT EXISTS products (
    product_id         VARCHAR(64)  NOT NULL,
    description        VARCHAR(255) NOT NULL,
    product_type       VARCHAR(64)  NOT NULL,
    quantity_available INT UNSIGNED NOT NULL,
    PRIMARY KEY (product_id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- One row per run, numbered: a task claims its record under the run's ID and number. A run ID can be registered
-- once only. A run's records go once expires_at has passed (repo.DB.Prune); a row from before the column existed
-- has it NULL.
CREATE TABLE IF NOT EXISTS import_runs (
    run_no     BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    run_id     VARCHAR(64)     NOT NULL,
    started_at TIMESTAMP(6)    NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    expires_at TIMESTAMP(6)    NULL,
    -- What a resume needs to carry the run on from any machine (coordinator.runParams, JSON), and its end.
    params      TEXT            NULL,
    finished_at TIMESTAMP(6)    NULL,
    cancelled   TINYINT(1)      NOT NULL DEFAULT 0,
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
    updated     INT UNSIGNED NOT NULL DEFAULT 0,
    unchanged   INT UNSIGNED NOT NULL DEFAULT 0,
    finished_at TIMESTAMP(6) NULL,
    PRIMARY KEY (task_id),
    KEY import_tasks_run (run_id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- One row: a random value made when the database is first used, part of the database's identity (repo.DB.ID). Tasks
-- for this database travel on a queue named after that identity, so no worker of another database takes them.
CREATE TABLE IF NOT EXISTS import_meta (
    one         TINYINT UNSIGNED NOT NULL,
    database_id CHAR(32)         NOT NULL,
    PRIMARY KEY (one)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;


-- The row count of each imported table that has grown large, split over 64 rows so that concurrent writers seldom
-- wait on one (counts.go): the count is the sum of a table's rows. hpnorton's tasks add their rows in their own
-- transactions; triggers that repo makes once the table is large (hpnorton_<table>_count_insert_v1 and _delete_v1)
-- count every other writer's.
CREATE TABLE IF NOT EXISTS import_counts (
    tbl   VARCHAR(64)       NOT NULL,
    shard SMALLINT UNSIGNED NOT NULL,
    n     BIGINT            NOT NULL,
    PRIMARY KEY (tbl, shard)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
