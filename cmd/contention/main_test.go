package main

import (
	"bytes"
	"context"
	"database/sql"
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

// TestCommand runs the command as a user would, into a database of the test's own.
func TestCommand(t *testing.T) {
	t.Parallel()
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
