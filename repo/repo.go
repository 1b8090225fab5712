// Package repo is the only package that speaks SQL. It creates the embedded schema, counts rows, and writes one
// import task's rows idempotently: in one transaction, in multi-row statements, with the task's own record.
package repo

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
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
	// ID names this database among all the databases that share a Redis, so that a task can only land in the
	// database it was meant for (see identify). It is the same for every process that opens the database.
	ID string
	// maxPacket is the server's max_allowed_packet, which bounds one statement.
	maxPacket int
	// RowsPerStatement caps the rows of one INSERT; the placeholder limit and maxPacket may lower it further.
	// Open sets it to DefaultRowsPerStatement.
	RowsPerStatement int
	// Method is how ImportTask writes rows. Open chooses Load when the server allows LOAD DATA LOCAL, else Insert.
	Method Method
	// keepCountsFrom is keepCountsFrom, which tests lower to see a small table kept.
	keepCountsFrom int64
	// beforeUpdateWrites, when set, runs between update mode's locking read and its first write: tests let another
	// program in at that instant.
	beforeUpdateWrites func()
}

// DefaultRowsPerStatement is the batch size multi-row INSERTs use unless a caller sets another.
const DefaultRowsPerStatement = 1000

// DefaultMaxConns caps the connections Open's pool keeps to the server; SetMaxConns changes it.
const DefaultMaxConns = 4

// sessionSettings are the MySQL session variables a DSN may set, as ?name=value. Any other would be set on every
// connection as given, and some change what the counts mean or what the checks catch: autocommit=0 makes COUNT(*)
// read an old snapshot, unique_checks=0 lets a repeated key through, sql_mode is ours to set.
var sessionSettings = map[string]bool{
	"time_zone": true, "wait_timeout": true, "net_read_timeout": true, "net_write_timeout": true,
	"innodb_lock_wait_timeout": true, "lock_wait_timeout": true, "max_execution_time": true,
}

// Open connects to the MySQL database the DSN names, creating the database if it does not exist, and ensures the
// schema. The DSN is go-sql-driver's format, for example "root@tcp(127.0.0.1:3306)/hpnorton".
//
// Driver options that would change what the import counts, stores or allows are overridden: the character set
// (utf8mb4), clientFoundRows (rows matched would count as rows added), multiStatements and allowAllFiles (LOAD DATA
// LOCAL reads only the rows this package hands it). A session variable other than those in sessionSettings is
// refused.
func Open(ctx context.Context, dsn string) (*DB, error) {
	cfg, err := ParseDSN(dsn)
	if err != nil {
		return nil, err
	}
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
	d := &DB{db: db, RowsPerStatement: DefaultRowsPerStatement, keepCountsFrom: keepCountsFrom}
	if err := d.init(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return d, nil
}

// ParseDSN reads a DSN as Open does: it refuses one without a database or with a session variable outside
// sessionSettings, and overrides the options that would change what is counted or allowed. Its errors never quote
// the DSN, which may hold a password.
func ParseDSN(dsn string) (*mysql.Config, error) {
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		// The driver's message may quote the DSN, password included.
		return nil, errors.New("the MySQL DSN cannot be parsed; the expected form is user:password@tcp(host:port)/database")
	}
	if cfg.DBName == "" {
		return nil, fmt.Errorf("the MySQL DSN names no database")
	}
	for _, name := range slices.Sorted(maps.Keys(cfg.Params)) {
		if !sessionSettings[name] {
			allowed := slices.Sorted(maps.Keys(sessionSettings))
			return nil, fmt.Errorf("the MySQL DSN sets %s, which an import does not allow since it can change what is counted or checked; the DSN may set %s", name, strings.Join(allowed, ", "))
		}
	}
	if cfg.Params == nil {
		cfg.Params = map[string]string{}
	}
	cfg.Params["sql_mode"] = sqlMode
	// The driver sets each parameter with SET as it connects: every connection of ours counts its own rows
	// (counts.go), and the counting triggers leave its rows alone.
	cfg.Params[countedVar] = "1"
	cfg.ClientFoundRows, cfg.MultiStatements, cfg.AllowAllFiles = false, false, false
	// The files are UTF-8 and the tables utf8mb4. Through a connection in another character set, MySQL would
	// convert the rows' bytes from it: an INSERT of "é" over Latin-1 stored "Ã©".
	if err := cfg.Apply(mysql.Charset("utf8mb4", "")); err != nil {
		return nil, fmt.Errorf("the MySQL DSN: %w", err)
	}
	// Values travel inside their statements: one round trip a statement where a prepared one takes three (prepare,
	// execute, close). That was a fifth of a task's own time in the worker and in MySQL (2,000 one-row tasks:
	// 0.60–0.75 ms of the worker's CPU a task against 0.71–0.90, MariaDB's 0.40–0.51 against 0.50–0.60). The driver
	// escapes them for the connection's character set, utf8mb4 above, in which escaping cannot be undone.
	cfg.InterpolateParams = true
	return cfg, nil
}

func connect(ctx context.Context, cfg *mysql.Config) (*sql.DB, error) {
	connector, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, fmt.Errorf("repo: %w", err)
	}
	db := sql.OpenDB(connector)
	db.SetConnMaxLifetime(5 * time.Minute)
	db.SetMaxOpenConns(DefaultMaxConns)
	db.SetMaxIdleConns(DefaultMaxConns)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("cannot reach MySQL at %s: %w", cfg.Addr, err)
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
	if err := d.identify(ctx); err != nil {
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

// migrations bring a database that an earlier version made to schema.sql's shape. CREATE TABLE IF NOT EXISTS
// leaves an existing table as it is, and MySQL 8, unlike MariaDB, has no ADD or DROP COLUMN IF EXISTS, so each
// is keyed by its table and a column: an "add" runs when the column is missing, a "drop" when it is there. The
// definitions repeat schema.sql's.
var migrations = []struct {
	table, column string
	add           bool
	alter         string
}{
	{"import_runs", "expires_at", true, "ADD COLUMN expires_at TIMESTAMP(6) NULL, ADD KEY import_runs_expires (expires_at)"},
	{"import_runs", "params", true, "ADD COLUMN params TEXT NULL AFTER expires_at, ADD COLUMN finished_at TIMESTAMP(6) NULL AFTER params"},
	{"import_runs", "cancelled", true, "ADD COLUMN cancelled TINYINT(1) NOT NULL DEFAULT 0 AFTER finished_at"},
	{"import_tasks", "updated", true, "ADD COLUMN updated INT UNSIGNED NOT NULL DEFAULT 0 AFTER present, ADD COLUMN unchanged INT UNSIGNED NOT NULL DEFAULT 0 AFTER updated"},
	// Parallel tasks once settled a repeated key among themselves through these columns; the enqueuer settles
	// repeats before any write now. Dropping a column keeps every row, and InnoDB drops it in place.
	{"customers", "import_run", false, "DROP COLUMN import_run, DROP COLUMN import_line"},
	{"products", "import_run", false, "DROP COLUMN import_run, DROP COLUMN import_line"},
	{"import_tasks", "displaced", false, "DROP COLUMN displaced, DROP COLUMN duplicates"},
	{"import_tasks", "displaced_present", false, "DROP COLUMN displaced_present"},
}

// migrate runs the migrations that apply, and drops import_seen, the keys that parallel tasks once settled
// through.
func (d *DB) migrate(ctx context.Context) error {
	if _, err := d.db.ExecContext(ctx, "DROP TABLE IF EXISTS import_seen"); err != nil {
		return fmt.Errorf("repo: drop import_seen: %w", err)
	}
	// One look at the catalogue serves every table, since Open runs at every command's start.
	cols := make([]any, len(migrations))
	for i, m := range migrations {
		cols[i] = m.column
	}
	rows, err := d.db.QueryContext(ctx, `SELECT table_name, column_name FROM information_schema.columns
		WHERE table_schema = DATABASE() AND column_name IN (?`+strings.Repeat(", ?", len(cols)-1)+`)`, cols...)
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
		if has[[2]string{m.table, m.column}] == m.add {
			continue
		}
		if _, err := d.db.ExecContext(ctx, "ALTER TABLE "+quoteIdent(m.table)+" "+m.alter); err != nil {
			return fmt.Errorf("repo: migrate %s (%s): %w", m.table, m.alter, err)
		}
	}
	return nil
}

// identify sets ID from what tells this database apart from every other: a random value it keeps in import_meta
// from its first use, its name, and the host name and port the server itself reports, which are the same however
// a client reaches it. The random value tells apart two databases of the same name on servers with the same host
// name; the name, host and port tell apart a copy of the database, restored from a dump, from its original.
func (d *DB) identify(ctx context.Context) error {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	_, err := d.db.ExecContext(ctx, "INSERT INTO import_meta (one, database_id) VALUES (1, ?) ON DUPLICATE KEY UPDATE one = one", hex.EncodeToString(b[:]))
	if err != nil {
		return fmt.Errorf("repo: record the database's identity: %w", err)
	}
	var random, host, name string
	var port int
	err = d.db.QueryRowContext(ctx, "SELECT database_id, @@hostname, @@port, DATABASE() FROM import_meta WHERE one = 1").Scan(&random, &host, &port, &name)
	if err != nil {
		return fmt.Errorf("repo: read the database's identity: %w", err)
	}
	sum := sha256.Sum256([]byte(strings.Join([]string{random, host, strconv.Itoa(port), name}, "\x00")))
	d.ID = hex.EncodeToString(sum[:6])
	return nil
}

// SetMaxConns caps the connections the pool opens and keeps, which should match how many tasks run at once:
// every worker's cap adds up against the server's max_connections.
func (d *DB) SetMaxConns(n int) {
	d.db.SetMaxOpenConns(n)
	d.db.SetMaxIdleConns(n)
}

// Close closes the connection pool.
func (d *DB) Close() error { return d.db.Close() }

// DefaultKeepRuns is how long a run's registration and its tasks' records are kept when StartRun is given no
// other time: they only make a late redelivery harmless, and hold keys of the file, which may be personal data.
const DefaultKeepRuns = 7 * 24 * time.Hour

// Prune deletes the records of runs kept past their time: their registration and their tasks' records. A run registered before runs had a time of their own is kept for DefaultKeepRuns. It returns
// how many runs it pruned. A task of a pruned run that is delivered again finds no registration, and writes
// nothing (ErrUnknownRun). Expiry is read on the server's clock, which set it.
func (d *DB) Prune(ctx context.Context) (int64, error) {
	expired := "(r.expires_at < NOW(6) OR r.expires_at IS NULL AND r.started_at < NOW(6) - INTERVAL " +
		strconv.Itoa(int(DefaultKeepRuns.Seconds())) + " SECOND)"
	var n int64
	for _, q := range []string{
		"DELETE t FROM import_tasks t JOIN import_runs r ON r.run_id = t.run_id WHERE " + expired,
		"DELETE r FROM import_runs r WHERE " + expired,
	} {
		res, err := d.db.ExecContext(ctx, q)
		if err != nil {
			return 0, fmt.Errorf("repo: prune old runs: %w", err)
		}
		n, _ = res.RowsAffected() // the last statement's count is the runs'
	}
	return n, nil
}

// Transient reports whether err may pass if the same statement is tried again: the server could not be reached or
// the connection was lost, or a lock could not be had. Other errors from the server will recur.
func Transient(err error) bool {
	var merr *mysql.MySQLError
	if !errors.As(err, &merr) {
		return !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded)
	}
	switch merr.Number {
	case errLockWait, errDeadlock, 1040, 1053, 1927, 2006, 2013: // too many connections, shutdown, killed, gone, lost
		return true
	}
	return false
}

// ErrRunExists means StartRun was given a run ID registered before.
var ErrRunExists = errors.New("repo: the run ID is registered already")

// StartRun registers a run and returns its number, which its tasks name when they claim their records. Its
// records are kept for keep, then Prune deletes them; keep must outlast the run. A run ID registered before is
// refused with ErrRunExists: its tasks' records would report the earlier run's counts.
func (d *DB) StartRun(ctx context.Context, runID string, keep time.Duration) (uint64, error) {
	res, err := d.db.ExecContext(ctx, "INSERT INTO import_runs (run_id, expires_at) VALUES (?, NOW(6) + INTERVAL ? MICROSECOND)", runID, keep.Microseconds())
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

// ErrNoRun means this database registered no run of that ID, or has pruned it.
var ErrNoRun = errors.New("repo: this database holds no such run")

// SaveRunParams keeps what a resume of the run needs, in the run's record.
func (d *DB) SaveRunParams(ctx context.Context, runID string, params []byte) error {
	if _, err := d.db.ExecContext(ctx, "UPDATE import_runs SET params = ? WHERE run_id = ?", params, runID); err != nil {
		return fmt.Errorf("repo: save the parameters of run %s: %w", runID, err)
	}
	return nil
}

// Run returns a registered run's number, its saved parameters (nil if it saved none) and whether it finished.
func (d *DB) Run(ctx context.Context, runID string) (no uint64, params []byte, finished bool, err error) {
	err = d.db.QueryRowContext(ctx, "SELECT run_no, params, finished_at IS NOT NULL FROM import_runs WHERE run_id = ?", runID).Scan(&no, &params, &finished)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil, false, fmt.Errorf("%w: %s", ErrNoRun, runID)
	}
	if err != nil {
		return 0, nil, false, fmt.Errorf("repo: read run %s: %w", runID, err)
	}
	return no, params, finished, nil
}

// FinishRun marks a run finished: its results are stored, and it cannot be resumed.
func (d *DB) FinishRun(ctx context.Context, runID string) error {
	if _, err := d.db.ExecContext(ctx, "UPDATE import_runs SET finished_at = NOW(6) WHERE run_id = ?", runID); err != nil {
		return fmt.Errorf("repo: finish run %s: %w", runID, err)
	}
	return nil
}

// CancelRun marks a run cancelled, and so ended.
func (d *DB) CancelRun(ctx context.Context, runID string) error {
	if _, err := d.db.ExecContext(ctx, "UPDATE import_runs SET cancelled = 1, finished_at = NOW(6) WHERE run_id = ?", runID); err != nil {
		return fmt.Errorf("repo: cancel run %s: %w", runID, err)
	}
	return nil
}

// RunRecord is a run as MySQL keeps it, with what its committed tasks did per kind.
type RunRecord struct {
	RunID     string
	StartedAt time.Time
	Ended     bool // finished or cancelled
	Cancelled bool
	Params    []byte
	Tasks     map[record.Kind]TaskTotals
}

// TaskTotals sums a run's committed tasks of one kind.
type TaskTotals struct {
	Tasks          int
	Added, Present int64
}

// Runs returns the newest n runs this database keeps, newest first; with a run ID, that run alone.
func (d *DB) Runs(ctx context.Context, n int, runID string) ([]RunRecord, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT r.run_id, UNIX_TIMESTAMP(r.started_at), r.finished_at IS NOT NULL, r.cancelled, r.params,
		t.kind, COUNT(t.task_id), COALESCE(SUM(t.added), 0), COALESCE(SUM(t.present), 0)
		FROM (SELECT * FROM import_runs WHERE ? = '' OR run_id = ? ORDER BY run_no DESC LIMIT ?) r
		LEFT JOIN import_tasks t ON t.run_id = r.run_id AND t.finished_at IS NOT NULL
		GROUP BY r.run_no, t.kind ORDER BY r.run_no DESC`, runID, runID, n)
	if err != nil {
		return nil, fmt.Errorf("repo: list runs: %w", err)
	}
	defer rows.Close()
	var out []RunRecord
	for rows.Next() {
		var r RunRecord
		var started float64
		var kind sql.NullString
		var totals TaskTotals
		if err := rows.Scan(&r.RunID, &started, &r.Ended, &r.Cancelled, &r.Params, &kind, &totals.Tasks, &totals.Added, &totals.Present); err != nil {
			return nil, fmt.Errorf("repo: list runs: %w", err)
		}
		if len(out) == 0 || out[len(out)-1].RunID != r.RunID {
			r.StartedAt = time.UnixMicro(int64(started * 1e6)).UTC()
			r.Tasks = map[record.Kind]TaskTotals{}
			out = append(out, r)
		}
		if k, err := record.ParseKind(kind.String); kind.Valid && err == nil {
			out[len(out)-1].Tasks[k] = totals
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("repo: list runs: %w", err)
	}
	return out, nil
}

// CommittedTasks returns the counts of every task of the run whose rows have committed, by task ID.
func (d *DB) CommittedTasks(ctx context.Context, runID string) (map[string]Written, error) {
	rows, err := d.db.QueryContext(ctx, "SELECT task_id, added, present, updated, unchanged FROM import_tasks WHERE run_id = ? AND finished_at IS NOT NULL", runID)
	if err != nil {
		return nil, fmt.Errorf("repo: read the tasks of run %s: %w", runID, err)
	}
	defer rows.Close()
	done := map[string]Written{}
	for rows.Next() {
		var id string
		var w Written
		if err := rows.Scan(&id, &w.Added, &w.Present, &w.Updated, &w.Unchanged); err != nil {
			return nil, fmt.Errorf("repo: read the tasks of run %s: %w", runID, err)
		}
		done[id] = w
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("repo: read the tasks of run %s: %w", runID, err)
	}
	return done, nil
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
