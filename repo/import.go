package repo

import (
	"bytes"
	"cmp"
	"context"
	"database/sql"
	"encoding/binary"

	"errors"
	"fmt"
	"io"

	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-sql-driver/mysql"

	"hpnorton/internal/record"
)

// Method is how ImportTask sends a task's rows to MySQL.
type Method int

const (
	// Load streams the rows through LOAD DATA LOCAL INFILE, MySQL's bulk path. For the same 600,000 rows it cost
	// MariaDB 1.6-1.9 CPU-seconds against 2.8 for multi-row INSERTs, and the server's CPU is what a 2-core machine
	// runs out of first.
	Load Method = iota + 1
	// Insert sends multi-row INSERT statements, for servers that refuse LOAD DATA LOCAL (local_infile off).
	Insert
)

func (m Method) String() string {
	switch m {
	case Load:
		return "load"
	case Insert:
		return "insert"
	}
	return fmt.Sprintf("Method(%d)", int(m))
}

// ErrAltered means MySQL would have stored a value of the task otherwise than it came: cut, or turned into another
// number. Nothing of the task is stored, and a retry would end the same way.
var ErrAltered = errors.New("repo: MySQL would have altered a value")

// errDataTooLong, errIncorrectValue and errOutOfRange are what a strict-mode INSERT fails with where LOAD DATA
// warns; either way the task is refused whole (ErrAltered).
const (
	errDataTooLong    = 1406
	errIncorrectValue = 1366
	errOutOfRange     = 1264
)

// ErrRepeatedKey means an update-mode task holds a key twice. The enqueuer sends each key of a file once, so such a
// task was not made by it, and every delivery would end the same way.
var ErrRepeatedKey = errors.New("repo: the task holds a key twice")

// ErrUnknownRun means a task names a run this database did not register: it was meant for another database.
var ErrUnknownRun = errors.New("repo: this database registered no such run")

// Task is one import task for ImportTask: rows of one kind in LOAD DATA's format (AppendRow), each with a key no
// other task of the run holds.
type Task struct {
	ID    string
	RunID string
	// RunNo is the number StartRun gave the run.
	RunNo uint64
	Kind  record.Kind
	// Rows counts the rows of Data, one a line.
	Rows int
	Data []byte
	// Update is update mode: a present row whose values differ from the task's takes them (updateRows).
	Update bool
	// Apart says that no earlier task of the run's file holds a key in the range of this task's keys, and that a
	// later one that does is not apart (tasks.ImportPayload.Apart): update mode may then read and lock the stored
	// rows of that range (lockPresent).
	Apart bool
}

// Written is what ImportTask did with a task's rows: its counts hold Added and Present, which sum to the task's
// rows.
type Written struct {
	record.Counts
	// Redelivered is true when an earlier delivery of the same task had already committed; the counts are then
	// that delivery's, and nothing was written now.
	Redelivered bool
}

// ImportTask inserts the rows of one task that are not yet present, together with the task's record, in one
// transaction. A row whose key is stored already is left as it is and counted present. Running it again for the
// same task ID writes nothing and returns the first run's counts, so an at-least-once queue cannot double any
// count. A deadlock or lock wait timeout retries the whole transaction.
//
// Nothing here settles a key that two tasks share: the enqueuer sends each key of a file in one task at most, so
// tasks of one run never touch the same row and never wait for each other.
func (d *DB) ImportTask(ctx context.Context, t Task) (Written, error) {
	if t.RunNo == 0 {
		return Written{}, fmt.Errorf("repo: task %s has no run number; register the run with StartRun", t.ID)
	}
	var lastErr error
	for attempt := range txAttempts {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return Written{}, ctx.Err()
			case <-time.After(time.Duration(attempt*attempt) * 50 * time.Millisecond):
			}
		}
		w, err := d.importOnce(ctx, t)
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

func (d *DB) importOnce(ctx context.Context, t Task) (w Written, err error) {
	// READ COMMITTED takes no gap locks beyond those the inserts need, so two runs loading neighbouring keys at
	// once wait on each other less.
	tx, err := d.db.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelReadCommitted})
	if err != nil {
		return Written{}, fmt.Errorf("repo: begin: %w", err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback() // the error that made us roll back is the one worth reporting
		}
	}()

	// Claiming the task first makes a second delivery running at the same moment wait on this row's lock, then
	// find it committed, rather than insert the same rows alongside. The claim succeeds only for a run this
	// database registered, under the same number: a task that reached the wrong database writes nothing.
	res, err := tx.ExecContext(ctx, "INSERT INTO import_tasks (task_id, run_id, kind) SELECT ?, run_id, ? FROM import_runs WHERE run_id = ? AND run_no = ?",
		t.ID, t.Kind.String(), t.RunID, t.RunNo)
	var merr *mysql.MySQLError
	if errors.As(err, &merr) && merr.Number == errDupEntry {
		if err = tx.Rollback(); err != nil {
			return Written{}, fmt.Errorf("repo: rollback: %w", err)
		}
		return d.Committed(ctx, t.ID)
	}
	if err != nil {
		return Written{}, fmt.Errorf("repo: claim task %s: %w", t.ID, err)
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		err = cmp.Or(err, fmt.Errorf("%w: run %s number %d, task %s", ErrUnknownRun, t.RunID, t.RunNo, t.ID))
		return Written{}, err
	}

	var added, updated int
	switch {
	case t.Update:
		added, updated, err = d.updateRows(ctx, tx, t)
	case d.Method == Load:
		added, err = load(ctx, tx, t, t.Kind.Table())
	default:
		added, err = d.insert(ctx, tx, t, t.Kind.Table())
	}
	if err != nil {
		return Written{}, err
	}
	// The one place that tells added rows from present ones: every row of the task is one or the other.
	w.Added, w.Present = int64(added), int64(t.Rows-added)
	if t.Update {
		w.Updated, w.Unchanged = int64(updated), w.Present-int64(updated)
	}
	if err = recordTask(ctx, tx, t, w); err != nil {
		return Written{}, err
	}
	if err = tx.Commit(); err != nil {
		return Written{}, fmt.Errorf("repo: commit task %s: %w", t.ID, err)
	}
	return w, nil
}

// ErrNoTask means no delivery of a task has committed its rows.
var ErrNoTask = errors.New("repo: no delivery of the task has committed")

// Committed returns the counts an earlier delivery of the task recorded, marked redelivered, or ErrNoTask.
func (d *DB) Committed(ctx context.Context, taskID string) (Written, error) {
	w := Written{Redelivered: true}
	err := d.db.QueryRowContext(ctx, "SELECT added, present, updated, unchanged FROM import_tasks WHERE task_id = ?", taskID).Scan(&w.Added, &w.Present, &w.Updated, &w.Unchanged)
	if errors.Is(err, sql.ErrNoRows) {
		return Written{}, fmt.Errorf("%w: %s", ErrNoTask, taskID)
	}
	if err != nil {
		return Written{}, fmt.Errorf("repo: read task %s: %w", taskID, err)
	}
	return w, nil
}

// columnList is the kind's columns, as an INSERT or LOAD DATA lists them.
func columnList(k record.Kind) string { return prefixed("", k) }

// prefixed is k's columns, in order, each quoted after prefix: "s.`name`, …".
func prefixed(prefix string, k record.Kind) string {
	names := make([]string, len(k.Columns()))
	for i, c := range k.Columns() {
		names[i] = prefix + quoteIdent(c.Name)
	}
	return strings.Join(names, ", ")
}

// readerSeq names each load's reader: the driver's reader registry is global to the process, and loads of several
// tasks run at once.
var readerSeq atomic.Uint64

// load stores the rows through LOAD DATA LOCAL INFILE and returns how many it inserted. With LOCAL, MySQL skips a
// row whose key is present, as INSERT IGNORE would, and goes on.
func load(ctx context.Context, tx *sql.Tx, t Task, table string) (int, error) {
	name := "hpnorton-" + strconv.FormatUint(readerSeq.Add(1), 10)
	mysql.RegisterReaderHandler(name, func() io.Reader { return bytes.NewReader(t.Data) })
	defer mysql.DeregisterReaderHandler(name)

	// The rows travel tab-separated with backslash escapes, MySQL's native LOAD DATA format (AppendRow), rather
	// than as the original CSV: the server then never has to agree with our CSV reader on quoting, and validation
	// has already decided what each field holds.
	//
	// The server reads them as bytes (CHARACTER SET binary), as mysqlimport has it read a file, and each value is
	// checked as utf8mb4 once, when it is stored into its column: a byte sequence that is not UTF-8, or a value of
	// more characters than the column holds, still leaves a warning, which fails the task below. Read as utf8mb4,
	// the server also decoded every byte of the stream while splitting it into fields (READ_INFO::read_mbtail in
	// a perf profile), which cost 8% of its CPU for the load. The split is the same either way: a backslash, a tab
	// or a newline is never part of a multi-byte character in UTF-8.
	res, err := tx.ExecContext(ctx, loadStatement(t, name, table))
	if err != nil {
		return 0, fmt.Errorf("repo: load %d %s: %w", t.Rows, t.Kind, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("repo: load %d %s: %w", t.Rows, t.Kind, err)
	}
	// LOAD DATA LOCAL also turns data errors into warnings: a value too long for its column would be cut and
	// stored. Validation rules that out; this is the second fence. Each skipped duplicate leaves one warning, and
	// any warning beyond those fails the task, whose transaction then rolls back whole.
	var warnings int
	if err := tx.QueryRowContext(ctx, "SELECT @@warning_count").Scan(&warnings); err != nil {
		return 0, fmt.Errorf("repo: load %d %s: read warnings: %w", t.Rows, t.Kind, err)
	}
	if skipped := t.Rows - int(n); warnings > skipped {
		return 0, loadWarning(ctx, tx, t, warnings-skipped)
	}
	return int(n), nil
}

// loadStatement is the LOAD DATA of t's rows, read from the registered reader name, into table; it starts with
// the tag that repo.DB.Loading finds it by.
func loadStatement(t Task, name, table string) string {
	return loadTag(t.RunNo, t.Kind) + "LOAD DATA LOCAL INFILE 'Reader::" + name + "' INTO TABLE " + quoteIdent(table) +
		" CHARACTER SET binary FIELDS TERMINATED BY '\\t' ESCAPED BY '\\\\' LINES TERMINATED BY '\\n' (" + columnList(t.Kind) + ")"
}

// loadWarning returns an error quoting the first warning of the last load that is not a skipped duplicate.
func loadWarning(ctx context.Context, tx *sql.Tx, t Task, extra int) error {
	rows, err := tx.QueryContext(ctx, "SHOW WARNINGS")
	if err != nil {
		return fmt.Errorf("repo: load %s: %d warnings, which cannot be read: %w", t.ID, extra, err)
	}
	defer rows.Close()
	for rows.Next() {
		var level, msg string
		var code int
		if err := rows.Scan(&level, &code, &msg); err != nil {
			return fmt.Errorf("repo: load %s: read warnings: %w", t.ID, err)
		}
		if code != errDupEntry {
			return fmt.Errorf("%w of task %s, so nothing of it is stored: %s %d: %s", ErrAltered, t.ID, level, code, msg)
		}
	}
	return fmt.Errorf("%w (%d values) of task %s, so nothing of it is stored", ErrAltered, extra, t.ID)
}

// AppendRow appends one row in LOAD DATA's default format, which ImportTask's Data holds: fields separated by
// tabs, the row ended by a newline, and a backslash before each backslash, tab, newline, carriage return and NUL
// inside a field.
func AppendRow(b []byte, fields [][]byte) []byte {
	return AppendRowPlain(b, fields, 0)
}

// AppendRowPlain is AppendRow for fields whose plainness the caller knows already (record.Kind.ValidateFields):
// field i, when bit i of plain is set, is record.Plain and copied whole. Any other field is copied whole too
// unless it holds a byte to escape.
func AppendRowPlain(b []byte, fields [][]byte, plain uint64) []byte {
	for i, f := range fields {
		if i > 0 {
			b = append(b, '\t')
		}
		if plain&(1<<i) != 0 || !needsEscape(f) {
			b = append(b, f...)
		} else {
			b = appendEscaped(b, f)
		}
	}
	return append(b, '\n')
}

// needsEscape reports whether f holds a byte that appendEscaped writes as a backslash sequence, or one of a few
// control characters that it does not (0x01 to 0x08, 0x0B, 0x0C); eight bytes at a time, as record.Plain. A field
// that is not Plain is most often so for its letters beyond ASCII, which need no escape.
func needsEscape(f []byte) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	test := func(x uint64) uint64 {
		bs := x ^ ones*'\\'
		return ((x-ones*0x0E)&^x | (bs-ones)&^bs) & highs
	}
	i := 0
	for ; i+8 <= len(f); i += 8 {
		if test(binary.LittleEndian.Uint64(f[i:])) != 0 {
			return true
		}
	}
	for ; i < len(f); i++ {
		if c := f[i]; c < 0x0E || c == '\\' {
			return true
		}
	}
	return false
}

// escaped marks the bytes appendEscaped writes as a backslash sequence.
var escaped = [256]byte{'\\': '\\', '\t': 't', '\n': 'n', '\r': 'r', 0: '0'}

func appendEscaped(b, s []byte) []byte {
	start := 0
	for i := 0; i < len(s); i++ {
		if e := escaped[s[i]]; e != 0 {
			b = append(b, s[start:i]...)
			b = append(b, '\\', e)
			start = i + 1
		}
	}
	return append(b, s[start:]...)
}

// unescaped maps the letter after a backslash back to the byte AppendRow escaped.
var unescaped = [256]byte{'\\': '\\', 't': '\t', 'n': '\n', 'r': '\r', '0': 0}

// splitRow reads back one row that AppendRow wrote, without its newline, into fields of want columns.
func splitRow(line []byte, want int) ([]any, error) {
	fields := make([]any, 0, want)
	var f []byte
	for i := 0; i < len(line); i++ {
		switch c := line[i]; {
		case c == '\t':
			fields = append(fields, string(f))
			f = f[:0]
		case c == '\\' && i+1 < len(line) && (unescaped[line[i+1]] != 0 || line[i+1] == '0'):
			f = append(f, unescaped[line[i+1]])
			i++
		case c == '\\':
			return nil, errors.New("a backslash escapes nothing")
		default:
			f = append(f, c)
		}
	}
	fields = append(fields, string(f))
	if len(fields) != want {
		return nil, fmt.Errorf("%d fields, want %d", len(fields), want)
	}
	return fields, nil
}

// insert stores the rows in multi-row INSERTs and returns how many it inserted.
func (d *DB) insert(ctx context.Context, tx *sql.Tx, t Task, table string) (int, error) {
	cols := len(t.Kind.Columns())
	rows := make([][]any, 0, t.Rows)
	for line := range bytes.SplitSeq(bytes.TrimSuffix(t.Data, []byte{'\n'}), []byte{'\n'}) {
		r, err := splitRow(line, cols)
		if err != nil {
			return 0, fmt.Errorf("repo: task %s: row %d: %w", t.ID, len(rows)+1, err)
		}
		rows = append(rows, r)
	}
	if len(rows) != t.Rows {
		return 0, fmt.Errorf("repo: task %s holds %d rows, and claims %d", t.ID, len(rows), t.Rows)
	}
	added := 0
	for len(rows) > 0 {
		n := d.batchLen(rows, cols)
		a, err := insertBatch(ctx, tx, t.Kind, table, rows[:n])
		if err != nil {
			return 0, err
		}
		added += a
		rows = rows[n:]
	}
	return added, nil
}

// batchLen is how many of rows fit one INSERT: at most RowsPerStatement, at most 65,535 placeholders, and a
// packet within the server's max_allowed_packet. It is at least 1; a single row too large for the packet is
// refused by the server with a clear error.
func (d *DB) batchLen(rows [][]any, placeholders int) int {
	limit := min(len(rows), max(1, d.RowsPerStatement), maxPlaceholders/placeholders)
	budget := d.maxPacket - packetHeadroom
	n := 0
	for n < limit {
		size := placeholders * perValueOverhead
		for _, f := range rows[n] {
			size += len(f.(string))
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
func insertBatch(ctx context.Context, tx *sql.Tx, k record.Kind, table string, rows [][]any) (int, error) {
	key := quoteIdent(k.Columns()[k.KeyIndex()].Name)
	return insertRows(ctx, tx, k, table, rows, key+" = "+key)
}

// insertRows is one multi-row INSERT of rows with onDuplicate as its ON DUPLICATE KEY UPDATE assignments, and
// returns its RowsAffected: 1 a row inserted, 2 a present row changed, 0 one left as it was.
func insertRows(ctx context.Context, tx *sql.Tx, k record.Kind, table string, rows [][]any, onDuplicate string) (int, error) {
	cols := k.Columns()
	var q strings.Builder
	q.WriteString("INSERT INTO " + quoteIdent(table) + " (" + columnList(k) + ") VALUES ")
	tuple := "(" + strings.Repeat("?, ", len(cols)-1) + "?)"
	args := make([]any, 0, len(rows)*len(cols))
	for i, r := range rows {
		if i > 0 {
			q.WriteString(", ")
		}
		q.WriteString(tuple)
		args = append(args, r...)
	}
	q.WriteString(" ON DUPLICATE KEY UPDATE " + onDuplicate)
	res, err := tx.ExecContext(ctx, q.String(), args...)
	var merr *mysql.MySQLError
	if errors.As(err, &merr) && (merr.Number == errDataTooLong || merr.Number == errIncorrectValue || merr.Number == errOutOfRange) {
		return 0, fmt.Errorf("%w: insert %d %s: %w", ErrAltered, len(rows), k, err)
	}
	if err != nil {
		return 0, fmt.Errorf("repo: insert %d %s: %w", len(rows), k, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("repo: insert %d %s: %w", len(rows), k, err)
	}
	return int(n), nil
}
