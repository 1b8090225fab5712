// Package repo is the only package that speaks SQL. It creates the embedded schema, counts rows, and writes one
// import task's rows idempotently: in one transaction, in multi-row statements, with the task's own record.
package repo

import (
	"context"
	"database/sql"
	_ "embed"
	"errors"
	"fmt"
	"slices"
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
	if err := d.db.QueryRowContext(ctx, "SELECT @@max_allowed_packet").Scan(&d.maxPacket); err != nil {
		return fmt.Errorf("repo: read max_allowed_packet: %w", err)
	}
	return nil
}

// Close closes the connection pool.
func (d *DB) Close() error { return d.db.Close() }

// Reset empties the imported tables and the task records, for benchmarks that import the same files repeatedly.
func (d *DB) Reset(ctx context.Context) error {
	for _, table := range []string{record.Customers.Table(), record.Products.Table(), "import_tasks"} {
		if _, err := d.db.ExecContext(ctx, "TRUNCATE TABLE "+quoteIdent(table)); err != nil {
			return fmt.Errorf("repo: reset %s: %w", table, err)
		}
	}
	return nil
}

// Count returns how many rows the kind's table holds.
func (d *DB) Count(ctx context.Context, k record.Kind) (int64, error) {
	var n int64
	if err := d.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+quoteIdent(k.Table())).Scan(&n); err != nil {
		return 0, fmt.Errorf("repo: count %s: %w", k, err)
	}
	return n, nil
}

// RunSeen reports whether any task of the run has committed.
func (d *DB) RunSeen(ctx context.Context, runID string) (bool, error) {
	var one int
	err := d.db.QueryRowContext(ctx, "SELECT 1 FROM import_tasks WHERE run_id = ? LIMIT 1", runID).Scan(&one)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("repo: look up run %s: %w", runID, err)
	}
	return true, nil
}

// Task identifies one import task for ImportTask.
type Task struct {
	ID    string
	RunID string
	Kind  record.Kind
}

// Written is what ImportTask did with a task's rows.
type Written struct {
	// Added counts rows newly inserted, Present rows whose key was already in the table and were left alone.
	Added, Present int
	// Redelivered is true when an earlier delivery of the same task had already committed; Added and Present are
	// then that delivery's counts, and nothing was written now.
	Redelivered bool
}

// ImportTask inserts the rows of one task that are not yet present, together with the task's record, in one
// transaction. Running it again for the same task ID writes nothing and returns the first run's counts, so an
// at-least-once queue cannot double any count. A deadlock or lock wait timeout retries the whole transaction.
func (d *DB) ImportTask(ctx context.Context, t Task, rows []record.Row) (Written, error) {
	// Taking row locks in key order means two tasks with overlapping keys wait for each other instead of
	// deadlocking: neither can hold a key the other needs before it needs one the other holds.
	rows = slices.Clone(rows)
	key := t.Kind.KeyIndex()
	slices.SortFunc(rows, func(a, b record.Row) int { return strings.Compare(a.Fields[key], b.Fields[key]) })

	var lastErr error
	for attempt := range txAttempts {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return Written{}, ctx.Err()
			case <-time.After(time.Duration(attempt*attempt) * 50 * time.Millisecond):
			}
		}
		w, err := d.importOnce(ctx, t, rows)
		if err == nil || !retryable(err) {
			return w, err
		}
		lastErr = err
	}
	return Written{}, fmt.Errorf("repo: task %s still failing after %d attempts: %w", t.ID, txAttempts, lastErr)
}

func retryable(err error) bool {
	var merr *mysql.MySQLError
	return errors.As(err, &merr) && (merr.Number == errDeadlock || merr.Number == errLockWait)
}

func (d *DB) importOnce(ctx context.Context, t Task, rows []record.Row) (w Written, err error) {
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return Written{}, fmt.Errorf("repo: begin: %w", err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback() // the error that made us roll back is the one worth reporting
		}
	}()

	// Claiming the task first makes a second delivery running at the same moment wait on this row's lock, then
	// find it committed, rather than insert the same rows alongside.
	_, err = tx.ExecContext(ctx, "INSERT INTO import_tasks (task_id, run_id, kind) VALUES (?, ?, ?)", t.ID, t.RunID, t.Kind.String())
	var merr *mysql.MySQLError
	if errors.As(err, &merr) && merr.Number == errDupEntry {
		if err = tx.Rollback(); err != nil {
			return Written{}, fmt.Errorf("repo: rollback: %w", err)
		}
		return d.committed(ctx, t.ID)
	}
	if err != nil {
		return Written{}, fmt.Errorf("repo: claim task %s: %w", t.ID, err)
	}

	total := len(rows)
	for len(rows) > 0 {
		n := d.batchLen(rows, len(t.Kind.Columns()))
		added, err := d.insertBatch(ctx, tx, t.Kind, rows[:n])
		if err != nil {
			return Written{}, err
		}
		w.Added += added
		rows = rows[n:]
	}
	w.Present = total - w.Added
	_, err = tx.ExecContext(ctx, "UPDATE import_tasks SET added = ?, present = ?, finished_at = NOW(6) WHERE task_id = ?", w.Added, w.Present, t.ID)
	if err != nil {
		return Written{}, fmt.Errorf("repo: record task %s: %w", t.ID, err)
	}
	if err = tx.Commit(); err != nil {
		return Written{}, fmt.Errorf("repo: commit task %s: %w", t.ID, err)
	}
	return w, nil
}

// committed returns the counts an earlier delivery of the task recorded.
func (d *DB) committed(ctx context.Context, taskID string) (Written, error) {
	w := Written{Redelivered: true}
	err := d.db.QueryRowContext(ctx, "SELECT added, present FROM import_tasks WHERE task_id = ?", taskID).Scan(&w.Added, &w.Present)
	if err != nil {
		return Written{}, fmt.Errorf("repo: read task %s: %w", taskID, err)
	}
	return w, nil
}

// batchLen is how many of rows fit one INSERT: at most RowsPerStatement, at most 65,535 placeholders, and a
// packet within the server's max_allowed_packet. It is at least 1; a single row too large for the packet is
// refused by the server with a clear error.
func (d *DB) batchLen(rows []record.Row, cols int) int {
	limit := min(len(rows), max(1, d.RowsPerStatement), maxPlaceholders/cols)
	budget := d.maxPacket - packetHeadroom
	n := 0
	for n < limit {
		size := 0
		for _, f := range rows[n].Fields {
			size += len(f) + perValueOverhead
		}
		if n > 0 && size > budget {
			break
		}
		budget -= size
		n++
	}
	return n
}

// insertBatch inserts the rows whose keys are absent and returns how many it inserted. ON DUPLICATE KEY UPDATE
// with a no-op assignment leaves a present row untouched and counts it 0 in RowsAffected. Unlike INSERT IGNORE it
// does not turn other errors, such as an over-long value, into warnings and silently altered data.
func (d *DB) insertBatch(ctx context.Context, tx *sql.Tx, k record.Kind, rows []record.Row) (int, error) {
	cols := k.Columns()
	var q strings.Builder
	q.WriteString("INSERT INTO ")
	q.WriteString(quoteIdent(k.Table()))
	q.WriteString(" (")
	for i, c := range cols {
		if i > 0 {
			q.WriteString(", ")
		}
		q.WriteString(quoteIdent(c.Name))
	}
	q.WriteString(") VALUES ")
	tuple := "(" + strings.Repeat("?, ", len(cols)-1) + "?)"
	args := make([]any, 0, len(rows)*len(cols))
	for i, r := range rows {
		if i > 0 {
			q.WriteString(", ")
		}
		q.WriteString(tuple)
		for _, f := range r.Fields {
			args = append(args, f)
		}
	}
	key := quoteIdent(cols[k.KeyIndex()].Name)
	q.WriteString(" ON DUPLICATE KEY UPDATE " + key + " = " + key)
	res, err := tx.ExecContext(ctx, q.String(), args...)
	if err != nil {
		return 0, fmt.Errorf("repo: insert %d %s: %w", len(rows), k, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("repo: insert %d %s: %w", len(rows), k, err)
	}
	return int(n), nil
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
