// Package repo is the only package that speaks SQL. It creates the embedded schema, counts rows, and writes one
// import task's rows idempotently: in one transaction, in multi-row statements, with the task's own record.
package repo

import (
	"context"
	"database/sql"
	_ "embed"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"

	"hpnorton/internal/record"
)

//go:embed schema.sql
var schema string

// MySQL error numbers the package acts on.
const (
	errDupEntry  = 1062 // ER_DUP_ENTRY
	errUnknownDB = 1049 // ER_BAD_DB_ERROR
	errLockWait  = 1205 // ER_LOCK_WAIT_TIMEOUT
	errDeadlock  = 1213 // ER_LOCK_DEADLOCK
)

// Limits on one statement and one transaction.
const (
	maxPlaceholders  = 65535   // the most a prepared statement takes (error 1390 past it)
	packetHeadroom   = 4 << 10 // bytes kept free in each statement packet for the SQL text and framing
	perValueOverhead = 16      // bytes a bound value costs beyond its text, an upper bound
	txAttempts       = 5       // tries of a task's transaction that deadlocks or times out on a lock
)

// sqlMode makes MySQL refuse, rather than quietly alter, a value that does not fit: validation should have caught
// it already, and this is the second fence. Both MariaDB 10.11 and MySQL 8 accept this list.
const sqlMode = "'STRICT_ALL_TABLES,NO_ZERO_IN_DATE,NO_ZERO_DATE,ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION'"

// DB is a MySQL database holding the imported tables.
type DB struct {
	db *sql.DB
	// maxPacket is the server's max_allowed_packet, which bounds one statement.
	maxPacket int
	// RowsPerStatement caps the rows of one INSERT; the placeholder limit and maxPacket may lower it further.
	// Open sets it to DefaultRowsPerStatement.
	RowsPerStatement int
	// Method is how ImportTask writes rows. Open chooses Load when the server allows LOAD DATA LOCAL, else Insert.
	Method Method
}

// DefaultRowsPerStatement is the batch size multi-row INSERTs use unless a caller sets another.
const DefaultRowsPerStatement = 1000

// Open connects to the MySQL database the DSN names, creating the database if it does not exist, and ensures the
// schema. The DSN is go-sql-driver's format, for example "root@tcp(127.0.0.1:3306)/hpnorton".
func Open(ctx context.Context, dsn string) (*DB, error) {
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		// The driver's message may quote the DSN, password included.
		return nil, errors.New("repo: the MySQL DSN cannot be parsed; the expected form is user:password@tcp(host:port)/database")
	}
	if cfg.DBName == "" {
		return nil, fmt.Errorf("repo: the MySQL DSN names no database")
	}
	if cfg.Params == nil {
		cfg.Params = map[string]string{}
	}
	cfg.Params["sql_mode"] = sqlMode
	// Read max_allowed_packet from the server: the driver otherwise assumes 64 MiB, and MariaDB's default is 16.
	cfg.MaxAllowedPacket = 0

	db, err := connect(ctx, cfg)
	var merr *mysql.MySQLError
	if errors.As(err, &merr) && merr.Number == errUnknownDB {
		if err := createDatabase(ctx, cfg); err != nil {
			return nil, err
		}
		db, err = connect(ctx, cfg)
	}
	if err != nil {
		return nil, err
	}
	d := &DB{db: db, RowsPerStatement: DefaultRowsPerStatement}
	if err := d.init(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return d, nil
}

func connect(ctx context.Context, cfg *mysql.Config) (*sql.DB, error) {
	connector, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, fmt.Errorf("repo: %w", err)
	}
	db := sql.OpenDB(connector)
	db.SetConnMaxLifetime(5 * time.Minute)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("repo: cannot reach MySQL at %s: %w", cfg.Addr, err)
	}
	return db, nil
}

func createDatabase(ctx context.Context, cfg *mysql.Config) error {
	server := cfg.Clone()
	server.DBName = ""
	db, err := connect(ctx, server)
	if err != nil {
		return err
	}
	defer db.Close()
	q := "CREATE DATABASE IF NOT EXISTS " + quoteIdent(cfg.DBName) + " CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
	if _, err := db.ExecContext(ctx, q); err != nil {
		return fmt.Errorf("repo: create database %s: %w", cfg.DBName, err)
	}
	return nil
}

func (d *DB) init(ctx context.Context) error {
	for stmt := range strings.SplitSeq(stripComments(schema), ";") {
		if strings.TrimSpace(stmt) == "" {
			continue
		}
		if _, err := d.db.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("repo: create schema: %w", err)
		}
	}
	if err := d.migrate(ctx); err != nil {
		return err
	}
	var localInfile bool
	if err := d.db.QueryRowContext(ctx, "SELECT @@max_allowed_packet, @@local_infile").Scan(&d.maxPacket, &localInfile); err != nil {
		return fmt.Errorf("repo: read server settings: %w", err)
	}
	d.Method = Insert
	if localInfile {
		d.Method = Load
	}
	return nil
}

// migrations add columns to tables created before the columns existed. CREATE TABLE IF NOT EXISTS leaves an
// existing table as it is, and MySQL 8, unlike MariaDB, has no ADD COLUMN IF NOT EXISTS. Each is keyed by its
// table and the first column it adds; the definitions repeat schema.sql's.
var migrations = []struct{ table, column, alter string }{
	{"customers", "import_run", "ADD COLUMN import_run BIGINT UNSIGNED NOT NULL DEFAULT 0, ADD COLUMN import_line BIGINT UNSIGNED NOT NULL DEFAULT 0"},
	{"products", "import_run", "ADD COLUMN import_run BIGINT UNSIGNED NOT NULL DEFAULT 0, ADD COLUMN import_line BIGINT UNSIGNED NOT NULL DEFAULT 0"},
	{"import_tasks", "displaced", "ADD COLUMN displaced INT UNSIGNED NOT NULL DEFAULT 0, ADD COLUMN duplicates MEDIUMTEXT NULL"},
	{"import_tasks", "displaced_present", "ADD COLUMN displaced_present INT UNSIGNED NOT NULL DEFAULT 0"},
}

// migrate runs the migrations whose column is missing.
func (d *DB) migrate(ctx context.Context) error {
	// One look at the catalogue serves every table, since Open runs at every command's start.
	rows, err := d.db.QueryContext(ctx, `SELECT table_name, column_name FROM information_schema.columns
		WHERE table_schema = DATABASE() AND column_name IN ('import_run', 'displaced', 'displaced_present')`)
	if err != nil {
		return fmt.Errorf("repo: inspect the schema: %w", err)
	}
	has := map[[2]string]bool{}
	for rows.Next() {
		var table, column string
		if err := rows.Scan(&table, &column); err != nil {
			rows.Close()
			return fmt.Errorf("repo: inspect the schema: %w", err)
		}
		has[[2]string{table, column}] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("repo: inspect the schema: %w", err)
	}
	for _, m := range migrations {
		if has[[2]string{m.table, m.column}] {
			continue
		}
		if _, err := d.db.ExecContext(ctx, "ALTER TABLE "+quoteIdent(m.table)+" "+m.alter); err != nil {
			return fmt.Errorf("repo: add %s to %s: %w", m.column, m.table, err)
		}
	}
	return nil
}

// Close closes the connection pool.
func (d *DB) Close() error { return d.db.Close() }

// Reset empties the imported tables and the run and task records, for benchmarks that import the same files repeatedly.
func (d *DB) Reset(ctx context.Context) error {
	for _, table := range []string{record.Customers.Table(), record.Products.Table(), "import_tasks", "import_runs", "import_seen"} {
		if _, err := d.db.ExecContext(ctx, "TRUNCATE TABLE "+quoteIdent(table)); err != nil {
			return fmt.Errorf("repo: reset %s: %w", table, err)
		}
	}
	return nil
}

// Drop drops the whole database and closes the pool, for benchmarks that made a database of their own.
func (d *DB) Drop(ctx context.Context) error {
	defer d.db.Close()
	var name string
	if err := d.db.QueryRowContext(ctx, "SELECT DATABASE()").Scan(&name); err != nil {
		return fmt.Errorf("repo: drop: %w", err)
	}
	if _, err := d.db.ExecContext(ctx, "DROP DATABASE "+quoteIdent(name)); err != nil {
		return fmt.Errorf("repo: drop %s: %w", name, err)
	}
	return nil
}

// Settle waits until InnoDB has stopped writing pages in the background, or until the timeout, so that a
// benchmark run does not pay for the writes of the run before it. It reports how long it waited.
func (d *DB) Settle(ctx context.Context, timeout time.Duration) (time.Duration, error) {
	const quiet = 300 * time.Millisecond // no page written for this long counts as settled
	start := time.Now()
	last := int64(-1)
	for time.Since(start) < timeout {
		var name string
		var flushed int64
		if err := d.db.QueryRowContext(ctx, "SHOW GLOBAL STATUS LIKE 'Innodb_buffer_pool_pages_flushed'").Scan(&name, &flushed); err != nil {
			return 0, fmt.Errorf("repo: settle: %w", err)
		}
		if flushed == last {
			break
		}
		last = flushed
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(quiet):
		}
	}
	return time.Since(start), nil
}

// Count returns how many rows the kind's table holds.
func (d *DB) Count(ctx context.Context, k record.Kind) (int64, error) {
	var n int64
	if err := d.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+quoteIdent(k.Table())).Scan(&n); err != nil {
		return 0, fmt.Errorf("repo: count %s: %w", k, err)
	}
	return n, nil
}

// EndRun forgets the keys the run found present (import_seen), which only its tasks needed.
func (d *DB) EndRun(ctx context.Context, runNo uint64) error {
	if _, err := d.db.ExecContext(ctx, "DELETE FROM import_seen WHERE run_no = ?", runNo); err != nil {
		return fmt.Errorf("repo: end run %d: %w", runNo, err)
	}
	return nil
}

// ErrRunExists means StartRun was given a run ID registered before.
var ErrRunExists = errors.New("repo: the run ID is registered already")

// StartRun registers a run and returns its number, which every row the run stores carries in import_run. A run ID
// registered before is refused with ErrRunExists: its tasks' records would report the earlier run's counts.
func (d *DB) StartRun(ctx context.Context, runID string) (uint64, error) {
	res, err := d.db.ExecContext(ctx, "INSERT INTO import_runs (run_id) VALUES (?)", runID)
	var merr *mysql.MySQLError
	if errors.As(err, &merr) && merr.Number == errDupEntry {
		return 0, fmt.Errorf("%w: %s", ErrRunExists, runID)
	}
	if err != nil {
		return 0, fmt.Errorf("repo: register run %s: %w", runID, err)
	}
	no, err := res.LastInsertId()
	if err != nil {
		return 0, fmt.Errorf("repo: register run %s: %w", runID, err)
	}
	return uint64(no), nil
}

// quoteIdent quotes a MySQL identifier. Identifiers here come from code or from the operator's DSN, never from a
// CSV file.
func quoteIdent(s string) string { return "`" + strings.ReplaceAll(s, "`", "``") + "`" }

// stripComments drops SQL line comments, so that splitting the schema on semicolons cannot cut inside one.
func stripComments(stmt string) string {
	var b strings.Builder
	for line := range strings.Lines(stmt) {
		if !strings.HasPrefix(strings.TrimSpace(line), "--") {
			b.WriteString(line)
		}
	}
	return b.String()
}
