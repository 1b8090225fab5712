package tasks

import (
	"errors"
	"log/slog"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/hibiken/asynq"

	"hpnorton/internal/ledger"
	"hpnorton/internal/record"
	"hpnorton/internal/testenv"
	"hpnorton/repo"
)

func TestPayloadRoundTrip(t *testing.T) {
	t.Parallel()
	p := ImportPayload{RunID: "run1", RunNo: 7, File: "products.csv", FirstLine: 1002, Records: 2, Data: []byte("P1,\"a\nb\",office,1\nP2,c,office,0\n")}
	for _, k := range record.Kinds {
		task, err := NewImportTask(k, p)
		if err != nil {
			t.Fatal(err)
		}
		kind, err := KindOf(task.Type())
		if err != nil || kind != k {
			t.Fatalf("KindOf(%q) = %v, %v; want %v", task.Type(), kind, err, k)
		}
		got, err := DecodeImportPayload(task.Payload())
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(p, got); diff != "" {
			t.Errorf("%v payload (-want, +got):\n%s", k, diff)
		}
	}
	if got, want := p.TaskID(record.Products), "run1:products:1002"; got != want {
		t.Errorf("TaskID = %q, want %q", got, want)
	}
	for _, bad := range []string{"", "no newline", "{}\n", "{\"run_id\":\"r\"}\n", "not json\n"} {
		if _, err := DecodeImportPayload([]byte(bad)); err == nil {
			t.Errorf("DecodeImportPayload(%q) succeeded, want an error", bad)
		}
	}
	if _, err := KindOf("import:orders"); err == nil {
		t.Error("KindOf(import:orders) succeeded, want an error")
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	p := ImportPayload{RunID: "r", File: "products.csv", FirstLine: 10, Data: []byte(
		"P1,desk,office,3\n" +
			"P2,\"two\nlines\",office,-1\n" +
			"P3,chair\n" +
			"P4,bad\"quote,office,1\n" +
			"P5,lamp,office,0\n")}
	rows, problems := Validate(record.Products, p)
	wantRows := []record.Row{
		{Line: 10, Fields: []string{"P1", "desk", "office", "3"}},
		{Line: 15, Fields: []string{"P5", "lamp", "office", "0"}},
	}
	if diff := cmp.Diff(wantRows, rows); diff != "" {
		t.Errorf("rows (-want, +got):\n%s", diff)
	}
	wantProblems := []record.Problem{
		{File: "products.csv", Line: 11, Column: "quantity_available", Value: "-1", Reason: "is not a whole number from 0 to 4294967295"},
		{File: "products.csv", Line: 13, Reason: "has 2 fields, want 4 (product_id,description,product_type,quantity_available)"},
		{File: "products.csv", Line: 14, Reason: `cannot be parsed as CSV: bare " in non-quoted-field`},
	}
	if diff := cmp.Diff(wantProblems, problems); diff != "" {
		t.Errorf("problems (-want, +got):\n%s", diff)
	}
}

// TestHandlerRedelivery runs one task twice, as asynq does after a crash: the rows land once, the second run is
// marked redelivered, and the ledger holds a single outcome with the first run's counts.
func TestHandlerRedelivery(t *testing.T) {
	t.Parallel()
	ns := testenv.Namespace(t)
	rdb := testenv.Redis(t, ns)
	db, err := repo.Open(t.Context(), testenv.MySQL(t, ns))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	l := ledger.New(rdb)
	h := &Handler{Repo: db, Ledger: l, Logger: slog.New(slog.DiscardHandler), Worker: "w1", Concurrency: 1}

	runNo, err := db.StartRun(t.Context(), ns)
	if err != nil {
		t.Fatal(err)
	}
	p := ImportPayload{RunID: ns, RunNo: runNo, File: "customers.csv", FirstLine: 2, Records: 2, Data: []byte("C1,Zoë,\"1 Main St, Apt 2\",02134,555,z@example.com\n,nobody,,,,\n")}
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
		Problems:    []record.Problem{{File: "customers.csv", Line: 3, Column: "user_id", Reason: "key is empty"}},
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
