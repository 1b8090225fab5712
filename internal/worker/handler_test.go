package worker

import (
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hibiken/asynq"

	"hpnorton/internal/ledger"
	"hpnorton/internal/record"
	"hpnorton/internal/testenv"
	"hpnorton/repo"
	"hpnorton/tasks"
)

// openDB opens a database of the test's own, named name, closed when the test ends.
func openDB(t *testing.T, name string) *repo.DB {
	t.Helper()
	db, err := repo.Open(t.Context(), testenv.MySQL(t, name))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// handlerRun gives a test its own namespace, database and ledger, a handler on them, and a run registered under
// the namespace, whose number it returns.
func handlerRun(t *testing.T) (ns string, h *handler, runNo uint64) {
	t.Helper()
	ns = testenv.Namespace(t)
	db := openDB(t, ns)
	h = &handler{db: db, ledger: ledger.New(testenv.Redis(t, ns)), log: slog.New(slog.DiscardHandler), worker: "w1", concurrency: 1}
	runNo, err := db.StartRun(t.Context(), ns, repo.DefaultKeepRuns)
	if err != nil {
		t.Fatal(err)
	}
	return ns, h, runNo
}

// TestHandlerRedelivery runs one task three times, as asynq does after crashes: the rows land once, a key stored
// before counts as present, and the ledger holds a single outcome with the first run's counts, marked redelivered.
// The second delivery finds the rows still in Redis, as when a worker died after its commit; the third finds
// them dropped with the recorded outcome, and takes the counts from MySQL. A task whose rows are gone, and that no
// delivery loaded, fails for good.
func TestHandlerRedelivery(t *testing.T) {
	t.Parallel()
	ns, h, runNo := handlerRun(t)
	db, l := h.db, h.ledger
	if _, err := db.ImportTask(t.Context(), repo.Task{ID: "earlier", RunID: ns, RunNo: runNo, Kind: record.Customers, Rows: 1, Data: []byte("C2\tAna\ta\t1\tp\te\n")}); err != nil {
		t.Fatal(err)
	}
	rows := []byte("C1\tZoë\t1 Main St, Apt 2\t02134\t555\tz@example.com\nC2\tAna\ta\t1\tp\te\n")
	p := tasks.ImportPayload{DB: db.ID, RunID: ns, RunNo: runNo, File: "customers.csv", FirstLine: 2, Rows: 2, Bytes: len(rows)}
	task, err := tasks.NewCustomerImportTask(p)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if i < 2 {
			if err := l.PutRows(t.Context(), ns, p.TaskID(record.Customers), rows); err != nil {
				t.Fatal(err)
			}
		}
		if err := h.ProcessTask(t.Context(), task); err != nil {
			t.Fatalf("delivery %d: %v", i+1, err)
		}
		if _, err := l.Rows(t.Context(), ns, p.TaskID(record.Customers)); !errors.Is(err, ledger.ErrNoRows) {
			t.Fatalf("after delivery %d the rows are still in Redis: %v", i+1, err)
		}
	}
	outcomes, err := l.Outcomes(t.Context(), ns, record.Customers)
	if err != nil {
		t.Fatal(err)
	}
	want := []ledger.Outcome{{
		TaskID: p.TaskID(record.Customers), FirstLine: 2, Counts: record.Counts{Added: 1, Present: 1},
		Worker:      "w1",
		Concurrency: 1,
		Redelivered: true,
	}}
	if diff := cmp.Diff(want, outcomes); diff != "" {
		t.Errorf("outcomes (-want, +got):\n%s", diff)
	}
	if n, err := db.Count(t.Context(), record.Customers); err != nil || n != 2 {
		t.Errorf("customers = %d, %v; want 2", n, err)
	}

	lost := p
	lost.FirstLine = 9
	task, err = tasks.NewCustomerImportTask(lost)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.ProcessTask(t.Context(), task); !errors.Is(err, asynq.SkipRetry) || !errors.Is(err, errRowsGone) {
		t.Errorf("ProcessTask(rows gone) = %v, want SkipRetry and %v", err, errRowsGone)
	}

	// A payload that cannot be decoded is not retried: it would fail the same way every time.
	err = h.ProcessTask(t.Context(), asynq.NewTask(tasks.TypeProductImport, []byte("garbage")))
	if !errors.Is(err, asynq.SkipRetry) {
		t.Errorf("ProcessTask(garbage) = %v, want SkipRetry", err)
	}
}

// TestTaskOnlyLandsInItsDatabase: a task for another database, or for a run this database never registered, writes
// nothing and fails for good, naming why.
func TestTaskOnlyLandsInItsDatabase(t *testing.T) {
	t.Parallel()
	ns := testenv.Namespace(t)
	rdb := testenv.Redis(t, ns)
	db, other := openDB(t, ns), openDB(t, ns+"_b")
	if db.ID == other.ID || len(db.ID) != 12 {
		t.Fatalf("two databases share the identity %q, or it is not 12 characters", db.ID)
	}
	h := &handler{db: db, ledger: ledger.New(rdb), log: slog.New(slog.DiscardHandler), worker: "w1", concurrency: 1}
	otherRun, err := other.StartRun(t.Context(), ns, repo.DefaultKeepRuns)
	if err != nil {
		t.Fatal(err)
	}
	data := []byte("C1\tZoë\t1 Main St\t02134\t555\tz@example.com\n")
	for _, tc := range []struct {
		name string
		p    tasks.ImportPayload
		want string
	}{
		{"another database's task", tasks.ImportPayload{DB: other.ID, RunID: ns, RunNo: otherRun, File: "customers.csv", FirstLine: 2, Rows: 1, Bytes: len(data)}, "task is for database " + other.ID},
		{"a run this database never registered", tasks.ImportPayload{DB: db.ID, RunID: ns, RunNo: otherRun, File: "customers.csv", FirstLine: 2, Rows: 1, Bytes: len(data)}, "registered no such run"},
	} {
		if err := ledger.New(rdb).PutRows(t.Context(), ns, tc.p.TaskID(record.Customers), data); err != nil {
			t.Fatal(err)
		}
		task, err := tasks.NewCustomerImportTask(tc.p)
		if err != nil {
			t.Fatal(err)
		}
		err = h.ProcessTask(t.Context(), task)
		if !errors.Is(err, asynq.SkipRetry) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: ProcessTask = %v, want SkipRetry and %q", tc.name, err, tc.want)
		}
	}
	if n, err := db.Count(t.Context(), record.Customers); err != nil || n != 0 {
		t.Errorf("customers = %d, %v; want 0: nothing may land", n, err)
	}
}

// TestHandlerFailsForGoodWhatFailsAlike: rows that MySQL would alter, here a zip code too long for its column, and
// an update-mode task that holds a key twice fail the same way at every delivery, so the task fails for good at once
// (asynq.SkipRetry) and its run ends with the reason, rather than waiting out a retry backoff of many minutes.
func TestHandlerFailsForGoodWhatFailsAlike(t *testing.T) {
	t.Parallel()
	ns, h, runNo := handlerRun(t)
	for _, tc := range []struct {
		firstLine int
		rows      string
		update    bool
		want      error
	}{
		{2, "C1\tAna\ta\t" + strings.Repeat("9", 17) + "\tp\te\n", false, repo.ErrAltered},
		{3, "C2\tAna\ta\t1\tp\te\nC2\tBo\tb\t2\tq\tf\n", true, repo.ErrRepeatedKey},
	} {
		p := tasks.ImportPayload{DB: h.db.ID, RunID: ns, RunNo: runNo, File: "customers.csv", FirstLine: tc.firstLine,
			Rows: strings.Count(tc.rows, "\n"), Bytes: len(tc.rows), Update: tc.update}
		task, err := tasks.NewCustomerImportTask(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := h.ledger.PutRows(t.Context(), ns, p.TaskID(record.Customers), []byte(tc.rows)); err != nil {
			t.Fatal(err)
		}
		if err := h.ProcessTask(t.Context(), task); !errors.Is(err, asynq.SkipRetry) || !errors.Is(err, tc.want) {
			t.Errorf("ProcessTask = %v, want %v and asynq.SkipRetry", err, tc.want)
		}
	}
}

// TestRetryDelay: a failed task waits 1 s, then twice as long at each failure up to a minute, plus up to a tenth
// more so that the tasks a MySQL outage failed together do not all come back at once; a task whose worker died
// comes back after 1 s.
func TestRetryDelay(t *testing.T) {
	t.Parallel()
	failed := errors.New("MySQL down")
	for n, want := range []time.Duration{1, 2, 4, 8, 16, 32, 60, 60, 60} {
		want *= time.Second
		for range 20 {
			if d := retryDelay(n, failed, nil); d < want || d > want+want/10 {
				t.Fatalf("retry %d waits %s, want %s to %s", n, d, want, want+want/10)
			}
		}
	}
	if d := retryDelay(5, asynq.ErrLeaseExpired, nil); d != time.Second {
		t.Errorf("a dead worker's task waits %s, want 1s", d)
	}
}
