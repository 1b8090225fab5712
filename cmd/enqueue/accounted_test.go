package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/csv"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"hpnorton/internal/cli"
	"hpnorton/internal/gen"
	"hpnorton/internal/record"
	"hpnorton/internal/testenv"
	"hpnorton/internal/worker"
	"hpnorton/repo"
)

// readRejects returns the rejects file's records after its header.
func readRejects(t *testing.T, path string) [][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil || len(recs) == 0 {
		t.Fatalf("rejects file: %v", err)
	}
	return recs[1:]
}

// TestStrayQuoteKeepsTheFile is the report that opened the second reliability round: a quote that never closes on
// line 2 of a 50,000-row file took the other 49,999 rows with it, without a word. Now only line 2 is rejected, and
// the report's counts add up to the file's lines. products.csv quotes every description and has a bad quote in the
// middle of line 10,001: the record before it is stored, and the rejected one is that line alone.
func TestStrayQuoteKeepsTheFile(t *testing.T) {
	t.Parallel()
	b := setup(t, 2)
	dir := t.TempDir()
	var c, p bytes.Buffer
	c.WriteString("user_id,name,address,zip_code,phone_number,email\n")
	c.WriteString("X1,\"unterminated,a,z,p,e\n")
	for i := 2; i <= 50000; i++ {
		fmt.Fprintf(&c, "C%d,Name %d,\"%d Main St, Apt 2\",01234,555-0101,c%d@example.com\n", i, i, i, i)
	}
	p.WriteString("product_id,description,product_type,quantity_available\n")
	for i := 1; i <= 20001; i++ {
		desc := fmt.Sprintf("\"Desk, model %d\"", i)
		if i == 10000 {
			desc = "\"Desk \"with\" a bad quote\""
		}
		fmt.Fprintf(&p, "P%d,%s,office,%d\n", i, desc, i%7)
	}
	for name, data := range map[string][]byte{"customers.csv": c.Bytes(), "products.csv": p.Bytes()} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	rejects := filepath.Join(t.TempDir(), "rejects.csv")
	code, stdout, stderr := b.enqueue(t, "--timeout", "2m", "--rejects", rejects, dir)
	t.Logf("enqueue --rejects rejects.csv DIR:\n%s", stdout)
	if code != cli.ExitRejected {
		t.Fatalf("exit %d, want 1\n%s", code, stderr)
	}
	got := readRejects(t, rejects)
	if len(got) != 2 || got[0][0] != "customers.csv" || got[0][1] != "2" || got[0][2] != "2" ||
		got[1][0] != "products.csv" || got[1][1] != "10001" || got[1][2] != "10001" {
		t.Fatalf("rejects %q; want customers.csv line 2 and products.csv line 10001, each alone", got)
	}
	code, stdout, stderr = b.enqueue(t, "--json", "--timeout", "2m", dir)
	if code != cli.ExitRejected {
		t.Fatalf("second run: exit %d, want 1\n%s", code, stderr)
	}
	rep := decode(t, stdout)
	for i, want := range [][5]int64{{50000, 50000, 0, 49999, 1}, {20001, 20001, 0, 20000, 1}} {
		f := rep.Files[i]
		if got := [5]int64{f.Lines, f.Read, f.Added, f.Present, f.Rejected}; got != want {
			t.Errorf("%s: lines, read, added, present, rejected = %v, want %v", f.File, got, want)
		}
	}
}

// TestTaskLandsOnlyInItsDatabase: staging and production share one Redis and one queue name. A run into database B
// is never taken by the worker of database A: A's rows stay as they were, and the enqueuer says that no worker
// serves its database. Once a worker of B starts, B's run completes.
func TestTaskLandsOnlyInItsDatabase(t *testing.T) {
	t.Parallel()
	a := setup(t, 2) // database A, its worker on the shared queue name
	if code, _, stderr := a.enqueue(t, "--timeout", "1m", "../../testdata"); code != cli.ExitOK {
		t.Fatalf("filling A: exit %d\n%s", code, stderr)
	}
	dbA, err := sql.Open("mysql", a.dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer dbA.Close()
	checksum := func() string {
		var c1, c2 string
		if err := dbA.QueryRow("CHECKSUM TABLE customers").Scan(new(string), &c1); err != nil {
			t.Fatal(err)
		}
		if err := dbA.QueryRow("CHECKSUM TABLE products").Scan(new(string), &c2); err != nil {
			t.Fatal(err)
		}
		return c1 + "/" + c2
	}
	wantA := checksum()

	// B's files share A's keys, with other values: a row of A overwritten or a key reported present would show.
	dir := t.TempDir()
	if err := gen.WriteDir(dir, 1000, gen.Options{}); err != nil {
		t.Fatal(err)
	}
	for _, k := range record.Kinds {
		path := filepath.Join(dir, k.FileName())
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		header, body, _ := bytes.Cut(data, []byte("\n"))
		data = append(append(header, '\n'), bytes.ReplaceAll(body, []byte("a"), []byte("b"))...)
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b := &testBundle{ns: a.ns, redisURL: a.redisURL, dsn: testenv.MySQL(t, a.ns+"_b"), ledger: a.ledger}
	b.runs.Store(100) // run IDs apart from A's
	code, _, stderr := b.enqueue(t, "--timeout", "8s", dir)
	if code != cli.ExitTimedOut || !strings.Contains(stderr, "no worker serves database") || !strings.Contains(stderr, "serve other databases") {
		t.Errorf("run into B with only A's worker: exit %d; want 124, saying that no worker serves B and one serves another database\n%s", code, stderr)
	}
	if got := checksum(); got != wantA {
		t.Fatalf("A's tables changed from %s to %s while B ran", wantA, got)
	}

	// B's own worker finishes a run into B.
	dbB, err := repo.Open(t.Context(), b.dsn)
	if err != nil {
		t.Fatal(err)
	}
	w, err := worker.Start(testenv.Redis(t, a.ns), dbB, worker.Config{Concurrency: 2, Queue: a.ns, Name: a.ns + "-worker-b"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		w.Shutdown()
		dbB.Close()
	})
	code, stdout, stderr := b.enqueue(t, "--json", "--timeout", "1m", dir)
	if code != cli.ExitOK {
		t.Fatalf("run into B with B's worker: exit %d\n%s", code, stderr)
	}
	if rep := decode(t, stdout); rep.Results[0].After != 1000 || rep.Results[1].After != 1000 || rep.Database != dbB.ID {
		t.Errorf("B's run: %+v into %s; want 1000 rows of each in %s", rep.Results, rep.Database, dbB.ID)
	}
	if got := checksum(); got != wantA {
		t.Errorf("A's tables changed from %s to %s", wantA, got)
	}
}

// TestOnlyRegularFiles: a FIFO in place of a file is refused at once, without waiting for a writer, and the other
// file still imports; a symbolic link to a regular file is followed.
func TestOnlyRegularFiles(t *testing.T) {
	t.Parallel()
	b := setup(t, 1)
	dir := t.TempDir()
	if err := gen.WriteDir(dir, 10, gen.Options{}); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(dir, "products.csv"), filepath.Join(dir, "real-products.csv")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("real-products.csv", filepath.Join(dir, "products.csv")); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, "customers.csv")); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(dir, "customers.csv"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	code := run(ctx, []string{"--redis", b.redisURL, "--mysql", b.dsn, "--queue", b.ns, "--run-id", b.ns + "_fifo", "--json", "--timeout", "20s", dir}, &stdout, &stderr)
	if ctx.Err() != nil {
		t.Fatal("enqueue hung on the FIFO")
	}
	if code != cli.ExitRejected {
		t.Fatalf("exit %d, want 1\n%s", code, stderr.String())
	}
	rep := decode(t, stdout.String())
	if want := "is not a regular file but a named pipe (FIFO); only regular files, or links to them, are read"; rep.Files[0].Error != want {
		t.Errorf("customers error %q, want %q", rep.Files[0].Error, want)
	}
	if rep.Results[1].Processed != 10 {
		t.Errorf("products through the link: %+v, want 10 rows", rep.Results[1])
	}
}

// TestHugeField: a field of 20 MB is one line rejected with its length, not a 20 MB task, results key or message;
// the rows around it import.
func TestHugeField(t *testing.T) {
	t.Parallel()
	b := setup(t, 1)
	dir := t.TempDir()
	if err := gen.WriteDir(dir, 5, gen.Options{}); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(filepath.Join(dir, "customers.csv"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(f, "X1,%s,a,b,c,d\nX2,after,a,b,c,d\n", strings.Repeat("n", 20<<20))
	f.Close()
	code, stdout, stderr := b.enqueue(t, "--json", "--timeout", "1m", dir)
	if code != cli.ExitRejected {
		t.Fatalf("exit %d, want 1\n%s", code, stderr)
	}
	rep := decode(t, stdout)
	if len(stdout) > 10000 || len(stderr) > 10000 {
		t.Errorf("output of %d and %d bytes; want short", len(stdout), len(stderr))
	}
	want := fmt.Sprintf("the line is %d bytes long; a record may have at most 65536", len("X1,")+20<<20+len(",a,b,c,d\n"))
	if rep.ProblemCount != 1 || rep.Problems[0].Line != 7 || rep.Problems[0].Reason != want || rep.Results[0].Processed != 6 {
		t.Errorf("problems %+v, results %+v; want line 7 rejected with %q and 6 customers", rep.Problems, rep.Results, want)
	}
	stored, err := b.ledger.Results(t.Context(), rep.RunID)
	if err != nil || len(stored) > 10000 {
		t.Errorf("results key of %d bytes, %v; want short", len(stored), err)
	}
}

// TestProblemsListedAreBounded: the report lists the first 100 problems, in line order, and counts them all; the
// rejects file holds every one.
func TestProblemsListedAreBounded(t *testing.T) {
	t.Parallel()
	b := setup(t, 2)
	dir := t.TempDir()
	var c strings.Builder
	c.WriteString("user_id,name,address,zip_code,phone_number,email\n")
	for i := range 153 {
		if i%51 == 0 {
			fmt.Fprintf(&c, "C%d,Ann,1 Main St,12345,555-0100,ann@example.com\n", i)
			continue
		}
		fmt.Fprintf(&c, "C%d,a record of two fields\n", i)
	}
	if err := os.WriteFile(filepath.Join(dir, "customers.csv"), []byte(c.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	products := "product_id,description,product_type,quantity_available\nP1,Desk,office,3\n"
	if err := os.WriteFile(filepath.Join(dir, "products.csv"), []byte(products), 0o644); err != nil {
		t.Fatal(err)
	}
	rejects := filepath.Join(t.TempDir(), "rejects.csv")
	code, stdout, stderr := b.enqueue(t, "--json", "--rejects", rejects, dir)
	if code != cli.ExitRejected {
		t.Fatalf("exit %d, want 1\n%s", code, stderr)
	}
	rep := decode(t, stdout)
	if rep.ProblemCount != 150 || len(rep.Problems) != 100 {
		t.Fatalf("%d problems counted and %d listed, want 150 and 100", rep.ProblemCount, len(rep.Problems))
	}
	// Lines 2 to 154 hold the records; lines 2, 53 and 104 are the good ones.
	if first, last := rep.Problems[0].Line, rep.Problems[99].Line; first != 3 || last != 103 {
		t.Errorf("problems listed from line %d to %d, want the first hundred: 3 to 103", first, last)
	}
	if n := len(readRejects(t, rejects)); n != 150 {
		t.Errorf("the rejects file holds %d rows, want all 150", n)
	}
	if rep.Results[0].Processed != 3 || rep.Results[1].Processed != 1 {
		t.Errorf("results %v, want 3 customers and 1 product processed", rep.Results)
	}
}
