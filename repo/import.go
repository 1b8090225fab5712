package repo

import (
	"bytes"
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
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

// ErrUnknownRun means a task names a run this database did not register: it was meant for another database.
var ErrUnknownRun = errors.New("repo: this database registered no such run")

// Task identifies one import task for ImportTask.
type Task struct {
	ID    string
	RunID string
	// RunNo is the number StartRun gave the run; the task's rows carry it in import_run.
	RunNo uint64
	Kind  record.Kind
}

// Written is what ImportTask did with a task's rows. Every row is either added, present or a duplicate.
type Written struct {
	// Added counts rows this task stored, Present rows whose key an earlier run stored; those are left alone.
	Added, Present int
	// Duplicates are rows whose key the run's file holds on an earlier line; the earliest line is the one stored.
	// When this task's row replaced a later line that another task had stored, the duplicate is that later line:
	// it lies outside this task's rows.
	Duplicates []Duplicate
	// Displaced counts those replacements. The task that stored the later line counted it as added, so the run's
	// added rows are the sum of Added less the sum of Displaced, whatever order the tasks ran in.
	// DisplacedPresent is the same for a key an earlier run stored: the other task counted its later line as
	// present, so the run's present rows are the sum of Present less the sum of DisplacedPresent.
	Displaced, DisplacedPresent int
	// Redelivered is true when an earlier delivery of the same task had already committed; the counts are then
	// that delivery's, and nothing was written now.
	Redelivered bool
}

// Duplicate is a line whose key the file held first on FirstLine. FirstLine is the earliest line this task saw;
// when a key occurs three times or more and tasks run out of order, the run's report settles the first of all.
// LastLine is the record's last line when it is known; a row displaced from the table is known by its first line
// only.
type Duplicate struct {
	Line      int    `json:"line"`
	LastLine  int    `json:"last_line,omitempty"`
	FirstLine int    `json:"first_line"`
	Key       string `json:"key"`
}

// ImportTask inserts the rows of one task that are not yet present, together with the task's record, in one
// transaction. Running it again for the same task ID writes nothing and returns the first run's counts, so an
// at-least-once queue cannot double any count. A deadlock or lock wait timeout retries the whole transaction.
//
// Each row's Line must be its line in the file: when the run's file holds a key twice, the lower line wins.
func (d *DB) ImportTask(ctx context.Context, t Task, rows []record.Row) (Written, error) {
	if t.RunNo == 0 {
		return Written{}, fmt.Errorf("repo: task %s has no run number; register the run with StartRun", t.ID)
	}
	// Taking row locks in key order means two tasks with overlapping keys wait for each other instead of
	// deadlocking: neither can hold a key the other needs before it needs one the other holds. The sort is stable,
	// so a key repeated within the chunk keeps its first line first, and that is the occurrence MySQL stores.
	key := t.Kind.KeyIndex()
	byKey := func(a, b record.Row) int { return strings.Compare(a.Fields[key], b.Fields[key]) }
	if !slices.IsSortedFunc(rows, byKey) { // files often come sorted by key already
		rows = slices.Clone(rows)
		slices.SortStableFunc(rows, byKey)
	}
	rows, dups := dropRepeats(rows, key)

	var lastErr error
	for attempt := range txAttempts {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return Written{}, ctx.Err()
			case <-time.After(time.Duration(attempt*attempt) * 50 * time.Millisecond):
			}
		}
		w, err := d.importOnce(ctx, t, rows, dups)
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

// dropRepeats removes the rows whose key an earlier row of the sorted chunk holds. The sort was stable, so the row
// kept is the one from the lowest line. The caller's slice is left as it was.
func dropRepeats(rows []record.Row, key int) ([]record.Row, []Duplicate) {
	i := 1
	for i < len(rows) && rows[i].Fields[key] != rows[i-1].Fields[key] {
		i++
	}
	if i >= len(rows) {
		return rows, nil // the usual case: no key repeats within the chunk
	}
	kept := slices.Clone(rows[:i])
	var dups []Duplicate
	for _, r := range rows[i:] {
		if last := kept[len(kept)-1]; last.Fields[key] == r.Fields[key] {
			dups = append(dups, Duplicate{Line: r.Line, LastLine: r.LastLine, FirstLine: last.Line, Key: r.Fields[key]})
			continue
		}
		kept = append(kept, r)
	}
	return kept, dups
}

func (d *DB) importOnce(ctx context.Context, t Task, rows []record.Row, dups []Duplicate) (w Written, err error) {
	// READ COMMITTED: keepFirst reads import_seen rows that other tasks committed after this transaction began,
	// and must see them. Its row locks, not a snapshot, are what keep two tasks from settling one key at once.
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
		return d.committed(ctx, t.ID)
	}
	if err != nil {
		return Written{}, fmt.Errorf("repo: claim task %s: %w", t.ID, err)
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		err = cmp.Or(err, fmt.Errorf("%w: run %s number %d, task %s", ErrUnknownRun, t.RunID, t.RunNo, t.ID))
		return Written{}, err
	}

	if d.Method == Load {
		w.Added, err = load(ctx, tx, t, rows)
	} else {
		w.Added, err = d.insert(ctx, tx, t, rows)
	}
	if err != nil {
		return Written{}, err
	}
	w.Present = len(rows) - w.Added
	w.Duplicates = slices.Clone(dups)
	if w.Present > 0 {
		if err = keepFirst(ctx, tx, t, rows, &w); err != nil {
			return Written{}, err
		}
	}
	slices.SortFunc(w.Duplicates, func(a, b Duplicate) int { return a.Line - b.Line })
	dupJSON, err := encodeDuplicates(w.Duplicates)
	if err != nil {
		return Written{}, err
	}
	_, err = tx.ExecContext(ctx, "UPDATE import_tasks SET added = ?, present = ?, displaced = ?, displaced_present = ?, duplicates = ?, finished_at = NOW(6) WHERE task_id = ?",
		w.Added, w.Present, w.Displaced, w.DisplacedPresent, dupJSON, t.ID)
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
	var dups sql.NullString
	err := d.db.QueryRowContext(ctx, "SELECT added, present, displaced, displaced_present, duplicates FROM import_tasks WHERE task_id = ?", taskID).
		Scan(&w.Added, &w.Present, &w.Displaced, &w.DisplacedPresent, &dups)
	if err != nil {
		return Written{}, fmt.Errorf("repo: read task %s: %w", taskID, err)
	}
	if w.Duplicates, err = decodeDuplicates(dups.String); err != nil {
		return Written{}, fmt.Errorf("repo: read task %s: %w", taskID, err)
	}
	return w, nil
}

// encodeDuplicates lays out a task's duplicates for import_tasks as JSON; NULL when there are none, which is
// nearly always.
func encodeDuplicates(dups []Duplicate) (any, error) {
	if len(dups) == 0 {
		return nil, nil
	}
	b, err := json.Marshal(dups)
	if err != nil {
		return nil, fmt.Errorf("repo: encode duplicates: %w", err)
	}
	return string(b), nil
}

func decodeDuplicates(s string) ([]Duplicate, error) {
	if s == "" {
		return nil, nil
	}
	var dups []Duplicate
	if err := json.Unmarshal([]byte(s), &dups); err != nil {
		return nil, fmt.Errorf("decode duplicates: %w", err)
	}
	return dups, nil
}

// columnList is the kind's columns followed by the lineage columns, as an INSERT or LOAD DATA lists them.
func columnList(k record.Kind) string {
	var b strings.Builder
	for _, c := range k.Columns() {
		b.WriteString(quoteIdent(c.Name))
		b.WriteString(", ")
	}
	b.WriteString("import_run, import_line")
	return b.String()
}

// readerSeq names each load's reader: the driver's reader registry is global to the process, and loads of several
// tasks run at once.
var readerSeq atomic.Uint64

// load stores the rows through LOAD DATA LOCAL INFILE and returns how many it inserted. With LOCAL, MySQL skips a
// row whose key is present, as INSERT IGNORE would, and goes on.
func load(ctx context.Context, tx *sql.Tx, t Task, rows []record.Row) (int, error) {
	data := encodeRows(rows, t.RunNo)
	name := "hpnorton-" + strconv.FormatUint(readerSeq.Add(1), 10)
	mysql.RegisterReaderHandler(name, func() io.Reader { return bytes.NewReader(data) })
	defer mysql.DeregisterReaderHandler(name)

	// The rows travel tab-separated with backslash escapes, MySQL's native LOAD DATA format, rather than as the
	// original CSV: the server then never has to agree with encoding/csv on quoting, and validation has already
	// decided what each field holds.
	q := "LOAD DATA LOCAL INFILE 'Reader::" + name + "' INTO TABLE " + quoteIdent(t.Kind.Table()) +
		" CHARACTER SET utf8mb4 FIELDS TERMINATED BY '\\t' ESCAPED BY '\\\\' LINES TERMINATED BY '\\n' (" + columnList(t.Kind) + ")"
	res, err := tx.ExecContext(ctx, q)
	if err != nil {
		return 0, fmt.Errorf("repo: load %d %s: %w", len(rows), t.Kind, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("repo: load %d %s: %w", len(rows), t.Kind, err)
	}
	// LOAD DATA LOCAL also turns data errors into warnings: a value too long for its column would be cut and
	// stored. Validation rules that out; this is the second fence. Each skipped duplicate leaves one warning, and
	// any warning beyond those fails the task, whose transaction then rolls back whole.
	var warnings int
	if err := tx.QueryRowContext(ctx, "SELECT @@warning_count").Scan(&warnings); err != nil {
		return 0, fmt.Errorf("repo: load %d %s: read warnings: %w", len(rows), t.Kind, err)
	}
	if skipped := len(rows) - int(n); warnings > skipped {
		return 0, loadWarning(ctx, tx, t, warnings-skipped)
	}
	return int(n), nil
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
			return fmt.Errorf("repo: MySQL would have altered a value of task %s, so nothing of it is stored: %s %d: %s", t.ID, level, code, msg)
		}
	}
	return fmt.Errorf("repo: MySQL would have altered %d values of task %s, so nothing of it is stored", extra, t.ID)
}

// encodeRows lays rows out in LOAD DATA's default format: fields separated by tabs, lines ended by newlines, and a
// backslash before each backslash, tab, newline, carriage return and NUL inside a field. The run number and the
// line follow each row's fields.
func encodeRows(rows []record.Row, runNo uint64) []byte {
	size := 0
	for _, r := range rows {
		for _, f := range r.Fields {
			size += len(f) + 1
		}
		size += 2 * 21
	}
	b := make([]byte, 0, size+size/32)
	for _, r := range rows {
		for _, f := range r.Fields {
			b = appendEscaped(b, f)
			b = append(b, '\t')
		}
		b = strconv.AppendUint(b, runNo, 10)
		b = append(b, '\t')
		b = strconv.AppendInt(b, int64(r.Line), 10)
		b = append(b, '\n')
	}
	return b
}

// escaped marks the bytes appendEscaped writes as a backslash sequence.
var escaped = [256]byte{'\\': '\\', '\t': 't', '\n': 'n', '\r': 'r', 0: '0'}

func appendEscaped(b []byte, s string) []byte {
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

// insert stores the rows in multi-row INSERTs and returns how many it inserted.
func (d *DB) insert(ctx context.Context, tx *sql.Tx, t Task, rows []record.Row) (int, error) {
	added := 0
	for len(rows) > 0 {
		n := d.batchLen(rows, len(t.Kind.Columns())+2)
		a, err := insertBatch(ctx, tx, t, rows[:n])
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
func (d *DB) batchLen(rows []record.Row, placeholders int) int {
	limit := min(len(rows), max(1, d.RowsPerStatement), maxPlaceholders/placeholders)
	budget := d.maxPacket - packetHeadroom
	n := 0
	for n < limit {
		size := placeholders * perValueOverhead
		for _, f := range rows[n].Fields {
			size += len(f)
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
func insertBatch(ctx context.Context, tx *sql.Tx, t Task, rows []record.Row) (int, error) {
	cols := t.Kind.Columns()
	var q strings.Builder
	q.WriteString("INSERT INTO " + quoteIdent(t.Kind.Table()) + " (" + columnList(t.Kind) + ") VALUES ")
	tuple := "(" + strings.Repeat("?, ", len(cols)+1) + "?)"
	args := make([]any, 0, len(rows)*(len(cols)+2))
	for i, r := range rows {
		if i > 0 {
			q.WriteString(", ")
		}
		q.WriteString(tuple)
		for _, f := range r.Fields {
			args = append(args, f)
		}
		args = append(args, t.RunNo, r.Line)
	}
	key := quoteIdent(cols[t.Kind.KeyIndex()].Name)
	q.WriteString(" ON DUPLICATE KEY UPDATE " + key + " = " + key)
	res, err := tx.ExecContext(ctx, q.String(), args...)
	if err != nil {
		return 0, fmt.Errorf("repo: insert %d %s: %w", len(rows), t.Kind, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("repo: insert %d %s: %w", len(rows), t.Kind, err)
	}
	return int(n), nil
}

// keysPerLookup bounds the keys of one SELECT … IN list in keepFirst.
const keysPerLookup = 1000

// keepFirst settles keys that this run's file holds more than once, across tasks; the load has counted each such
// row as present. Tasks run in any order, so a later line of the file may have been handled before this task's
// earlier line. Whatever the order, the first occurrence wins and every other one is reported once, naming the
// first line, as in linear mode:
//   - a key this run stored from a later line is replaced by this task's row, and the later line is the duplicate;
//   - a key this run stored from an earlier line makes this task's row the duplicate;
//   - a key an earlier run stored is left alone, but import_seen keeps the first line this run found it on, so
//     that its later lines are duplicates too, and an earlier line takes the place of a later one.
//
// The lookup locks the rows it reads (FOR UPDATE), so no other task can change a key's line between the look and
// the change; the import_seen row of a key is only touched under that lock too. The keys are sorted, so the locks
// are taken in key order, as the load took its own.
func keepFirst(ctx context.Context, tx *sql.Tx, t Task, rows []record.Row, w *Written) error {
	k := t.Kind
	cols := k.Columns()
	table, key := quoteIdent(k.Table()), quoteIdent(cols[k.KeyIndex()].Name)
	var set strings.Builder
	for _, c := range cols {
		set.WriteString(quoteIdent(c.Name) + " = ?, ")
	}
	update := "UPDATE " + table + " SET " + set.String() + "import_line = ? WHERE " + key + " = ? AND import_run = ? AND import_line = ?"

	for len(rows) > 0 {
		batch := rows[:min(len(rows), keysPerLookup)]
		rows = rows[len(batch):]
		keys := make([]any, len(batch))
		for i, r := range batch {
			keys[i] = r.Key(k)
		}
		in := " IN (" + strings.Repeat("?, ", len(batch)-1) + "?)"
		stored, err := storedLines(ctx, tx, "SELECT "+key+", import_run, import_line FROM "+table+" WHERE "+key+in+" FOR UPDATE", keys)
		if err != nil {
			return fmt.Errorf("repo: task %s: look up repeated keys: %w", t.ID, err)
		}
		var present []record.Row // keys an earlier run stored
		for _, r := range batch {
			s, ok := stored[r.Key(k)]
			switch {
			case !ok || s.run == t.RunNo && s.line == int64(r.Line): // this row itself (a loaded key is always found)
				continue
			case s.run != t.RunNo:
				present = append(present, r)
				continue
			case s.line < int64(r.Line):
				w.Present--
				w.Duplicates = append(w.Duplicates, Duplicate{Line: r.Line, LastLine: r.LastLine, FirstLine: int(s.line), Key: r.Key(k)})
				continue
			}
			args := make([]any, 0, len(cols)+4)
			for _, f := range r.Fields {
				args = append(args, f)
			}
			args = append(args, r.Line, r.Key(k), t.RunNo, s.line)
			if _, err := tx.ExecContext(ctx, update, args...); err != nil {
				return fmt.Errorf("repo: task %s: keep line %d of key %q: %w", t.ID, r.Line, r.Key(k), err)
			}
			w.Present--
			w.Added++
			w.Displaced++
			w.Duplicates = append(w.Duplicates, Duplicate{Line: int(s.line), FirstLine: r.Line, Key: r.Key(k)})
		}
		if err := settlePresent(ctx, tx, t, present, w); err != nil {
			return err
		}
	}
	return nil
}

// settlePresent records in import_seen the first line on which this run found each of rows' keys, all of which an
// earlier run stored, and reports the lines that repeat a key.
func settlePresent(ctx context.Context, tx *sql.Tx, t Task, rows []record.Row, w *Written) error {
	if len(rows) == 0 {
		return nil
	}
	k := t.Kind
	args := []any{t.RunNo, k.String()}
	for _, r := range rows {
		args = append(args, r.Key(k))
	}
	seen, err := storedLines(ctx, tx, "SELECT item_key, 0, line FROM import_seen WHERE run_no = ? AND kind = ? AND item_key IN ("+
		strings.Repeat("?, ", len(rows)-1)+"?)", args)
	if err != nil {
		return fmt.Errorf("repo: task %s: look up keys seen: %w", t.ID, err)
	}
	var first []any // rows of import_seen to insert: run, kind, key, line
	for _, r := range rows {
		s, ok := seen[r.Key(k)]
		switch {
		case !ok:
			first = append(first, t.RunNo, k.String(), r.Key(k), r.Line)
		case s.line < int64(r.Line):
			w.Present--
			w.Duplicates = append(w.Duplicates, Duplicate{Line: r.Line, LastLine: r.LastLine, FirstLine: int(s.line), Key: r.Key(k)})
		case s.line > int64(r.Line):
			_, err := tx.ExecContext(ctx, "UPDATE import_seen SET line = ? WHERE run_no = ? AND kind = ? AND item_key = ?", r.Line, t.RunNo, k.String(), r.Key(k))
			if err != nil {
				return fmt.Errorf("repo: task %s: keep line %d of key %q: %w", t.ID, r.Line, r.Key(k), err)
			}
			w.DisplacedPresent++
			w.Duplicates = append(w.Duplicates, Duplicate{Line: int(s.line), FirstLine: r.Line, Key: r.Key(k)})
		}
	}
	if len(first) > 0 {
		q := "INSERT INTO import_seen (run_no, kind, item_key, line) VALUES " + strings.TrimSuffix(strings.Repeat("(?, ?, ?, ?), ", len(first)/4), ", ")
		if _, err := tx.ExecContext(ctx, q, first...); err != nil {
			return fmt.Errorf("repo: task %s: record keys seen: %w", t.ID, err)
		}
	}
	return nil
}

// storedRow is where a key stands: the run that stored it and its line in that run's file.
type storedRow struct {
	run  uint64
	line int64
}

// storedLines runs q, which selects a key, a run number and a line, and returns them by key.
func storedLines(ctx context.Context, tx *sql.Tx, q string, args []any) (map[string]storedRow, error) {
	rows, err := tx.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	stored := map[string]storedRow{}
	for rows.Next() {
		var key string
		var s storedRow
		if err := rows.Scan(&key, &s.run, &s.line); err != nil {
			return nil, err
		}
		stored[key] = s
	}
	return stored, rows.Err()
}
