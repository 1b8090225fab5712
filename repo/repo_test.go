package repo

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/go-sql-driver/mysql"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

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

func products(keys ...string) []record.Row {
	rows := make([]record.Row, len(keys))
	for i, k := range keys {
		rows[i] = record.Row{Line: i + 2, Fields: []string{k, "desk " + k, "office", fmt.Sprint(i)}}
	}
	return rows
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
			FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name = ? AND column_name NOT IN ('import_run', 'import_line')
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

// TestOpenAddsLineageColumns opens a database whose tables predate import_run and import_line.
func TestOpenAddsLineageColumns(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, q := range []string{
		"ALTER TABLE products DROP COLUMN import_run, DROP COLUMN import_line",
		"ALTER TABLE import_runs DROP KEY import_runs_expires, DROP COLUMN expires_at",
	} {
		if _, err := b.db.db.ExecContext(b.ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	db, err := Open(b.ctx, b.dsn)
	if err != nil {
		t.Fatalf("Open(old schema): %v", err)
	}
	defer db.Close()
	w, err := db.ImportTask(b.ctx, b.task(t, "r", record.Products, 2), products("P1"))
	if err != nil || w.Added != 1 {
		t.Fatalf("ImportTask after the upgrade = %+v, %v", w, err)
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
		w, err := b.db.ImportTask(b.ctx, b.task(t, "r1", record.Products, 2), products("P3", "P1", "P2"))
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(Written{Added: 3}, w); diff != "" {
			t.Fatalf("first task (-want, +got):\n%s", diff)
		}
		// Another task with two known keys and one new one: only the new one is added, and the old rows are untouched.
		rows := products("P2", "P4", "P1")
		rows[0].Fields[1] = "changed"
		w, err = b.db.ImportTask(b.ctx, b.task(t, "r2", record.Products, 2), rows)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(Written{Added: 1, Present: 2}, w); diff != "" {
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

func TestImportTaskRedeliveryCountsOnce(t *testing.T) {
	t.Parallel()
	forEachMethod(t, func(t *testing.T, b *testBundle) {
		task := b.task(t, "r1", record.Products, 2)
		first, err := b.db.ImportTask(b.ctx, task, products("P1", "P2"))
		if err != nil {
			t.Fatal(err)
		}
		again, err := b.db.ImportTask(b.ctx, task, products("P1", "P2"))
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(Written{Added: 2, Present: 0, Redelivered: true}, again); diff != "" || first.Redelivered {
			t.Fatalf("redelivery (-want, +got):\n%s\nfirst delivery: %+v", diff, first)
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
			wg.Go(func() { results[i], errs[i] = b.db.ImportTask(b.ctx, task, products(keys...)) })
		}
		wg.Wait()
		writers := 0
		for i, w := range results {
			if errs[i] != nil {
				t.Fatalf("delivery %d: %v", i, errs[i])
			}
			if w.Added != len(keys) || w.Present != 0 {
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

// TestImportTaskOverlappingKeysInParallel has tasks with overlapping keys in opposite orders write at once. Sorting
// by key inside ImportTask means they queue on the same locks in the same order instead of deadlocking, and every
// key lands once.
func TestImportTaskOverlappingKeysInParallel(t *testing.T) {
	t.Parallel()
	forEachMethod(t, func(t *testing.T, b *testBundle) {
		var wg sync.WaitGroup
		var mu sync.Mutex
		added := 0
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
				w, err := b.db.ImportTask(b.ctx, b.task(t, "r1", record.Products, i+2), products(keys...))
				if err != nil {
					t.Errorf("task %d: %v", i, err)
					return
				}
				mu.Lock()
				added += w.Added - w.Displaced
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
	rows := make([]record.Row, 20000)
	for i := range rows {
		rows[i] = record.Row{Fields: []string{"C1", strings.Repeat("x", 100), "", "", "", ""}}
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
		}
		rows := make([]record.Row, len(texts))
		for i, s := range texts {
			rows[i] = record.Row{Fields: []string{fmt.Sprintf("C%d", i), s, s, "00501", "", ""}}
		}
		if _, err := b.db.ImportTask(b.ctx, b.task(t, "r", record.Customers, 2), rows); err != nil {
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

// TestStrictModeRefusesOverlongText bypasses validation to show the second fence: MySQL refuses a value that does
// not fit instead of cutting it, and the task's rows and record roll back together.
func TestStrictModeRefusesOverlongText(t *testing.T) {
	t.Parallel()
	forEachMethod(t, func(t *testing.T, b *testBundle) {
		rows := []record.Row{
			{Fields: []string{"C1", "fine", "", "", "", ""}},
			{Fields: []string{"C2", strings.Repeat("x", 256), "", "", "", ""}},
		}
		_, err := b.db.ImportTask(b.ctx, b.task(t, "r", record.Customers, 2), rows)
		// An INSERT fails with error 1406 (data too long); LOAD DATA LOCAL warns 1265 (data truncated) and goes
		// on, and ImportTask turns the warning into an error.
		want := map[Method]string{Insert: "1406", Load: "1265"}[b.db.Method]
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("ImportTask(overlong name) = %v, want MySQL's %s", err, want)
		}
		if n := b.count(t, record.Customers); n != 0 {
			t.Errorf("customers = %d after a failed task, want 0", n)
		}
		var tasks int
		if err := b.db.db.QueryRowContext(b.ctx, "SELECT COUNT(*) FROM import_tasks").Scan(&tasks); err != nil || tasks != 0 {
			t.Errorf("import_tasks = %d, %v after a failed task, want 0", tasks, err)
		}
	})
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
				batch := make([]record.Row, rows)
				for b.Loop() {
					for j := range batch {
						batch[j] = record.Row{Line: j + 2, Fields: []string{fmt.Sprintf("C%d-%05d", i, j), "Zoë O'Brien", "8103 Rue de l'Église, Apt 4, Chicago, IL", "02134", "(475) 416-3728", "zoe.obrien1@example.com"}}
					}
					task := Task{ID: fmt.Sprintf("r:customers:%d", i), RunID: "r", RunNo: run, Kind: record.Customers}
					if _, err := db.ImportTask(context.Background(), task, batch); err != nil {
						b.Fatal(err)
					}
					i++
				}
				b.ReportMetric(float64(rows*b.N)/b.Elapsed().Seconds(), "rows/s")
			})
		}
	}
}

// TestFirstOccurrenceWins has a run's file hold keys more than once, in chunks imported in every order: whichever
// task runs first, the row stored is the one from the lowest line, and each key is added once.
func TestFirstOccurrenceWins(t *testing.T) {
	t.Parallel()
	forEachMethod(t, func(t *testing.T, b *testBundle) {
		// Three chunks of one run. P1 is on lines 2, 5 and 8; P2 on lines 6 and 9, and twice within the last chunk.
		chunks := [][]record.Row{
			{{Line: 2, Fields: []string{"P1", "line 2", "t", "1"}}, {Line: 3, Fields: []string{"P0", "line 3", "t", "1"}}},
			{{Line: 5, Fields: []string{"P1", "line 5", "t", "1"}}, {Line: 6, Fields: []string{"P2", "line 6", "t", "1"}}},
			{{Line: 8, Fields: []string{"P1", "line 8", "t", "1"}}, {Line: 9, Fields: []string{"P2", "line 9", "t", "1"}}, {Line: 10, Fields: []string{"P2", "line 10", "t", "1"}}},
		}
		orders := [][]int{{0, 1, 2}, {2, 1, 0}, {1, 2, 0}, {2, 0, 1}}
		for o, order := range orders {
			runID := fmt.Sprintf("run%d", o)
			if _, err := b.db.db.ExecContext(b.ctx, "DELETE FROM products"); err != nil {
				t.Fatal(err)
			}
			added, present := 0, 0
			dups := map[int]string{} // line → key
			for _, c := range order {
				task := b.task(t, runID, record.Products, chunks[c][0].Line)
				w, err := b.db.ImportTask(b.ctx, task, chunks[c])
				if err != nil {
					t.Fatal(err)
				}
				// A second delivery writes nothing and reports exactly what the first did.
				again, err := b.db.ImportTask(b.ctx, task, chunks[c])
				w.Redelivered = true
				if diff := cmp.Diff(w, again, cmpopts.EquateEmpty()); err != nil || diff != "" {
					t.Fatalf("order %v chunk %d: redelivery differs (-first, +again), %v:\n%s", order, c, err, diff)
				}
				added += w.Added - w.Displaced
				present += w.Present
				for _, d := range w.Duplicates {
					if _, twice := dups[d.Line]; twice {
						t.Errorf("order %v: line %d reported twice", order, d.Line)
					}
					dups[d.Line] = d.Key
				}
			}
			// Every line but the first of each key is a duplicate, reported once, whatever the order.
			if diff := cmp.Diff(map[int]string{5: "P1", 8: "P1", 9: "P2", 10: "P2"}, dups); diff != "" || present != 0 {
				t.Errorf("order %v: present %d, want 0; duplicates (-want, +got):\n%s", order, present, diff)
			}
			got := map[string]string{}
			rows, err := b.db.db.QueryContext(b.ctx, "SELECT product_id, description FROM products")
			if err != nil {
				t.Fatal(err)
			}
			for rows.Next() {
				var k, d string
				if err := rows.Scan(&k, &d); err != nil {
					t.Fatal(err)
				}
				got[k] = d
			}
			rows.Close()
			want := map[string]string{"P0": "line 3", "P1": "line 2", "P2": "line 6"}
			if diff := cmp.Diff(want, got); diff != "" || added != 3 {
				t.Errorf("order %v: added %d, want 3; stored (-want, +got):\n%s", order, added, diff)
			}
		}
		// A later run finds P1 and P2 present, and its file repeats P1 across two tasks: in either order, line 5
		// is the repeat of line 2, and the stored rows stay the first run's.
		for o, order := range [][]int{{0, 1}, {1, 0}} {
			again := [][]record.Row{
				{{Line: 2, Fields: []string{"P1", "again 2", "t", "1"}}},
				{{Line: 5, Fields: []string{"P1", "again 5", "t", "1"}}, {Line: 6, Fields: []string{"P2", "again 6", "t", "1"}}},
			}
			runID := fmt.Sprintf("again%d", o)
			present := 0
			var dups []Duplicate
			for _, c := range order {
				w, err := b.db.ImportTask(b.ctx, b.task(t, runID, record.Products, again[c][0].Line), again[c])
				if err != nil {
					t.Fatal(err)
				}
				present += w.Present - w.DisplacedPresent
				dups = append(dups, w.Duplicates...)
				if w.Added != 0 {
					t.Errorf("order %v: a run of present keys added %d", order, w.Added)
				}
			}
			if diff := cmp.Diff([]Duplicate{{Line: 5, FirstLine: 2, Key: "P1"}}, dups); diff != "" || present != 2 {
				t.Errorf("order %v: present %d, want 2; duplicates (-want, +got):\n%s", order, present, diff)
			}
		}
		// A later run finds the keys present and leaves them alone, whatever its lines.
		w, err := b.db.ImportTask(b.ctx, b.task(t, "later", record.Products, 2), []record.Row{{Line: 2, Fields: []string{"P2", "later", "t", "1"}}})
		if diff := cmp.Diff(Written{Present: 1}, w); err != nil || diff != "" {
			t.Fatalf("later run = %+v, %v; want 1 present", w, err)
		}
		var d string
		if err := b.db.db.QueryRowContext(b.ctx, "SELECT description FROM products WHERE product_id = 'P2'").Scan(&d); err != nil || d != "line 6" {
			t.Fatalf("P2 after a later run = %q, %v; want line 6", d, err)
		}
	})
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
	if _, err := b.db.ImportTask(b.ctx, Task{ID: "r3:products:2", RunID: "r3", Kind: record.Products}, products("P1")); err == nil {
		t.Fatal("ImportTask without a run number succeeded")
	}
}

// TestDSNCannotChangeTheCounts: clientFoundRows would make a present row count as added; it is overridden. A
// session variable that would change what is counted or checked is refused by name, without the DSN's password.
func TestDSNCannotChangeTheCounts(t *testing.T) {
	t.Parallel()
	forEachMethod(t, func(t *testing.T, b *testBundle) {
		db, err := Open(b.ctx, b.dsn+"?clientFoundRows=true")
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		db.Method = b.db.Method
		for i, want := range [][2]int{{2, 0}, {1, 2}} {
			w, err := db.ImportTask(b.ctx, b.task(t, fmt.Sprintf("r%d", i), record.Products, 2), products("P1", "P2", "P3")[:2+i])
			if err != nil {
				t.Fatal(err)
			}
			if got := [2]int{w.Added, w.Present}; got != want {
				t.Errorf("import %d with clientFoundRows=true: added, present = %v, want %v", i+1, got, want)
			}
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

// TestPrune: runs past their time lose their registration, their tasks' records and their seen keys; runs within
// it keep theirs, and so does a run registered before runs had a time, until DefaultKeepRuns has passed. A task of
// a pruned run, delivered again, writes nothing.
func TestPrune(t *testing.T) {
	t.Parallel()
	b := setup(t)
	old, recent, legacy := b.task(t, "old", record.Products, 2), b.task(t, "recent", record.Products, 2), b.task(t, "legacy", record.Products, 2)
	for _, task := range []Task{old, recent, legacy} {
		if _, err := b.db.ImportTask(b.ctx, task, products("P1")); err != nil {
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
	count := func() [3]int {
		var n [3]int
		err := b.db.db.QueryRowContext(b.ctx, "SELECT (SELECT COUNT(*) FROM import_runs), (SELECT COUNT(*) FROM import_tasks), (SELECT COUNT(*) FROM import_seen)").Scan(&n[0], &n[1], &n[2])
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	n, err := b.db.Prune(b.ctx)
	if got := count(); err != nil || n != 1 || got != [3]int{2, 2, 2} {
		t.Fatalf("Prune = %d, %v, leaving runs, task records, seen keys %v; want 1 run pruned and 2, 2, 2 left", n, err, got)
	}
	if _, err := b.db.db.ExecContext(b.ctx, "UPDATE import_runs SET started_at = NOW(6) - INTERVAL 8 DAY WHERE run_id = 'legacy'"); err != nil {
		t.Fatal(err)
	}
	if n, err := b.db.Prune(b.ctx); err != nil || n != 1 || count() != [3]int{1, 1, 1} {
		t.Fatalf("Prune = %d, %v, leaving %v; want the legacy run pruned after 7 days and the recent one's 1, 1, 1 left", n, err, count())
	}
	if _, err := b.db.ImportTask(b.ctx, Task{ID: "old:products:9", RunID: old.RunID, RunNo: old.RunNo, Kind: record.Products}, products("P9")); !errors.Is(err, ErrUnknownRun) {
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
			if _, err := b.db.ImportTask(b.ctx, b.task(t, "r", record.Products, i+2), products(fmt.Sprintf("P%d", i))); err != nil {
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
