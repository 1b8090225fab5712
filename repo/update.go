package repo

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/go-sql-driver/mysql"

	"hpnorton/internal/record"
)

// updateRows is update mode: an absent row is added, a present row whose values differ takes the task's, and an
// equal one is left as it is, neither written nor counted as updated. No delete and re-insert, as REPLACE would
// do. Keys settle as without update mode: the enqueuer sends each key of a file once, its first valid occurrence.
//
// The present rows are read first, locked, and compared here; then only the absent rows are written as a fresh
// import writes them, and only the differing ones are overwritten. With every row present and a tenth changed, that
// writes a tenth of what staging every row in a temporary table and joining it did (updateStaged). Under READ
// COMMITTED the locking read takes no gap locks, so another program may add one of the absent keys before they
// are written; the write then finds it present, the task goes back to its savepoint, and updateStaged, which is
// exact under any writer, runs instead.
func (d *DB) updateRows(ctx context.Context, tx *sql.Tx, t Task) (added, updated int, err error) {
	rows, index, err := taskRows(t)
	if err != nil {
		return 0, 0, err
	}
	if _, err := tx.ExecContext(ctx, "SAVEPOINT hpnorton_update"); err != nil {
		return 0, 0, fmt.Errorf("repo: update task %s: %w", t.ID, err)
	}
	added, updated, exact, err := d.updateLocked(ctx, tx, t, rows, index)
	if err != nil || exact {
		return added, updated, err
	}
	if _, err := tx.ExecContext(ctx, "ROLLBACK TO SAVEPOINT hpnorton_update"); err != nil {
		return 0, 0, fmt.Errorf("repo: update task %s: %w", t.ID, err)
	}
	return d.updateStaged(ctx, tx, t)
}

// taskRow is one of a task's rows: its fields, and its line as the task holds it, in LOAD DATA's format.
type taskRow struct {
	fields [][]byte
	line   []byte
}

// taskRows reads back the task's rows and the index of each key, and refuses a task that holds a key twice, as one
// that no retry mends. The fields share one backing array, and the keys are substrings of one copy of the data: a
// task's 20,000 rows then cost a few allocations, not one a row and another a key.
func taskRows(t Task) ([]taskRow, map[string]int, error) {
	cols, ki := len(t.Kind.Columns()), t.Kind.KeyIndex()
	rows := make([]taskRow, 0, t.Rows)
	index := make(map[string]int, t.Rows)
	fields := make([][]byte, 0, t.Rows*cols)
	data := bytes.TrimSuffix(t.Data, []byte{'\n'})
	text := string(data)
	for at := 0; at <= len(data); {
		end := bytes.IndexByte(data[at:], '\n')
		if end < 0 {
			end = len(data)
		} else {
			end += at
		}
		line := data[at:end]
		var err error
		from := len(fields)
		if fields, err = splitFields(fields, line, cols); err != nil {
			return nil, nil, fmt.Errorf("repo: task %s: row %d: %w", t.ID, len(rows)+1, err)
		}
		f := fields[from:len(fields):len(fields)]
		var key string
		if bytes.IndexByte(line, '\\') >= 0 {
			key = string(f[ki])
		} else { // the key's bytes are the data's: share the copy
			start := at + offsetOf(line, ki)
			key = text[start : start+len(f[ki])]
		}
		if _, twice := index[key]; twice {
			return nil, nil, fmt.Errorf("%w: task %s, key %q", ErrRepeatedKey, t.ID, key)
		}
		index[key] = len(rows)
		rows = append(rows, taskRow{f, line})
		at = end + 1
	}
	if len(rows) != t.Rows {
		return nil, nil, fmt.Errorf("repo: task %s holds %d rows, and claims %d", t.ID, len(rows), t.Rows)
	}
	return rows, index, nil
}

// offsetOf is where field i of an unescaped line starts.
func offsetOf(line []byte, i int) int {
	at := 0
	for ; i > 0; i-- {
		at += bytes.IndexByte(line[at:], '\t') + 1
	}
	return at
}

// splitFields appends to fields the want fields of one row that AppendRow wrote, without its newline. A row with
// nothing escaped, as most are, is split in place.
func splitFields(fields [][]byte, line []byte, want int) ([][]byte, error) {
	if bytes.IndexByte(line, '\\') >= 0 {
		vals, err := splitRow(line, want)
		if err != nil {
			return fields, err
		}
		for _, v := range vals {
			fields = append(fields, []byte(v.(string)))
		}
		return fields, nil
	}
	n := 0
	for f := range bytes.SplitSeq(line, []byte{'\t'}) {
		fields = append(fields, f)
		n++
	}
	if n != want {
		return fields, fmt.Errorf("%d fields, want %d", n, want)
	}
	return fields, nil
}

// updateLocked is update mode's way for the common case; exact is false when another program added one of the
// absent keys after the read, and then the transaction must go back to the savepoint.
func (d *DB) updateLocked(ctx context.Context, tx *sql.Tx, t Task, rows []taskRow, index map[string]int) (added, updated int, exact bool, err error) {
	present := make([]bool, len(rows))
	var differ [][]any
	err = lockPresent(ctx, tx, t, rows, func(i int, stored []sql.RawBytes) {
		present[i] = true
		if differs(t.Kind, stored, rows[i].fields) {
			vals := make([]any, len(rows[i].fields))
			for j, f := range rows[i].fields {
				vals[j] = string(f)
			}
			differ = append(differ, vals)
		}
	}, index)
	if err != nil {
		return 0, 0, false, err
	}
	if d.beforeUpdateWrites != nil {
		d.beforeUpdateWrites()
	}
	absent := Task{ID: t.ID, RunID: t.RunID, RunNo: t.RunNo, Kind: t.Kind} // the run's number tags the load (loadTag)
	for i, r := range rows {
		if !present[i] {
			absent.Data = append(append(absent.Data, r.line...), '\n')
			absent.Rows++
		}
	}
	if absent.Rows > 0 {
		if d.Method == Load {
			added, err = load(ctx, tx, absent, t.Kind.Table())
		} else {
			added, err = d.insert(ctx, tx, absent, t.Kind.Table())
		}
		if err != nil || added != absent.Rows {
			return 0, 0, false, err
		}
	}
	updated, exact, err = d.overwrite(ctx, tx, t, differ)
	if err != nil || !exact {
		return 0, 0, false, err
	}
	return added, updated, true, nil
}

// lockPresent reads the stored rows that hold the task's keys, and locks them (FOR UPDATE) so that no other
// program changes or deletes one before the task commits. It gives each to found with the index of the task's row
// of the same key; the values are the driver's, valid only during the call.
func lockPresent(ctx context.Context, tx *sql.Tx, t Task, rows []taskRow, found func(int, []sql.RawBytes), index map[string]int) error {
	const batch = 5000 // keys a statement: far within the placeholders' and the packet's limits
	k := t.Kind
	ki := k.KeyIndex()
	key := quoteIdent(k.Columns()[ki].Name)
	stored := make([]sql.RawBytes, len(k.Columns()))
	dest := make([]any, len(stored))
	for i := range stored {
		dest[i] = &stored[i]
	}
	for from := 0; from < len(rows); from += batch {
		part := rows[from:min(from+batch, len(rows))]
		keys := make([]any, len(part))
		for i, r := range part {
			keys[i] = r.fields[ki]
		}
		q := "SELECT " + columnList(k) + " FROM " + quoteIdent(k.Table()) + " WHERE " + key + " IN (" +
			strings.Repeat("?, ", len(keys)-1) + "?) FOR UPDATE"
		res, err := tx.QueryContext(ctx, q, keys...)
		if err != nil {
			return fmt.Errorf("repo: read the present rows of task %s: %w", t.ID, err)
		}
		for res.Next() {
			if err := res.Scan(dest...); err != nil {
				res.Close()
				return fmt.Errorf("repo: read the present rows of task %s: %w", t.ID, err)
			}
			// The lookup compares bytes, not the collation: a key that pads equal but differs is not found here,
			// is written as absent, is met as present, and sends the task the staged way.
			if i, ok := index[string(stored[ki])]; ok {
				found(i, stored)
			}
		}
		if err := errors.Join(res.Err(), res.Close()); err != nil {
			return fmt.Errorf("repo: read the present rows of task %s: %w", t.ID, err)
		}
	}
	return nil
}

// differs tells whether a stored row's values differ from a task's, byte for byte, as MySQL tells a changed row
// from an unchanged one: under the tables' collation, which pads with spaces, a trailing space added or removed
// would compare equal, and be lost. An integer compares by its value, which is what the column stores.
func differs(k record.Kind, stored []sql.RawBytes, fields [][]byte) bool {
	for i, c := range k.Columns() {
		if c.Integer {
			a, errA := strconv.ParseUint(string(stored[i]), 10, 64)
			b, errB := strconv.ParseUint(string(fields[i]), 10, 64)
			if errA == nil && errB == nil {
				if a != b {
					return true
				}
				continue
			}
		}
		if !bytes.Equal(stored[i], fields[i]) {
			return true
		}
	}
	return false
}

// overwrite gives the present rows the task's values for them, every one of which differs from the stored values,
// and returns how many it changed. The rows are locked, so each counts as changed; should MySQL find one unchanged
// all the same, exact is false, and the staged way, which lets MySQL compare, decides instead.
func (d *DB) overwrite(ctx context.Context, tx *sql.Tx, t Task, rows [][]any) (changed int, exact bool, err error) {
	k := t.Kind
	var set []string
	for i, c := range k.Columns() {
		if i != k.KeyIndex() {
			col := quoteIdent(c.Name)
			set = append(set, col+" = VALUES("+col+")")
		}
	}
	for len(rows) > 0 {
		n := d.batchLen(rows, len(k.Columns()))
		a, err := insertRows(ctx, tx, k, k.Table(), rows[:n], strings.Join(set, ", "))
		if err != nil {
			return 0, false, fmt.Errorf("repo: update the present rows of task %s: %w", t.ID, err)
		}
		if a != 2*n {
			return 0, false, nil
		}
		changed += n
		rows = rows[n:]
	}
	return changed, true, nil
}

// updateStaged is update mode's exact way under any writer. The task's rows go to a temporary staging table first,
// by LOAD DATA or INSERTs as always; then the absent ones are inserted, and a present row whose values differ takes
// the task's. MySQL counts only the rows an UPDATE changed (CLIENT_FOUND_ROWS is off, ParseDSN sees to it), so an
// equal row is neither written nor counted as updated.
func (d *DB) updateStaged(ctx context.Context, tx *sql.Tx, t Task) (added, updated int, err error) {
	staging := "hpnorton_staging_" + t.Kind.Table()
	// A temporary table belongs to the connection, and a transaction's end neither drops nor empties it: a
	// connection back from the pool may hold the last task's.
	for _, q := range []string{"DROP TEMPORARY TABLE IF EXISTS " + quoteIdent(staging), "CREATE TEMPORARY TABLE " + quoteIdent(staging) + " LIKE " + quoteIdent(t.Kind.Table())} {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return 0, 0, fmt.Errorf("repo: stage task %s: %w", t.ID, err)
		}
	}
	defer func() {
		_, _ = tx.ExecContext(context.WithoutCancel(ctx), "DROP TEMPORARY TABLE IF EXISTS "+quoteIdent(staging))
	}()
	var staged int
	if d.Method == Load {
		staged, err = load(ctx, tx, t, staging)
	} else {
		staged, err = d.insert(ctx, tx, t, staging)
	}
	if err != nil {
		return 0, 0, err
	}
	if staged != t.Rows {
		return 0, 0, fmt.Errorf("%w: task %s, %d of its %d rows staged", ErrRepeatedKey, t.ID, staged, t.Rows)
	}
	if added, err = addAbsent(ctx, tx, t, staging); err != nil {
		return 0, 0, err
	}
	if updated, err = updateDiffering(ctx, tx, t, staging); err != nil {
		return 0, 0, err
	}
	return added, updated, nil
}

// addAbsent inserts the staged rows that the task's table lacks, and returns how many.
//
// The absent rows are those the table lacks as the INSERT reads it: a lookup a row, where an INSERT of every row
// that leaves the present ones alone (ON DUPLICATE KEY UPDATE key = key) tries each one, 27 ms against 64 ms for a
// 20,000-row task with every row present. Under READ COMMITTED that read is not locked, so another program may add
// one of the keys before the INSERT reaches it; the INSERT then fails on the duplicate, is undone alone, and the
// slower way runs instead, which is exact under any writer.
func addAbsent(ctx context.Context, tx *sql.Tx, t Task, staging string) (int, error) {
	k := t.Kind
	table, s, cols := quoteIdent(k.Table()), quoteIdent(staging), columnList(k)
	key := quoteIdent(k.Columns()[k.KeyIndex()].Name)
	res, err := tx.ExecContext(ctx, "INSERT INTO "+table+" ("+cols+") SELECT "+prefixed("s.", k)+" FROM "+s+" AS s LEFT JOIN "+table+
		" AS d ON d."+key+" = s."+key+" WHERE d."+key+" IS NULL ORDER BY s."+key)
	if merr := (*mysql.MySQLError)(nil); errors.As(err, &merr) && merr.Number == errDupEntry {
		res, err = tx.ExecContext(ctx, "INSERT INTO "+table+" ("+cols+") SELECT "+cols+" FROM "+s+" ORDER BY "+key+
			" ON DUPLICATE KEY UPDATE "+table+"."+key+" = "+table+"."+key)
	}
	if err != nil {
		return 0, fmt.Errorf("repo: add the absent rows of task %s: %w", t.ID, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("repo: add the absent rows of task %s: %w", t.ID, err)
	}
	return int(n), nil
}

// updateDiffering gives the present rows whose values differ from the staged ones the staged values, and returns
// how many it changed.
//
// Only the rows that differ join: an UPDATE of two tables holds every row it joins in a temporary table before it
// writes, and with every present row joined it took 300 ms of a 20,000-row task where 2,000 had changed, against
// 47 ms. The values compare byte for byte, as the UPDATE itself does: under the tables' collation, which pads with
// spaces, a trailing space added or removed would compare equal, and be lost.
func updateDiffering(ctx context.Context, tx *sql.Tx, t Task, staging string) (int, error) {
	k := t.Kind
	key := quoteIdent(k.Columns()[k.KeyIndex()].Name)
	var set, differ []string
	for i, c := range k.Columns() {
		if i != k.KeyIndex() {
			col := quoteIdent(c.Name)
			set = append(set, "d."+col+" = s."+col)
			differ = append(differ, "NOT (BINARY d."+col+" <=> BINARY s."+col+")")
		}
	}
	res, err := tx.ExecContext(ctx, "UPDATE "+quoteIdent(k.Table())+" AS d JOIN "+quoteIdent(staging)+" AS s ON d."+key+" = s."+key+
		" SET "+strings.Join(set, ", ")+" WHERE "+strings.Join(differ, " OR "))
	if err != nil {
		return 0, fmt.Errorf("repo: update the present rows of task %s: %w", t.ID, err)
	}
	u, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("repo: update the present rows of task %s: %w", t.ID, err)
	}
	return int(u), nil
}
