package main

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"strings"
	"testing"

	"hpnorton/internal/cli"
	"hpnorton/internal/ledger"
	"hpnorton/internal/testenv"
	"hpnorton/repo"
)

// setup gives the test its own database and Redis namespace.
func setup(t *testing.T) *stage {
	t.Helper()
	ns := testenv.Namespace(t)
	rdb := testenv.Redis(t, ns)
	dsn := testenv.MySQL(t, ns)
	db, err := repo.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		raw.Close()
		db.Close()
	})
	return &stage{db: db, raw: raw, rdb: rdb, ledger: ledger.New(rdb), runPrefix: ns, keyPrefix: ns + ":"}
}

// Each test asserts both sides: the failure happens, and the system's way succeeds on the same work.

func TestDeadlock(t *testing.T) {
	t.Parallel()
	out, err := setup(t).deadlock(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if !out.Deadlocked || !strings.Contains(out.Unsafe, "Error 1213") {
		t.Errorf("opposite orders: %s; want error 1213", out.Unsafe)
	}
	if out.SortedErr != nil || out.Stored != 200 {
		t.Errorf("sorted: %v, %d rows stored; want no error and 200 rows", out.SortedErr, out.Stored)
	}
}

func TestCounts(t *testing.T) {
	t.Parallel()
	out, err := setup(t).counts(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if out.Before+out.Processed == out.After {
		t.Errorf("a worker's own counts added up (%d + %d == %d); the demonstration failed to interleave", out.Before, out.Processed, out.After)
	}
	if out.RunBefore+out.RunProcessed != out.RunAfter || out.RunProcessed != 2000 {
		t.Errorf("the coordinator's counts: %d + %d != %d, or not 2000 processed", out.RunBefore, out.RunProcessed, out.RunAfter)
	}
}

func TestLostUpdate(t *testing.T) {
	t.Parallel()
	out, err := setup(t).lostUpdate(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if out.UnsafeTotal != 1000 {
		t.Errorf("read-modify-write left %d rows; want 1000, one update lost", out.UnsafeTotal)
	}
	if out.SafeTotal != 2000 {
		t.Errorf("the ledger counted %d rows; want 2000, each task once", out.SafeTotal)
	}
}

// TestCommand runs the command as a user would, into a database of the test's own. It and TestLeavesTheImportAlone
// do not run in parallel: the latter counts the demonstrations' databases on the server.
func TestCommand(t *testing.T) {
	ns := testenv.Namespace(t)
	testenv.Redis(t, ns)
	dsn := testenv.MySQL(t, ns)
	var stdout, stderr bytes.Buffer
	if code := run(t.Context(), []string{"--mysql", dsn, "--redis", testenv.RedisURL(), "--queue", ns}, &stdout, &stderr); code != cli.ExitOK {
		t.Fatalf("exit %d\n%s", code, stderr.String())
	}
	for _, want := range []string{"Error 1213", "before + processed != after", "before + processed == after", "the results say 1000", "2000 rows"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, stdout.String())
		}
	}
}

// TestLeavesTheImportAlone points the demonstrations at a database holding an import's rows, as an operator who
// exported HPNORTON_MYSQL_DSN would: every row is unchanged afterwards, no database of theirs is left behind, and
// no Redis key of theirs remains.
func TestLeavesTheImportAlone(t *testing.T) {
	ns := testenv.Namespace(t)
	rdb := testenv.Redis(t, ns)
	dsn := testenv.MySQL(t, ns)
	db, err := repo.Open(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	raw, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	for _, q := range []string{
		"INSERT INTO customers (user_id, name, address, zip_code, phone_number, email) VALUES ('C1', 'Zoë', '1 Main St', '02134', '555', 'z@example.com')",
		"INSERT INTO products (product_id, description, product_type, quantity_available) VALUES ('P1', 'desk', 'office', 3), ('P2', 'lamp', 'office', 0)",
	} {
		if _, err := raw.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	state := func() string {
		var c, p string
		if err := raw.QueryRow("CHECKSUM TABLE customers").Scan(new(string), &c); err != nil {
			t.Fatal(err)
		}
		if err := raw.QueryRow("CHECKSUM TABLE products").Scan(new(string), &p); err != nil {
			t.Fatal(err)
		}
		var dbs int
		if err := raw.QueryRow("SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name LIKE 'hpnorton\\_contention\\_%'").Scan(&dbs); err != nil {
			t.Fatal(err)
		}
		keys := rdb.Keys(t.Context(), "*contention-*").Val()
		return fmt.Sprintf("customers %s, products %s, %d demonstration databases, Redis keys %v", c, p, dbs, keys)
	}
	before := state()
	var stdout, stderr bytes.Buffer
	if code := run(t.Context(), []string{"--mysql", dsn, "--redis", testenv.RedisURL(), "--queue", ns}, &stdout, &stderr); code != cli.ExitOK {
		t.Fatalf("exit %d\n%s", code, stderr.String())
	}
	if !strings.Contains(stdout.String(), "Error 1213") {
		t.Fatalf("the demonstrations did not run:\n%s", stdout.String())
	}
	if after := state(); after != before {
		t.Errorf("before the demonstrations: %s\nafter:  %s", before, after)
	}
}
