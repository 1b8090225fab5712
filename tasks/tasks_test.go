package tasks

import (
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/hibiken/asynq"

	"hpnorton/internal/csvchunk"
	"hpnorton/internal/ledger"
	"hpnorton/internal/record"
	"hpnorton/internal/testenv"
	"hpnorton/repo"
)

func TestPayloadRoundTrip(t *testing.T) {
	t.Parallel()
	for _, k := range record.Kinds {
		p := ImportPayload{DB: "db1", RunID: "run1", RunNo: 7, File: k.FileName(), FirstLine: 1002, Records: 3,
			Bad: []csvchunk.BadRecord{{Line: 1005, Reason: "cannot be parsed as CSV"}}, Data: []byte("P1,\"a\nb\",office,1\nP2,c,office,0\n\n")}
		task, err := NewImportTask(k, p)
		if err != nil {
			t.Fatal(err)
		}
		kind, err := KindOf(task.Type())
		if err != nil || kind != k {
			t.Fatalf("KindOf(%q) = %v, %v; want %v", task.Type(), kind, err, k)
		}
		got, err := DecodeImportPayload(k, task.Payload())
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(p, got); diff != "" {
			t.Errorf("%v payload (-want, +got):\n%s", k, diff)
		}
		if k == record.Products {
			if got, want := p.TaskID(k), "run1:products:1002"; got != want {
				t.Errorf("TaskID = %q, want %q", got, want)
			}
		}
	}
}

// TestPayloadBounds: a payload is untrusted input. Each field out of bounds is refused with its reason, before a
// worker allocates anything for it.
func TestPayloadBounds(t *testing.T) {
	t.Parallel()
	good := `{"db":"d","run_id":"r","run_no":1,"file":"customers.csv","first_line":2,"records":1}`
	if _, err := DecodeImportPayload(record.Customers, []byte(good+"\nC1,a,b,c,d,e\n")); err != nil {
		t.Fatalf("the good payload is refused: %v", err)
	}
	for _, tc := range []struct{ payload, want string }{
		{"", "no metadata line"},
		{"not json\n", "payload metadata"},
		{`{"run_id":"r","run_no":1,"file":"customers.csv","first_line":2,"records":1}` + "\n", "names no database"},
		{strings.Replace(good, `"run_id":"r"`, `"run_id":"`+strings.Repeat("r", 65)+`"`, 1) + "\n", "run ID of 1 to 64 bytes"},
		{strings.Replace(good, `"run_no":1`, `"run_no":0`, 1) + "\n", "run number"},
		{strings.Replace(good, "customers.csv", "../../etc/passwd", 1) + "\n", "imports customers.csv, not ../../etc/passwd"},
		{strings.Replace(good, `"first_line":2`, `"first_line":-5`, 1) + "\n", "first line -5"},
		{strings.Replace(good, `"records":1`, `"records":2147483647`, 1) + "\n", "2147483647 records: a task holds 1 to 100000"},
		{strings.Replace(good, `"records":1`, `"records":0`, 1) + "\n", "0 records"},
		{strings.Replace(good, `"records":1`, `"records":1,"bad":[{"line":2,"reason":"x"},{"line":3,"reason":"y"}]`, 1) + "\n", "2 bad records of 1"},
		{strings.Replace(good, `"records":1`, `"records":1,"bad":[{"line":1,"reason":"x"}]`, 1) + "\n", "bad record on line 1"},
		{good + "\n" + strings.Repeat("x", MaxChunkBytes+1), "bytes of CSV: a task holds at most"},
	} {
		_, err := DecodeImportPayload(record.Customers, []byte(tc.payload))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("DecodeImportPayload(%.80q) = %v, want an error containing %q", tc.payload, err, tc.want)
		}
	}
	// A payload that decodes but does not hold the records it claims is refused by Validate.
	for _, tc := range []struct {
		records int
		data    string
	}{{2, "C1,a,b,c,d,e\n"}, {1, "C1,a,b,c,d,e\nC2,a,b,c,d,e\n"}} {
		p := ImportPayload{DB: "d", RunID: "r", RunNo: 1, File: "customers.csv", FirstLine: 2, Records: tc.records, Data: []byte(tc.data)}
		if _, _, err := Validate(record.Customers, p); err == nil {
			t.Errorf("Validate of %d records claimed over %q succeeded, want an error", tc.records, tc.data)
		}
	}
	if _, err := KindOf("import:orders"); err == nil {
		t.Error("KindOf(import:orders) succeeded, want an error")
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	p := ImportPayload{RunID: "r", File: "products.csv", FirstLine: 10, Records: 7,
		Bad: []csvchunk.BadRecord{{Line: 16, Reason: "a quote opened on this line does not close"}},
		Data: []byte(
			"P1,desk,office,3\n" +
				"P2,\"two\r\nlines\",office,-1\n" +
				"P3,chair\n" +
				"P4,bad\"quote,office,1\n" +
				"P5,lamp,office,0\n" +
				"\n" + // line 16, the bad record's place
				"P6,\"multi\nline\",office,0\n")}
	rows, problems, err := Validate(record.Products, p)
	if err != nil {
		t.Fatal(err)
	}
	wantRows := []record.Row{
		{Line: 10, LastLine: 10, Fields: []string{"P1", "desk", "office", "3"}},
		{Line: 15, LastLine: 15, Fields: []string{"P5", "lamp", "office", "0"}},
		{Line: 17, LastLine: 18, Fields: []string{"P6", "multi\nline", "office", "0"}},
	}
	if diff := cmp.Diff(wantRows, rows); diff != "" {
		t.Errorf("rows (-want, +got):\n%s", diff)
	}
	wantProblems := []record.Problem{
		{File: "products.csv", Line: 16, LastLine: 16, Reason: "a quote opened on this line does not close"},
		{File: "products.csv", Line: 11, LastLine: 12, Column: "quantity_available", Value: "-1", Reason: "is not a whole number from 0 to 4294967295"},
		{File: "products.csv", Line: 13, LastLine: 13, Reason: "has 2 fields, want 4 (product_id,description,product_type,quantity_available)"},
		{File: "products.csv", Line: 14, LastLine: 14, Reason: `cannot be parsed as CSV: bare " in non-quoted field`},
	}
	if diff := cmp.Diff(wantProblems, problems); diff != "" {
		t.Errorf("problems (-want, +got):\n%s", diff)
	}
}

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

// TestHandlerRedelivery runs one task twice, as asynq does after a crash: the rows land once, the second run is
// marked redelivered, and the ledger holds a single outcome with the first run's counts.
func TestHandlerRedelivery(t *testing.T) {
	t.Parallel()
	ns := testenv.Namespace(t)
	rdb := testenv.Redis(t, ns)
	db := openDB(t, ns)
	l := ledger.New(rdb)
	h := &Handler{Repo: db, Ledger: l, Logger: slog.New(slog.DiscardHandler), Worker: "w1", Concurrency: 1}

	runNo, err := db.StartRun(t.Context(), ns, repo.DefaultKeepRuns)
	if err != nil {
		t.Fatal(err)
	}
	p := ImportPayload{DB: db.ID, RunID: ns, RunNo: runNo, File: "customers.csv", FirstLine: 2, Records: 2, Data: []byte("C1,Zoë,\"1 Main St, Apt 2\",02134,555,z@example.com\n,nobody,,,,\n")}
	task, err := NewCustomerImportTask(p)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := h.ProcessTask(t.Context(), task); err != nil {
			t.Fatal(err)
		}
	}
	outcomes, err := l.Outcomes(t.Context(), ns, record.Customers)
	if err != nil {
		t.Fatal(err)
	}
	want := []ledger.Outcome{{
		TaskID: p.TaskID(record.Customers), FirstLine: 2, Read: 2, Added: 1, Present: 0, Rejected: 1,
		Problems:    []record.Problem{{File: "customers.csv", Line: 3, LastLine: 3, Column: "user_id", Reason: "key is empty"}},
		Worker:      "w1",
		Concurrency: 1,
		Redelivered: true,
	}}
	if diff := cmp.Diff(want, outcomes); diff != "" {
		t.Errorf("outcomes (-want, +got):\n%s", diff)
	}
	if n, err := db.Count(t.Context(), record.Customers); err != nil || n != 1 {
		t.Errorf("customers = %d, %v; want 1", n, err)
	}

	// A payload that cannot be decoded is not retried: it would fail the same way every time.
	err = h.ProcessTask(t.Context(), asynq.NewTask(TypeProductImport, []byte("garbage")))
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
	h := &Handler{Repo: db, Ledger: ledger.New(rdb), Logger: slog.New(slog.DiscardHandler), Worker: "w1", Concurrency: 1}
	otherRun, err := other.StartRun(t.Context(), ns, repo.DefaultKeepRuns)
	if err != nil {
		t.Fatal(err)
	}
	data := []byte("C1,Zoë,1 Main St,02134,555,z@example.com\n")
	for _, tc := range []struct {
		name string
		p    ImportPayload
		want string
	}{
		{"another database's task", ImportPayload{DB: other.ID, RunID: ns, RunNo: otherRun, File: "customers.csv", FirstLine: 2, Records: 1, Data: data}, "task is for database " + other.ID},
		{"a run this database never registered", ImportPayload{DB: db.ID, RunID: ns, RunNo: otherRun, File: "customers.csv", FirstLine: 2, Records: 1, Data: data}, "registered no such run"},
	} {
		task, err := NewCustomerImportTask(tc.p)
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
