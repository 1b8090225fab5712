package repo

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
)

// The locking read of update mode: the stored rows that hold an update task's keys, read and locked before the
// task writes (updateLocked).

// lockPresent reads the stored rows that hold the task's keys, and locks them (FOR UPDATE) so that no other
// program changes or deletes one before the task commits. It gives each to found with the index of the task's row
// of the same key, and stops at found's error; the values are the driver's, valid only during the call. order is
// the rows' indexes in the byte order of their keys (taskRows).
//
// The keys go 5,000 at a time. A list of 5,000 keys (IN) cost MariaDB 11 ms, most of it to take the list in,
// against 2–3 ms for a read of the range from the least key to the greatest that returns the same rows. So, when
// ranges is set, the range is read first, up to twice as many rows as keys. Its stored rows that are not the task's
// are read, locked until the task commits, and left alone; a file whose keys are sparse among the stored ones
// reaches the bound, and the keys beyond the last row read then go in a list. ranges is for a task apart from the
// file's others (Task.Apart) that held its rows in key order: the tasks of a file sorted by its key read ranges
// that do not overlap, where those of a file in no order (whose chunks the enqueuer sorts each) would each lock
// the others' rows, and wait for them. A range read also waits, while it reads, for the stored row just past
// its end if another transaction holds it, as the next task of a sorted file may: that wait ends with that task,
// and since every task takes its locks in key order, it cannot close a cycle.
func lockPresent(ctx context.Context, tx *sql.Tx, t Task, rows []taskRow, found func(int, []sql.RawBytes) error, order []int, ranges bool) error {
	const batch = 5000 // keys a statement: a list of 150 KB, far within the packet's limit
	k := t.Kind
	r := presentRead{ctx: ctx, tx: tx, t: t, rows: rows, found: found, ki: k.KeyIndex(), stored: make([]sql.RawBytes, len(k.Columns()))}
	r.head = "SELECT " + columnList(k) + " FROM " + quoteIdent(k.Table()) + " WHERE " + quoteIdent(k.Columns()[r.ki].Name)
	for i := range r.stored {
		r.dest = append(r.dest, &r.stored[i])
	}
	for from := 0; from < len(order); from += batch {
		part := order[from:min(from+batch, len(order))]
		// Keys of printable characters sort as their bytes do, under the tables' collation too; a key that holds a
		// control character may not (PAD SPACE: "K\x01" comes before "K"), and goes in the list.
		var plain, listed []int
		for _, i := range part {
			if ranges && orderedKey(rows[i].key) {
				plain = append(plain, i)
			} else {
				listed = append(listed, i)
			}
		}
		beyond, err := r.rangeOf(plain)
		if err != nil {
			return err
		}
		if err := r.list(append(listed, beyond...)); err != nil {
			return err
		}
	}
	return nil
}

// presentRead is one task's locking read of its present rows (lockPresent).
type presentRead struct {
	ctx    context.Context
	tx     *sql.Tx
	t      Task
	rows   []taskRow
	found  func(int, []sql.RawBytes) error
	ki     int    // the key's column
	head   string // the statement up to the key's condition
	q      []byte // the statement, made anew for each read
	stored []sql.RawBytes
	dest   []any
}

// rangeOf reads the stored rows from the least key of plain (indexes of rows with ordered keys, in key order) to
// the greatest, up to twice as many rows as plain holds, and returns the indexes of the keys beyond the last row
// read when the bound cut it short.
func (r *presentRead) rangeOf(plain []int) (beyond []int, err error) {
	if len(plain) == 0 {
		return nil, nil
	}
	limit := 2 * len(plain)
	r.q = appendKey(append(append(r.q[:0], r.head...), " BETWEEN "...), r.rows[plain[0]].key)
	r.q = appendKey(append(r.q, " AND "...), r.rows[plain[len(plain)-1]].key)
	r.q = append(append(r.q, " LIMIT "...), strconv.Itoa(limit)+" FOR UPDATE"...)
	n, last := 0, []byte(nil)
	err = r.read(plain, func(key []byte) {
		n++
		if orderedKey(key) {
			last = append(last[:0], key...)
		}
	})
	if err != nil || n < limit {
		return nil, err
	}
	// The keys up to the last ordered key read are settled, found or absent; those beyond it are not.
	at, _ := slices.BinarySearchFunc(plain, last, func(i int, key []byte) int {
		if bytes.Compare(r.rows[i].key, key) <= 0 {
			return -1
		}
		return 1
	})
	return plain[at:], nil
}

// list reads the stored rows of the keys of listed, by name.
func (r *presentRead) list(listed []int) error {
	if len(listed) == 0 {
		return nil
	}
	slices.SortFunc(listed, func(a, b int) int { return bytes.Compare(r.rows[a].key, r.rows[b].key) })
	r.q = append(append(r.q[:0], r.head...), " IN ("...)
	for n, i := range listed {
		if n > 0 {
			r.q = append(r.q, ", "...)
		}
		r.q = appendKey(r.q, r.rows[i].key)
	}
	r.q = append(r.q, ") FOR UPDATE"...)
	return r.read(listed, func([]byte) {})
}

// read runs the statement in r.q, gives each stored row's key to each, and the rows of the task's keys among the
// indexes of among, in key order, to found.
func (r *presentRead) read(among []int, each func(key []byte)) error {
	res, err := r.tx.QueryContext(r.ctx, string(r.q))
	if err != nil {
		return fmt.Errorf("repo: read the present rows of task %s: %w", r.t.ID, err)
	}
	defer res.Close()
	next := 0
	for res.Next() {
		if err := res.Scan(r.dest...); err != nil {
			return fmt.Errorf("repo: read the present rows of task %s: %w", r.t.ID, err)
		}
		key := r.stored[r.ki]
		each(key)
		if i, ok := match(r.rows, among, &next, key); ok {
			if err := r.found(i, r.stored); err != nil {
				return err
			}
		}
	}
	if err := errors.Join(res.Err(), res.Close()); err != nil {
		return fmt.Errorf("repo: read the present rows of task %s: %w", r.t.ID, err)
	}
	return nil
}

// appendKey writes a key as a SQL literal: hexadecimal, so that no key needs escaping, whatever its bytes and the
// server's SQL mode, and the driver need not interpolate thousands of arguments. The introducer makes it a utf8mb4
// string, which compares under the column's collation, so the primary key serves the read.
func appendKey(q, key []byte) []byte {
	q = append(q, "_utf8mb4 X'"...)
	return append(hex.AppendEncode(q, key), '\'')
}

// orderedKey tells a key whose order among others under the tables' collation (utf8mb4_bin, PAD SPACE) is its
// bytes' order: one without a byte below the space. Keys never end in a space (record.Kind.ValidateFields).
func orderedKey(key []byte) bool {
	for _, c := range key {
		if c < ' ' {
			return false
		}
	}
	return true
}

// match finds the task's row whose key is the bytes of key among rows' indexes in their keys' byte order. Stored
// rows come in that order too, so the row is almost always the next one (next); otherwise a binary search finds
// it. The lookup compares bytes, not the collation: a key that pads equal but differs is not found here, is
// written as absent, is met as present, and sends the task the staged way.
func match(rows []taskRow, among []int, next *int, key []byte) (int, bool) {
	for *next < len(among) && bytes.Compare(rows[among[*next]].key, key) < 0 {
		*next++
	}
	if *next < len(among) && bytes.Equal(rows[among[*next]].key, key) {
		*next++
		return among[*next-1], true
	}
	j, ok := slices.BinarySearchFunc(among, key, func(i int, key []byte) int { return bytes.Compare(rows[i].key, key) })
	if !ok {
		return 0, false
	}
	return among[j], true
}
