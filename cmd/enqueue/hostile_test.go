package main

import (
	"bytes"
	"database/sql"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"hpnorton/internal/cli"
)

// hostile is a folder of files written to break an import: every kind of bad row the validation knows, a key
// repeated, bad bytes, an unterminated quote, next to good rows with accents, CJK text, newlines inside quotes
// and text that looks like SQL. want-rejects.csv beside them is what --rejects must write, line for line.
const hostile = "testdata/hostile"

func wantRejects(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(hostile, "want-rejects.csv"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// crlfCopy writes the hostile files with every line end a CRLF, those inside quoted fields included, and returns
// their folder.
func crlfCopy(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, name := range []string{"customers.csv", "products.csv"} {
		b, err := os.ReadFile(filepath.Join(hostile, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), bytes.ReplaceAll(b, []byte("\n"), []byte("\r\n")), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestHostileFiles: the bad rows are each reported once, with file, first and last line, column, value and
// reason; the good rows still land, byte for byte, a good row after a quote that never closes included; and every
// line after the header is blank or in exactly one record. It runs on the files as they are (LF) and with CRLF
// line ends, which a quoted field keeps.
func TestHostileFiles(t *testing.T) {
	t.Parallel()
	for _, eol := range []string{"\n", "\r\n"} {
		t.Run(map[string]string{"\n": "LF", "\r\n": "CRLF"}[eol], func(t *testing.T) {
			t.Parallel()
			dir := hostile
			if eol == "\r\n" {
				dir = crlfCopy(t)
			}
			hostileRun(t, dir, eol)
		})
	}
}

func hostileRun(t *testing.T, dir, eol string) {
	b := setup(t, 2)
	rejects := filepath.Join(t.TempDir(), "rejects.csv")
	code, stdout, stderr := b.enqueue(t, "--json", "--rejects", rejects, dir)
	if code != cli.ExitRejected {
		t.Fatalf("exit %d, want 1 (rows rejected)\n%s", code, stderr)
	}
	got, err := os.ReadFile(rejects)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(wantRejects(t), string(got)); diff != "" {
		t.Errorf("rejects file (-want, +got):\n%s", diff)
	}
	rep := decode(t, stdout)
	// customers.csv: 16 lines after the header, one blank; 12 records, two of them over 2 and 3 lines.
	for i, want := range [][6]int64{{16, 1, 12, 5, 0, 7}, {8, 0, 8, 3, 0, 5}} {
		f := rep.Files[i]
		if got := [6]int64{f.Lines, f.Blank, f.Read, f.Added, f.Present, f.Rejected}; got != want {
			t.Errorf("%s: lines, blank, read, added, present, rejected = %v, want %v", f.File, got, want)
		}
	}
	if rep.ProblemCount != 12 {
		t.Errorf("problem count %d, want 12", rep.ProblemCount)
	}
	// Again: the good rows are present now, and the same rows are rejected for the same reasons, the repeated
	// keys included, though their first occurrences were stored by the earlier run.
	code, stdout, stderr = b.enqueue(t, "--json", "--rejects", rejects, dir)
	if code != cli.ExitRejected {
		t.Fatalf("second run: exit %d, want 1\n%s", code, stderr)
	}
	if got, err := os.ReadFile(rejects); err != nil || string(got) != wantRejects(t) {
		t.Errorf("second run: the rejects file differs from the first run's, %v:\n%s", err, got)
	}
	for i, want := range [][4]int64{{12, 0, 5, 7}, {8, 0, 3, 5}} {
		f := decode(t, stdout).Files[i]
		if got := [4]int64{f.Read, f.Added, f.Present, f.Rejected}; got != want {
			t.Errorf("second run %s: read, added, present, rejected = %v, want %v", f.File, got, want)
		}
	}

	db, err := sql.Open("mysql", b.dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, c := range []struct{ query, key, want string }{
		{"SELECT name FROM customers WHERE user_id = ?", "C001", "Renée O'Brien"},
		{"SELECT address FROM customers WHERE user_id = ?", "C001", "12 Rue de l'Église, Apt 3"},
		{"SELECT address FROM customers WHERE user_id = ?", "C002", "北京市" + eol + "朝阳区"},
		{"SELECT name FROM customers WHERE user_id = ?", "C003", "Robert'); DROP TABLE customers;--"},
		{"SELECT address FROM customers WHERE user_id = ?", "C003", `say "hi", then leave`},
		{"SELECT zip_code FROM customers WHERE user_id = ?", "C003", "00000"},
		{"SELECT name FROM customers WHERE user_id = ?", "C008", "Multi" + eol + "Line" + eol + "Name"},
		{"SELECT name FROM customers WHERE user_id = ?", "C010", "After The Open Quote"},
		{"SELECT description FROM products WHERE product_id = ?", "P001", "Oak desk, 120 cm"},
		{"SELECT description FROM products WHERE product_id = ?", "P006", "桌子 — café"},
		{"SELECT description FROM products WHERE product_id = ?", "P007", "1; DELETE FROM products WHERE 1=1"},
	} {
		var got string
		if err := db.QueryRow(c.query, c.key).Scan(&got); err != nil || got != c.want {
			t.Errorf("%s [%s] = %q, %v; want %q", c.query, c.key, got, err, c.want)
		}
	}
}

// TestStrict: with --strict, a folder with bad rows is refused whole, with the same problems a run reports, and
// nothing reaches the queue or MySQL; a clean folder imports as usual.
func TestStrict(t *testing.T) {
	t.Parallel()
	b := setup(t, 2)
	rejects := filepath.Join(t.TempDir(), "rejects.csv")
	code, stdout, stderr := b.enqueue(t, "--strict", "--rejects", rejects, hostile)
	if code != cli.ExitRejected || !strings.Contains(stdout, "--strict: nothing was enqueued") || !strings.Contains(stdout, "12 problems:") {
		t.Fatalf("exit %d, want 1 and the refusal\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	got, err := os.ReadFile(rejects)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(wantRejects(t), string(got)); diff != "" {
		t.Errorf("rejects file (-want, +got):\n%s", diff)
	}
	// The list shows 10 of the 12 and points at the file that was given for the rest.
	if want := "  … and 2 more; " + rejects + " lists all 12\n"; !strings.Contains(stdout, want) {
		t.Errorf("stdout lacks %q:\n%s", want, stdout)
	}
	// As JSON, the refusal says that nothing was enqueued and gives each file's counts, with no empty run.
	code, stdout, stderr = b.enqueue(t, "--strict", "--json", hostile)
	var doc refusal
	if err := json.Unmarshal([]byte(stdout), &doc); err != nil || code != cli.ExitRejected {
		t.Fatalf("--strict --json: exit %d, %v\nstdout:\n%s\nstderr:\n%s", code, err, stdout, stderr)
	}
	want := refusal{Enqueued: false, Reason: "--strict: nothing was enqueued; " + hostile + " holds rows or files that would be rejected", Dir: hostile,
		Files: []checkedFile{
			{Kind: "customers", File: "customers.csv", Lines: 16, Blank: 1, Read: 12, Valid: 5, Rejected: 7},
			{Kind: "products", File: "products.csv", Lines: 8, Read: 8, Valid: 3, Rejected: 5},
		}, ProblemCount: 12}
	if diff := cmp.Diff(want, doc, cmpopts.IgnoreFields(refusal{}, "Problems")); diff != "" || len(doc.Problems) != 12 {
		t.Errorf("--strict --json (-want, +got), %d problems listed:\n%s", len(doc.Problems), diff)
	}
	if !strings.Contains(stdout, `"enqueued":false`) || strings.Contains(stdout, "run_id") || strings.Contains(stdout, "null") {
		t.Errorf("--strict --json does not say enqueued false, or shows an empty run:\n%s", stdout)
	}
	db, err := sql.Open("mysql", b.dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var rows int
	// No run was registered, so no task can have been enqueued, and no row stored.
	err = db.QueryRow("SELECT (SELECT COUNT(*) FROM import_runs) + (SELECT COUNT(*) FROM customers) + (SELECT COUNT(*) FROM products)").Scan(&rows)
	if err != nil || rows != 0 {
		t.Errorf("a refused run left %d runs and rows, %v; want none", rows, err)
	}

	code, stdout, stderr = b.enqueue(t, "--strict", "--json", "../../testdata")
	if code != cli.ExitOK {
		t.Fatalf("--strict on the sample data: exit %d, want 0\n%s", code, stderr)
	}
	if rep := decode(t, stdout); rep.Results[0].Processed != 1000 || rep.Results[1].Processed != 1000 {
		t.Errorf("--strict on the sample data: %v, want 1000 rows each", rep.Results)
	}
}
