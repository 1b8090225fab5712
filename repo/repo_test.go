package repo

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/google/go-cmp/cmp"

	"hpnorton/internal/record"
	"hpnorton/internal/testenv"
)

type testBundle struct {
	db  *DB
	dsn string
	ns  string
	ctx context.Context

	mu   sync.Mutex
	runs map[string]uint64 // run numbers by run ID
}

func setup(t *testing.T) *testBundle {
	t.Helper()
	ns := testenv.Namespace(t)
	dsn := testenv.MySQL(t, ns)
	db, err := Open(t.Context(), dsn)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return &testBundle{db: db, dsn: dsn, ns: ns, ctx: t.Context(), runs: map[string]uint64{}}
}

// task returns a task of the named run, registering the run the first time it is named.
func (b *testBundle) task(t testing.TB, runID string, k record.Kind, firstLine int) Task {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	no, ok := b.runs[runID]
	if !ok {
		var err error
		if no, err = b.db.StartRun(b.ctx, runID, DefaultKeepRuns); err != nil {
			t.Fatalf("StartRun(%s): %v", runID, err)
		}
		b.runs[runID] = no
	}
	return Task{ID: fmt.Sprintf("%s:%s:%d", runID, k, firstLine), RunID: runID, RunNo: no, Kind: k}
}

// forEachMethod runs a test once for each way ImportTask can write, each with its own database.
func forEachMethod(t *testing.T, test func(t *testing.T, b *testBundle)) {
	for _, m := range []Method{Load, Insert} {
		t.Run(m.String(), func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			if m == Load && b.db.Method != Load {
				t.Fatal("the test server refuses LOAD DATA LOCAL; set local_infile=ON")
			}
			b.db.Method = m
			test(t, b)
		})
	}
}

func bytesOf(fields []string) [][]byte {
	b := make([][]byte, len(fields))
	for i, f := range fields {
		b[i] = []byte(f)
	}
	return b
}

// testRow is a row as a test writes it: the line it came from and its fields.
type testRow struct {
	Line   int
	Fields []string
}

// withRows returns the task carrying rows in LOAD DATA's format, as the enqueuer sends them.
func withRows(t Task, rows []testRow) Task {
	t.Data = nil
	for _, r := range rows {
		t.Data = AppendRow(t.Data, bytesOf(r.Fields))
	}
	t.Rows = len(rows)
	return t
}

func products(keys ...string) []testRow {
	rows := make([]testRow, len(keys))
	for i, k := range keys {
		rows[i] = testRow{Line: i + 2, Fields: []string{k, "desk " + k, "office", fmt.Sprint(i)}}
	}
	return rows
}

// descriptions is every stored product's description, by key.
func (b *testBundle) descriptions(t *testing.T) map[string]string {
	t.Helper()
	got := map[string]string{}
	q, err := b.db.db.QueryContext(b.ctx, "SELECT product_id, description FROM products")
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	for q.Next() {
		var k, v string
		if err := q.Scan(&k, &v); err != nil {
			t.Fatal(err)
		}
		got[k] = v
	}
	if err := q.Err(); err != nil {
		t.Fatal(err)
	}
	return got
}

func (b *testBundle) count(t *testing.T, k record.Kind) int64 {
	t.Helper()
	n, err := b.db.Count(b.ctx, k)
	if err != nil {
		t.Fatalf("Count: %v", err)
	}
	return n
}

// TestSchemaMatchesRecord keeps the embedded schema and record's column list in step.
func TestSchemaMatchesRecord(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, k := range record.Kinds {
		rows, err := b.db.db.QueryContext(b.ctx, `SELECT column_name, COALESCE(character_maximum_length, 0), column_key
			FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name = ?
			ORDER BY ordinal_position`, k.Table())
		if err != nil {
			t.Fatal(err)
		}
		var got []record.Column
		for rows.Next() {
			var c record.Column
			var key string
			if err := rows.Scan(&c.Name, &c.MaxChars, &key); err != nil {
				t.Fatal(err)
			}
			c.Key = key == "PRI"
			c.Integer = c.MaxChars == 0
			got = append(got, c)
		}
		rows.Close()
		if diff := cmp.Diff(k.Columns(), got); diff != "" {
			t.Errorf("%v columns (-record, +MySQL):\n%s", k, diff)
		}
	}
}

func TestOpenCreatesDatabase(t *testing.T) {
	t.Parallel()
	b := setup(t)
	// Open on a DSN whose database does not exist yet creates it and its schema.
	cfg, err := mysql.ParseDSN(b.dsn)
	if err != nil {
		t.Fatal(err)
	}
	cfg.DBName = b.ns + "_new"
	t.Cleanup(func() { b.db.db.Exec("DROP DATABASE IF EXISTS `" + cfg.DBName + "`") })
	db, err := Open(b.ctx, cfg.FormatDSN())
	if err != nil {
		t.Fatalf("Open(new database): %v", err)
	}
	defer db.Close()
	if n, err := db.Count(b.ctx, record.Customers); err != nil || n != 0 {
		t.Fatalf("Count in the new database = %d, %v; want 0, nil", n, err)
	}
}

// TestMigrationFromEarlierSchema opens a database that an earlier version made and filled: tables with the
// lineage columns import_run and import_line, import_seen, import_tasks with the settling columns, and
// import_runs without expires_at. Open brings it to schema.sql's shape and keeps every stored row.
func TestMigrationFromEarlierSchema(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, q := range []string{
		"ALTER TABLE customers ADD COLUMN import_run BIGINT UNSIGNED NOT NULL DEFAULT 0, ADD COLUMN import_line BIGINT UNSIGNED NOT NULL DEFAULT 0",
		"ALTER TABLE products ADD COLUMN import_run BIGINT UNSIGNED NOT NULL DEFAULT 0, ADD COLUMN import_line BIGINT UNSIGNED NOT NULL DEFAULT 0",
		"ALTER TABLE import_tasks ADD COLUMN displaced INT UNSIGNED NOT NULL DEFAULT 0, ADD COLUMN duplicates MEDIUMTEXT NULL, ADD COLUMN displaced_present INT UNSIGNED NOT NULL DEFAULT 0",
		"ALTER TABLE import_runs DROP KEY import_runs_expires, DROP COLUMN expires_at",
		"CREATE TABLE import_seen (run_no BIGINT UNSIGNED NOT NULL, kind VARCHAR(16) NOT NULL, item_key VARCHAR(64) NOT NULL, line BIGINT UNSIGNED NOT NULL, PRIMARY KEY (run_no, kind, item_key))",
		"INSERT INTO products (product_id, description, product_type, quantity_available, import_run, import_line) VALUES ('P1', 'old desk', 'office', 3, 1, 2)",
		"INSERT INTO customers (user_id, name, address, zip_code, phone_number, email, import_run, import_line) VALUES ('C1', 'Zoë', 'a', '01234', 'p', 'e', 1, 2)",
	} {
		if _, err := b.db.db.ExecContext(b.ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	db, err := Open(b.ctx, b.dsn)
	if err != nil {
		t.Fatalf("Open(earlier schema): %v", err)
	}
	defer db.Close()
	var left []string
	rows, err := b.db.db.QueryContext(b.ctx, `SELECT CONCAT(table_name, '.', column_name) FROM information_schema.columns
		WHERE table_schema = DATABASE() AND column_name IN ('import_run', 'import_line', 'displaced', 'displaced_present', 'duplicates')
		UNION ALL SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = 'import_seen'`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var c string
		if err := rows.Scan(&c); err != nil {
			t.Fatal(err)
		}
		left = append(left, c)
	}
	rows.Close()
	if len(left) > 0 {
		t.Errorf("after the migration the database still holds %v", left)
	}
	var desc, name string
	err = b.db.db.QueryRowContext(b.ctx, "SELECT (SELECT description FROM products WHERE product_id = 'P1'), (SELECT name FROM customers WHERE user_id = 'C1')").Scan(&desc, &name)
	if err != nil || desc != "old desk" || name != "Zoë" {
		t.Errorf("stored rows after the migration: %q, %q, %v; want old desk, Zoë", desc, name, err)
	}
	w, err := db.ImportTask(b.ctx, withRows(b.task(t, "r", record.Products, 2), products("P1", "P2")))
	if err != nil || w.Added != 1 || w.Present != 1 {
		t.Fatalf("ImportTask after the migration = %+v, %v; want 1 added, 1 present", w, err)
	}
}

func TestOpenRejectsBadDSN(t *testing.T) {
	t.Parallel()
	_, err := Open(t.Context(), "root:s3cret@tcp(127.0.0.1:3306")
	if err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("Open(bad DSN) = %v; want an error without the password", err)
	}
	if _, err := Open(t.Context(), "root@tcp(127.0.0.1:3306)/"); err == nil {
		t.Fatal("Open(DSN without database) succeeded, want an error")
	}
}

func TestImportTaskAddsAndCountsPresent(t *testing.T) {
	t.Parallel()
	forEachMethod(t, func(t *testing.T, b *testBundle) {
		w, err := b.db.ImportTask(b.ctx, withRows(b.task(t, "r1", record.Products, 2), products("P3", "P1", "P2")))
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(Written{Counts: record.Counts{Added: 3}}, w); diff != "" {
			t.Fatalf("first task (-want, +got):\n%s", diff)
		}
		// Another task with two known keys and one new one: only the new one is added, and the old rows are untouched.
		rows := products("P2", "P4", "P1")
		rows[0].Fields[1] = "changed"
		w, err = b.db.ImportTask(b.ctx, withRows(b.task(t, "r2", record.Products, 2), rows))
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(Written{Counts: record.Counts{Added: 1, Present: 2}}, w); diff != "" {
			t.Fatalf("second task (-want, +got):\n%s", diff)
		}
		if n := b.count(t, record.Products); n != 4 {
			t.Fatalf("products = %d, want 4", n)
		}
		var desc string
		if err := b.db.db.QueryRowContext(b.ctx, "SELECT description FROM products WHERE product_id = 'P2'").Scan(&desc); err != nil || desc != "desk P2" {
			t.Fatalf("P2's description = %q, %v; want the first import's %q", desc, err, "desk P2")
		}
	})
}

// TestImportTaskUpdateMode: in update mode a present row whose values differ takes the task's, even by a trailing
// space alone, which the tables' PAD SPACE collation compares equal; an equal one is left as it is, an absent one is added, and the
// counts say which was which; a second delivery writes nothing and reports the first one's counts.
func TestImportTaskUpdateMode(t *testing.T) {
	t.Parallel()
	forEachMethod(t, func(t *testing.T, b *testBundle) {
		if _, err := b.db.ImportTask(b.ctx, withRows(b.task(t, "r1", record.Products, 2), products("P1", "P2", "P3", "P6"))); err != nil {
			t.Fatal(err)
		}
		rows := products("P1", "P2", "P3", "P6", "P4") // P1, P2, P3 and P6 as before; P4 new
		rows[0].Fields[1] = "desk P1 "                 // P1's description, a trailing space only
		rows[1].Fields[1] = "changed desk"             // P2's description
		rows[2].Fields[3] = "77"                       // P3's quantity
		task := b.task(t, "r2", record.Products, 2)
		task.Update = true
		task = withRows(task, rows)
		want := Written{Counts: record.Counts{Added: 1, Present: 4, Updated: 3, Unchanged: 1}}
		w, err := b.db.ImportTask(b.ctx, task)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, w); diff != "" {
			t.Fatalf("update task (-want, +got):\n%s", diff)
		}
		got := map[string]string{}
		q, err := b.db.db.QueryContext(b.ctx, "SELECT product_id, CONCAT_WS('|', description, product_type, quantity_available) FROM products")
		if err != nil {
			t.Fatal(err)
		}
		for q.Next() {
			var k, v string
			if err := q.Scan(&k, &v); err != nil {
				t.Fatal(err)
			}
			got[k] = v
		}
		q.Close()
		wantRows := map[string]string{"P1": "desk P1 |office|0", "P2": "changed desk|office|1", "P3": "desk P3|office|77", "P6": "desk P6|office|3", "P4": "desk P4|office|4"}
		if diff := cmp.Diff(wantRows, got); diff != "" {
			t.Errorf("products after the update (-want, +got):\n%s", diff)
		}
		want.Redelivered = true
		if w, err := b.db.ImportTask(b.ctx, task); err != nil || !cmp.Equal(want, w) {
			t.Errorf("second delivery = %+v, %v; want %+v", w, err, want)
		}

		// A task that holds a key twice is refused whole, as one that no retry mends.
		twice := products("P5", "P5")
		twice[1].Fields[1] = "another desk"
		task = b.task(t, "r3", record.Products, 2)
		task.Update = true
		if _, err := b.db.ImportTask(b.ctx, withRows(task, twice)); !errors.Is(err, ErrRepeatedKey) {
			t.Errorf("a task with key P5 twice = %v, want ErrRepeatedKey", err)
		}
		if n, err := b.db.Count(b.ctx, record.Products); err != nil || n != 5 {
			t.Errorf("products = %d, %v after the refused task; want 5", n, err)
		}
	})
}

// TestUpdateModeFindsEveryKeyInAnyOrder: update mode pairs the stored rows with the task's by their keys' bytes,
// whatever order the task holds them in, over several of the locking read's batches of 5,000 keys, and with keys
// whose order under the tables' collation is not their bytes' ("K\x01" comes before "K" there, after it byte by
// byte) or that are escaped in the task. Every third key is new, and every stored row of an even number changes.
func TestUpdateModeFindsEveryKeyInAnyOrder(t *testing.T) {
	t.Parallel()
	var keys []string
	for i := range 12_000 {
		keys = append(keys, fmt.Sprintf("K%05d", i))
	}
	keys = append(keys, "K", "K\x01", "K\t", "K\\x", "Ké", "K\x01\x01")
	var stored, task []string
	changed := map[string]bool{}
	for i, k := range keys {
		if i%3 != 2 {
			stored = append(stored, k)
			changed[k] = i%2 == 0
		}
	}
	// In key order, the task reads ranges of keys; in no order, lists of them.
	inOrder := slices.Clone(keys)
	slices.Sort(inOrder)
	for _, j := range rand.New(rand.NewPCG(1, 2)).Perm(len(keys)) {
		task = append(task, keys[j])
	}
	for name, task := range map[string][]string{"in key order": inOrder, "in no order": task} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			forEachMethod(t, func(t *testing.T, b *testBundle) { checkUpdate(t, b, stored, changed, task) })
		})
	}
}

// TestUpdateModeSparseAmongStoredRows: an update task whose keys lie far apart among the stored rows (every fifth
// of 12,000, and three new) reads the range of its keys only up to twice its rows, and the rest of its keys in a list.
func TestUpdateModeSparseAmongStoredRows(t *testing.T) {
	t.Parallel()
	var stored, task []string
	changed := map[string]bool{}
	for i := range 12_000 {
		k := fmt.Sprintf("K%05d", i)
		stored = append(stored, k)
		if i%5 == 1 {
			task = append(task, k)
			changed[k] = i%2 == 0
		}
	}
	// 2,403 keys: the read's bound of 4,806 rows from K00001 falls on K04806, a key of the task's, and changed. Were
	// it settled twice, it would be written twice.
	task = append(task, "K05000a", "K05000b", "K05000c")
	slices.Sort(task) // a task in key order reads ranges
	forEachMethod(t, func(t *testing.T, b *testBundle) { checkUpdate(t, b, stored, changed, task) })
}

// checkUpdate stores the products of the keys stored, a description of "old desk" where changed says so and "desk"
// elsewhere, then imports the keys of task in update mode, every description "desk". It works out the counts and
// the rows itself, and checks both, and that the locking read's way settled the task alone.
func checkUpdate(t *testing.T, b *testBundle, stored []string, changed map[string]bool, task []string) {
	t.Helper()
	var first []testRow
	isStored := map[string]bool{}
	for _, k := range stored {
		desc := "desk"
		if changed[k] {
			desc = "old desk"
		}
		first = append(first, testRow{Fields: []string{k, desc, "office", "1"}})
		isStored[k] = true
	}
	if _, err := b.db.ImportTask(b.ctx, withRows(b.task(t, "r1", record.Products, 2), first)); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{}
	for _, k := range stored {
		want[k] = "desk"
	}
	var counts record.Counts
	var second []testRow
	for n, k := range task {
		r := testRow{Fields: []string{k, "desk", "office", "1"}}
		// A number written with leading zeros is the same number: such a row is unchanged, though its line
		// differs from the stored row's.
		if n%7 == 0 {
			r.Fields[3] = "0001"
		}
		second = append(second, r)
		switch {
		case !isStored[k]:
			counts.Added++
		case changed[k]:
			counts.Present++
			counts.Updated++
		default:
			counts.Present++
			counts.Unchanged++
		}
		want[k] = "desk"
	}
	tk := withRows(b.task(t, "r2", record.Products, 2), second)
	tk.Update = true
	tk.Apart = true // the run's one task: no other holds a key in its range
	// The locking read must pair every key itself: a key it missed would be written as absent, found present, and
	// the task would go the staged way, which is exact too and would hide the miss.
	rows, order, inOrder, err := taskRows(tk)
	if err != nil {
		t.Fatal(err)
	}
	tx, err := b.db.db.BeginTx(b.ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	added, updated, exact, err := b.db.updateLocked(b.ctx, tx, tk, rows, order, inOrder)
	if err := errors.Join(err, tx.Rollback()); err != nil {
		t.Fatal(err)
	}
	if !exact || added != int(counts.Added) || updated != int(counts.Updated) {
		t.Errorf("the locking read's way: %d added, %d updated, exact %t; want %d, %d, true", added, updated, exact, counts.Added, counts.Updated)
	}
	w, err := b.db.ImportTask(b.ctx, tk)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(counts, w.Counts); diff != "" {
		t.Errorf("update task's counts (-want, +got):\n%s", diff)
	}
	if diff := cmp.Diff(want, b.descriptions(t)); diff != "" {
		t.Errorf("products after the update (-want, +got):\n%s", diff)
	}
}

// TestUpdateModeListsTheKeysOfATaskNotApart: a task whose file's other tasks may hold keys in its range (not Apart,
// as from a file in no key order, whose chunks the enqueuer sorts each) lists its keys rather than read the range,
// so a stored row in its range that it does not hold, locked by another transaction, does not hold it up. The
// bound on the wait is for the failure only: the task does not wait at all.
func TestUpdateModeListsTheKeysOfATaskNotApart(t *testing.T) {
	t.Parallel()
	forEachMethod(t, func(t *testing.T, b *testBundle) {
		if _, err := b.db.ImportTask(b.ctx, withRows(b.task(t, "r1", record.Products, 2), products("P1", "P2", "P3"))); err != nil {
			t.Fatal(err)
		}
		other, err := b.db.db.BeginTx(b.ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer other.Rollback()
		if _, err := other.ExecContext(b.ctx, "SELECT * FROM products WHERE product_id = 'P2' FOR UPDATE"); err != nil {
			t.Fatal(err)
		}
		rows := products("P1", "P3")
		rows[1].Fields[1] = "changed desk"
		task := withRows(b.task(t, "r2", record.Products, 2), rows)
		task.Update = true
		ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
		defer cancel()
		w, err := b.db.ImportTask(ctx, task)
		if err != nil {
			t.Fatalf("update task beside a locked row it does not hold: %v", err)
		}
		if w.Updated != 1 || w.Unchanged != 1 {
			t.Errorf("update task = %+v, want 1 updated and 1 unchanged", w)
		}
	})
}

// TestUpdateModeRacesAnotherWriter: another program adds one of an update task's keys, and commits it while the
// task's locking read waits on that key's lock. The read then finds the key present, and the task updates it.
func TestUpdateModeRacesAnotherWriter(t *testing.T) {
	t.Parallel()
	forEachMethod(t, func(t *testing.T, b *testBundle) {
		if _, err := b.db.ImportTask(b.ctx, withRows(b.task(t, "r1", record.Products, 2), products("P1", "P2"))); err != nil {
			t.Fatal(err)
		}
		other, err := b.db.db.BeginTx(b.ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer other.Rollback()
		if _, err := other.ExecContext(b.ctx, "INSERT INTO products VALUES ('P3', 'their desk', 'office', 9)"); err != nil {
			t.Fatal(err)
		}
		rows := products("P1", "P2", "P3", "P4") // P3 the other program's, P4 absent
		rows[1].Fields[1] = "changed desk"
		task := b.task(t, "r2", record.Products, 2)
		task.Update = true
		type result struct {
			w   Written
			err error
		}
		done := make(chan result, 1)
		go func() {
			w, err := b.db.ImportTask(b.ctx, withRows(task, rows))
			done <- result{w, err}
		}()
		// The event: the task's locking read has started, and it cannot end before the other program does, as it
		// waits on P3's lock. (Should the commit come before the read, it finds P3 present all the same.)
		for waiting := 0; waiting == 0; {
			err := b.db.db.QueryRowContext(b.ctx, "SELECT COUNT(*) FROM information_schema.processlist WHERE db = DATABASE() AND info LIKE 'SELECT %FROM `products`%FOR UPDATE'").Scan(&waiting)
			if err != nil {
				t.Fatal(err)
			}
			select {
			case r := <-done:
				t.Fatalf("the task ended without waiting for the other program's key: %+v, %v", r.w, r.err)
			default:
			}
		}
		if err := other.Commit(); err != nil {
			t.Fatal(err)
		}
		r := <-done
		want := Written{Counts: record.Counts{Added: 1, Present: 3, Updated: 2, Unchanged: 1}} // P2 and P3 updated
		if r.err != nil || !cmp.Equal(want, r.w) {
			t.Fatalf("update task = %+v, %v; want %+v", r.w, r.err, want)
		}
		var desc string
		if err := b.db.db.QueryRowContext(b.ctx, "SELECT description FROM products WHERE product_id = 'P3'").Scan(&desc); err != nil || desc != "desk P3" {
			t.Errorf("P3's description = %q, %v; want the task's %q", desc, err, "desk P3")
		}
	})
}

// TestUpdateModeAbsentKeyAddedAfterTheRead: another program adds and commits one of the keys that the task's
// locking read found absent, before the task writes it. The task's write then finds it present; the task goes back
// to its savepoint and takes the staged way, which counts the key present and gives it the task's values.
func TestUpdateModeAbsentKeyAddedAfterTheRead(t *testing.T) {
	t.Parallel()
	forEachMethod(t, func(t *testing.T, b *testBundle) {
		if _, err := b.db.ImportTask(b.ctx, withRows(b.task(t, "r1", record.Products, 2), products("P1", "P2"))); err != nil {
			t.Fatal(err)
		}
		added := 0
		b.db.beforeUpdateWrites = func() {
			added++
			if _, err := b.db.db.ExecContext(b.ctx, "INSERT INTO products VALUES ('P4', 'their desk', 'office', 9)"); err != nil {
				t.Error(err)
			}
		}
		rows := products("P1", "P2", "P3", "P4") // P3 and P4 absent as the task reads; P4 then the other program's
		rows[1].Fields[1] = "changed desk"
		task := b.task(t, "r2", record.Products, 2)
		task.Update = true
		w, err := b.db.ImportTask(b.ctx, withRows(task, rows))
		want := Written{Counts: record.Counts{Added: 1, Present: 3, Updated: 2, Unchanged: 1}} // P2 and P4 updated
		if err != nil || !cmp.Equal(want, w) {
			t.Fatalf("update task = %+v, %v; want %+v", w, err, want)
		}
		if added != 1 {
			t.Fatalf("the other program ran %d times, want once", added)
		}
		got := b.descriptions(t)
		wantRows := map[string]string{"P1": "desk P1", "P2": "changed desk", "P3": "desk P3", "P4": "desk P4"}
		if diff := cmp.Diff(wantRows, got); diff != "" {
			t.Errorf("products after the update (-want, +got):\n%s", diff)
		}
	})
}

func TestImportTaskRedeliveryCountsOnce(t *testing.T) {
	t.Parallel()
	forEachMethod(t, func(t *testing.T, b *testBundle) {
		task := b.task(t, "r1", record.Products, 2)
		first, err := b.db.ImportTask(b.ctx, withRows(task, products("P1", "P2")))
		if err != nil {
			t.Fatal(err)
		}
		again, err := b.db.ImportTask(b.ctx, withRows(task, products("P1", "P2")))
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(Written{Counts: record.Counts{Added: 2}, Redelivered: true}, again); diff != "" || first.Redelivered {
			t.Fatalf("redelivery (-want, +got):\n%s\nfirst delivery: %+v", diff, first)
		}
	})
}

// TestImportTaskRecordsInTheSameTransaction: a task's rows and its record commit together. A trigger makes the
// record's update fail, as a crash between the rows and the record would end the transaction: no row may stay,
// and once the trigger is gone, the next delivery writes them all and is no redelivery.
func TestImportTaskRecordsInTheSameTransaction(t *testing.T) {
	t.Parallel()
	forEachMethod(t, func(t *testing.T, b *testBundle) {
		if _, err := b.db.db.ExecContext(b.ctx, "CREATE TRIGGER fail_record BEFORE UPDATE ON import_tasks FOR EACH ROW SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'the record cannot be written'"); err != nil {
			t.Fatal(err)
		}
		task := withRows(b.task(t, "r1", record.Products, 2), products("P1", "P2", "P3"))
		if _, err := b.db.ImportTask(b.ctx, task); err == nil || !strings.Contains(err.Error(), "the record cannot be written") {
			t.Fatalf("ImportTask = %v, want the trigger's error", err)
		}
		if n := b.count(t, record.Products); n != 0 {
			t.Errorf("%d rows stayed although their task's record failed, want 0", n)
		}
		if _, err := b.db.db.ExecContext(b.ctx, "DROP TRIGGER fail_record"); err != nil {
			t.Fatal(err)
		}
		w, err := b.db.ImportTask(b.ctx, task)
		if err != nil || w.Added != 3 || w.Redelivered {
			t.Errorf("the next delivery = %+v, %v; want 3 added, no redelivery", w, err)
		}
	})
}

// TestImportTaskConcurrentDeliveries runs the same task from many goroutines at once, as asynq may after a lease
// expires: exactly one delivery writes, and every one reports the same counts.
func TestImportTaskConcurrentDeliveries(t *testing.T) {
	t.Parallel()
	forEachMethod(t, func(t *testing.T, b *testBundle) {
		keys := make([]string, 500)
		for i := range keys {
			keys[i] = fmt.Sprintf("P%04d", i)
		}
		task := b.task(t, "r1", record.Products, 2)
		const deliveries = 6
		results := make([]Written, deliveries)
		errs := make([]error, deliveries)
		var wg sync.WaitGroup
		for i := range deliveries {
			wg.Go(func() { results[i], errs[i] = b.db.ImportTask(b.ctx, withRows(task, products(keys...))) })
		}
		wg.Wait()
		writers := 0
		for i, w := range results {
			if errs[i] != nil {
				t.Fatalf("delivery %d: %v", i, errs[i])
			}
			if w.Added != int64(len(keys)) || w.Present != 0 {
				t.Errorf("delivery %d counted %+v, want %d added", i, w, len(keys))
			}
			if !w.Redelivered {
				writers++
			}
		}
		if writers != 1 {
			t.Errorf("%d deliveries wrote, want exactly 1", writers)
		}
		if n := b.count(t, record.Products); n != int64(len(keys)) {
			t.Errorf("products = %d, want %d", n, len(keys))
		}
	})
}

// TestImportTaskOverlappingKeysInParallel has tasks of different runs with overlapping keys write at once, as two
// runs of one file may: every key lands once, and the counts add up. Tasks of one run never share a key. Each
// task makes one attempt (importOnce), so that a deadlock fails the test instead of being retried: rows in key
// order take their locks in the same order in every task. Unsorted, half of them in reverse, they deadlocked.
func TestImportTaskOverlappingKeysInParallel(t *testing.T) {
	t.Parallel()
	forEachMethod(t, func(t *testing.T, b *testBundle) {
		var wg sync.WaitGroup
		var mu sync.Mutex
		var added int64
		for i := range 8 {
			wg.Go(func() {
				keys := make([]string, 300)
				for j := range keys {
					n := j
					if i%2 == 1 {
						n = len(keys) - 1 - j
					}
					keys[j] = fmt.Sprintf("P%04d", n)
				}
				slices.Sort(keys) // the enqueuer sends a chunk's rows in key order
				w, err := b.db.importOnce(b.ctx, withRows(b.task(t, fmt.Sprintf("r%d", i), record.Products, 2), products(keys...)))
				if err != nil {
					t.Errorf("task %d: %v", i, err)
					return
				}
				mu.Lock()
				added += w.Added
				mu.Unlock()
			})
		}
		wg.Wait()
		if added != 300 {
			t.Errorf("tasks added %d rows in all, want 300", added)
		}
	})
}

func TestBatchLen(t *testing.T) {
	t.Parallel()
	rows := make([][]any, 20000)
	for i := range rows {
		rows[i] = []any{"C1", strings.Repeat("x", 100), "", "", "", ""}
	}
	d := &DB{maxPacket: 16 << 20, RowsPerStatement: 50000}
	if got, want := d.batchLen(rows, 6), 65535/6; got != want {
		t.Errorf("batchLen under the placeholder limit = %d, want %d", got, want)
	}
	d.maxPacket = 64 << 10
	got := d.batchLen(rows, 6)
	if size := got * (102 + 6*perValueOverhead); got < 1 || size > d.maxPacket {
		t.Errorf("batchLen under a 64 KiB packet = %d rows, about %d bytes", got, size)
	}
	d.maxPacket = 1
	if got := d.batchLen(rows, 6); got != 1 {
		t.Errorf("batchLen with no room = %d, want 1", got)
	}
}

// TestStoredVerbatim writes text that is hostile to naive SQL and to charsets, and reads back exactly what went in.
func TestStoredVerbatim(t *testing.T) {
	t.Parallel()
	forEachMethod(t, func(t *testing.T, b *testBundle) {
		texts := []string{
			`Robert'); DROP TABLE customers;--`,
			"line one\nline \"two\", with comma",
			"北京市朝阳区 🛋️ Zoë",
			`back\slash \n not a newline`,
			"tab\there, carriage\r\nreturn, \\N and \\0",
			strings.Repeat("é", 255),
			strings.Repeat("🛋", 255),
		}
		rows := make([]testRow, len(texts))
		for i, s := range texts {
			rows[i] = testRow{Fields: []string{fmt.Sprintf("C%d", i), s, s, "00501", "", ""}}
		}
		if _, err := b.db.ImportTask(b.ctx, withRows(b.task(t, "r", record.Customers, 2), rows)); err != nil {
			t.Fatal(err)
		}
		for i, want := range texts {
			var name, zip string
			if err := b.db.db.QueryRowContext(b.ctx, "SELECT name, zip_code FROM customers WHERE user_id = ?", fmt.Sprintf("C%d", i)).Scan(&name, &zip); err != nil {
				t.Fatal(err)
			}
			if name != want || zip != "00501" {
				t.Errorf("stored %q / %q, want %q / 00501", name, zip, want)
			}
		}
	})
}

// TestStrictModeRefusesAlteredText bypasses validation to show the second fence: MySQL refuses a value that does
// not fit, or is not UTF-8, instead of cutting or mangling it, and the task's rows and record roll back together.
// LOAD DATA reads the rows as bytes, so this is also where each value's characters are checked and counted.
func TestStrictModeRefusesAlteredText(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, value string
		// code is MySQL's error for an INSERT, and warning for LOAD DATA LOCAL, which goes on where an INSERT
		// stops; ImportTask turns the warning into an error.
		code map[Method]string
	}{
		{"256 one-byte characters", strings.Repeat("x", 256), map[Method]string{Insert: "1406", Load: "1265"}},
		{"256 two-byte characters", strings.Repeat("é", 256), map[Method]string{Insert: "1406", Load: "1265"}},
		{"256 four-byte characters", strings.Repeat("🛋", 256), map[Method]string{Insert: "1406", Load: "1265"}},
		{"Latin-1, not UTF-8", "caf\xe9", map[Method]string{Insert: "1366", Load: "1366"}},
		{"a UTF-8 sequence cut short", "caf\xc3", map[Method]string{Insert: "1366", Load: "1366"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			forEachMethod(t, func(t *testing.T, b *testBundle) {
				rows := []testRow{
					{Fields: []string{"C1", "fine", "", "", "", ""}},
					{Fields: []string{"C2", tc.value, "", "", "", ""}},
				}
				_, err := b.db.ImportTask(b.ctx, withRows(b.task(t, "r", record.Customers, 2), rows))
				if want := tc.code[b.db.Method]; !errors.Is(err, ErrAltered) || !strings.Contains(err.Error(), want) {
					t.Fatalf("ImportTask(%s) = %v, want ErrAltered with MySQL's %s", tc.name, err, want)
				}
				if n := b.count(t, record.Customers); n != 0 {
					t.Errorf("customers = %d after a failed task, want 0", n)
				}
				var tasks int
				if err := b.db.db.QueryRowContext(b.ctx, "SELECT COUNT(*) FROM import_tasks").Scan(&tasks); err != nil || tasks != 0 {
					t.Errorf("import_tasks = %d, %v after a failed task, want 0", tasks, err)
				}
			})
		})
	}
}

// BenchmarkImportTask measures one task's write of new customers in one transaction, as a worker does per chunk,
// for each write method and two chunk sizes.
func BenchmarkImportTask(b *testing.B) {
	ns := testenv.Namespace(b)
	db, err := Open(context.Background(), testenv.MySQL(b, ns))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	run, err := db.StartRun(context.Background(), "r", DefaultKeepRuns)
	if err != nil {
		b.Fatal(err)
	}
	i := 0
	for _, m := range []Method{Load, Insert} {
		for _, rows := range []int{1000, 10000} {
			b.Run(fmt.Sprintf("method=%s/rows=%d", m, rows), func(b *testing.B) {
				db.Method = m
				batch := make([]testRow, rows)
				for b.Loop() {
					for j := range batch {
						batch[j] = testRow{Line: j + 2, Fields: []string{fmt.Sprintf("C%d-%05d", i, j), "Zoë O'Brien", "8103 Rue de l'Église, Apt 4, Chicago, IL", "02134", "(475) 416-3728", "zoe.obrien1@example.com"}}
					}
					task := withRows(Task{ID: fmt.Sprintf("r:customers:%d", i), RunID: "r", RunNo: run, Kind: record.Customers}, batch)
					if _, err := db.ImportTask(context.Background(), task); err != nil {
						b.Fatal(err)
					}
					i++
				}
				b.ReportMetric(float64(rows*b.N)/b.Elapsed().Seconds(), "rows/s")
			})
		}
	}
}

func TestStartRun(t *testing.T) {
	t.Parallel()
	b := setup(t)
	first, err := b.db.StartRun(b.ctx, "r1", DefaultKeepRuns)
	if err != nil {
		t.Fatal(err)
	}
	second, err := b.db.StartRun(b.ctx, "r2", DefaultKeepRuns)
	if err != nil || second == first || first == 0 {
		t.Fatalf("StartRun(r1) = %d, StartRun(r2) = %d, %v; want two different numbers", first, second, err)
	}
	if _, err := b.db.StartRun(b.ctx, "r1", DefaultKeepRuns); !errors.Is(err, ErrRunExists) {
		t.Fatalf("StartRun(r1) again = %v, want ErrRunExists", err)
	}
	if _, err := b.db.ImportTask(b.ctx, withRows(Task{ID: "r3:products:2", RunID: "r3", Kind: record.Products}, products("P1"))); err == nil {
		t.Fatal("ImportTask without a run number succeeded")
	}
}

// openWith opens b's database through its DSN with ?param added, importing by b's method; closed when t ends.
func (b *testBundle) openWith(t *testing.T, param string) *DB {
	t.Helper()
	db, err := Open(b.ctx, b.dsn+"?"+param)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	db.Method = b.db.Method
	return db
}

// TestDSNCannotChangeTheCounts: clientFoundRows would make a present row count as added, and a character set other
// than utf8mb4 would change the rows stored; both are overridden. A session variable that would change what is
// counted or checked is refused by name, without the DSN's password.
func TestDSNCannotChangeTheCounts(t *testing.T) {
	t.Parallel()
	forEachMethod(t, func(t *testing.T, b *testBundle) {
		db := b.openWith(t, "clientFoundRows=true")
		for i, want := range [][2]int{{2, 0}, {1, 2}} {
			w, err := db.ImportTask(b.ctx, withRows(b.task(t, fmt.Sprintf("r%d", i), record.Products, 2), products("P1", "P2", "P3")[:2+i]))
			if err != nil {
				t.Fatal(err)
			}
			if got := [2]int{int(w.Added), int(w.Present)}; got != want {
				t.Errorf("import %d with clientFoundRows=true: added, present = %v, want %v", i+1, got, want)
			}
		}
	})
	// A connection character set other than utf8mb4 would have MySQL convert the rows' UTF-8 bytes from it: "é"
	// read as Latin-1 is stored as "Ã©". The DSN's charset gives way to utf8mb4.
	forEachMethod(t, func(t *testing.T, b *testBundle) {
		db := b.openWith(t, "charset=latin1")
		rows := products("P1é")
		rows[0].Fields[1] = "café, naïve"
		if _, err := db.ImportTask(b.ctx, withRows(b.task(t, "r1", record.Products, 2), rows)); err != nil {
			t.Fatal(err)
		}
		var key, desc string
		if err := b.db.db.QueryRowContext(b.ctx, "SELECT product_id, description FROM products").Scan(&key, &desc); err != nil {
			t.Fatal(err)
		}
		if key != "P1é" || desc != "café, naïve" {
			t.Errorf("stored through a DSN with charset=latin1: %q, %q; want %q, %q", key, desc, "P1é", "café, naïve")
		}
	})
	b := setup(t)
	cfg, err := mysql.ParseDSN(b.dsn)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Passwd = "s3cret"
	for _, param := range []string{"autocommit=0", "unique_checks=0", "sql_mode=''"} {
		_, err := Open(b.ctx, cfg.FormatDSN()+"?"+param)
		name, _, _ := strings.Cut(param, "=")
		if err == nil || !strings.Contains(err.Error(), "the MySQL DSN sets "+name) || strings.Contains(err.Error(), "s3cret") {
			t.Errorf("Open with ?%s = %v; want a refusal naming %s and not the password", param, err, name)
		}
	}
	if db, err := Open(b.ctx, b.dsn+"?time_zone=%27%2B00%3A00%27&innodb_lock_wait_timeout=10"); err != nil {
		t.Errorf("Open with harmless session settings: %v", err)
	} else {
		db.Close()
	}
}

// TestPrune: runs past their time lose their registration and their tasks' records; runs within
// it keep theirs, and so does a run registered before runs had a time, until DefaultKeepRuns has passed. A task of
// a pruned run, delivered again, writes nothing.
func TestPrune(t *testing.T) {
	t.Parallel()
	b := setup(t)
	old, recent, legacy := b.task(t, "old", record.Products, 2), b.task(t, "recent", record.Products, 2), b.task(t, "legacy", record.Products, 2)
	for _, task := range []Task{old, recent, legacy} {
		if _, err := b.db.ImportTask(b.ctx, withRows(task, products("P1"))); err != nil {
			t.Fatal(err)
		}
	}
	for _, q := range []string{
		"UPDATE import_runs SET expires_at = NOW(6) - INTERVAL 1 SECOND WHERE run_id = 'old'",
		"UPDATE import_runs SET expires_at = NULL, started_at = NOW(6) - INTERVAL 6 DAY WHERE run_id = 'legacy'",
	} {
		if _, err := b.db.db.ExecContext(b.ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	count := func() [2]int {
		var n [2]int
		err := b.db.db.QueryRowContext(b.ctx, "SELECT (SELECT COUNT(*) FROM import_runs), (SELECT COUNT(*) FROM import_tasks)").Scan(&n[0], &n[1])
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	n, err := b.db.Prune(b.ctx)
	if got := count(); err != nil || n != 1 || got != [2]int{2, 2} {
		t.Fatalf("Prune = %d, %v, leaving runs, task records %v; want 1 run pruned and 2, 2 left", n, err, got)
	}
	if _, err := b.db.db.ExecContext(b.ctx, "UPDATE import_runs SET started_at = NOW(6) - INTERVAL 8 DAY WHERE run_id = 'legacy'"); err != nil {
		t.Fatal(err)
	}
	if n, err := b.db.Prune(b.ctx); err != nil || n != 1 || count() != [2]int{1, 1} {
		t.Fatalf("Prune = %d, %v, leaving %v; want the legacy run pruned after 7 days and the recent one's 1, 1 left", n, err, count())
	}
	if _, err := b.db.ImportTask(b.ctx, withRows(Task{ID: "old:products:9", RunID: old.RunID, RunNo: old.RunNo, Kind: record.Products}, products("P9"))); !errors.Is(err, ErrUnknownRun) {
		t.Errorf("a pruned run's task = %v, want ErrUnknownRun", err)
	}
}

// TestPoolIsCapped: however many tasks run at once, the pool opens no more connections than its cap.
func TestPoolIsCapped(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.db.SetMaxConns(3)
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Go(func() {
			if _, err := b.db.ImportTask(b.ctx, withRows(b.task(t, "r", record.Products, i+2), products(fmt.Sprintf("P%d", i)))); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if open := b.db.db.Stats().MaxOpenConnections; open != 3 {
		t.Errorf("pool cap %d, want 3", open)
	}
	if n := b.db.db.Stats().OpenConnections; n > 3 {
		t.Errorf("%d connections open after 40 tasks, want at most 3", n)
	}
}
