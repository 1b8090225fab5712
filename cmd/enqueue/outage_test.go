package main

import (
	"context"
	"database/sql"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/redis/go-redis/v9"

	"hpnorton/internal/cli"
	"hpnorton/internal/gen"
	"hpnorton/internal/ledger"
	"hpnorton/internal/testenv"
	"hpnorton/internal/worker"
	"hpnorton/repo"
)

// TestMySQLOutage cuts the worker off MySQL in the middle of a run, until a task has failed. Tasks in flight fail and
// roll back, the worker retries them with backoff, and the run ends with the exact tuples of an undisturbed one.
func TestMySQLOutage(t *testing.T) {
	t.Parallel()
	ns := testenv.Namespace(t)
	rdb := testenv.Redis(t, ns)
	dsn := testenv.MySQL(t, ns)
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		t.Fatal(err)
	}
	proxy := testenv.StartProxy(t, cfg.Addr)
	cfg.Addr = proxy.Addr()
	db, err := repo.Open(context.Background(), cfg.FormatDSN())
	if err != nil {
		t.Fatal(err)
	}
	var workerLog testenv.Buffer
	w, err := worker.Start(rdb, db, worker.Config{Concurrency: 2, Queue: ns, Name: ns + "-worker", Logger: slog.New(slog.NewTextHandler(&workerLog, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		w.Shutdown()
		db.Close()
	})

	const rows = 20000
	dir := t.TempDir()
	if err := gen.WriteDir(dir, rows, gen.Options{}); err != nil {
		t.Fatal(err)
	}
	b := &testBundle{ns: ns, redisURL: testenv.RedisURL(), dsn: dsn} // the enqueuer reaches MySQL directly
	wait := b.startEnqueue(t, "--json", "--quiet", "--chunk-rows", "200", dir)

	direct, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Close()
	for stored := 0; stored < rows/5; {
		if err := direct.QueryRow("SELECT COUNT(*) FROM customers").Scan(&stored); err != nil && !errors.Is(err, sql.ErrNoRows) {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	// The outage lasts until a task has failed through it, so that the retries it causes are sure to be tested.
	proxy.Cut(true)
	for deadline := time.Now().Add(time.Minute); !strings.Contains(workerLog.String(), "task failed"); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no task failed within a minute of cutting the worker off MySQL:\n%s", workerLog.String())
		}
	}
	proxy.Cut(false)

	code, stdout, stderr := wait(3*time.Minute, workerLog.String)
	if code != cli.ExitOK {
		t.Fatalf("enqueue = %d, want 0\n%s", code, stderr)
	}
	rep := decode(t, stdout)
	for i, f := range rep.Files {
		if tu := rep.Results[i]; tu.Processed != rows || tu.Before != 0 || tu.After != rows || f.Read != rows || f.Rejected != 0 {
			t.Errorf("%s: tuple %v, read %d, rejected %d; want [%d 0 %d] and every row read", f.File, tu, f.Read, f.Rejected, rows, rows)
		}
	}
	if failed := strings.Count(workerLog.String(), "task failed"); failed == 0 {
		t.Errorf("no task failed during the outage; the test cut nothing:\n%s", workerLog.String())
	} else {
		t.Logf("%d task deliveries failed during the outage and were retried", failed)
	}
}

// TestRedisOutage cuts the enqueuer off Redis in the middle of a run. The run's state lives in Redis, so the
// enqueuer cannot finish it: it must stop at once with exit status 2 and say what is safe, not hang or count.
func TestRedisOutage(t *testing.T) {
	t.Parallel()
	ns := testenv.Namespace(t)
	rdb := testenv.Redis(t, ns)
	opt, err := redis.ParseURL(testenv.RedisURL())
	if err != nil {
		t.Fatal(err)
	}
	proxy := testenv.StartProxy(t, opt.Addr)
	// No worker takes the run's tasks, so it is still waiting when Redis goes; the enqueuer's link is the only one
	// cut, and the test watches the run on Redis directly.
	b := &testBundle{ns: ns, redisURL: strings.Replace(testenv.RedisURL(), opt.Addr, proxy.Addr(), 1), dsn: testenv.MySQL(t, ns), ledger: ledger.New(rdb)}

	dir := t.TempDir()
	if err := gen.WriteDir(dir, 20000, gen.Options{}); err != nil {
		t.Fatal(err)
	}
	wait := b.startEnqueue(t, "--quiet", "--chunk-rows", "100", dir)
	runID := b.ns + "_run1" // the bundle's first run
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(time.Millisecond) {
		if alive, err := b.ledger.Alive(t.Context(), runID); err != nil {
			t.Fatal(err)
		} else if alive {
			break // the run has started and waits for its tasks
		}
		if time.Now().After(deadline) {
			t.Fatal("the run did not start within a minute")
		}
	}
	proxy.Cut(true)
	code, stdout, stderr := wait(time.Minute, func() string { return "" })
	if code != cli.ExitError || !strings.Contains(stderr, "stopped waiting") || !strings.Contains(stderr, "the rows stored so far stay") {
		t.Errorf("exit %d, want 2 and what is safe\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	t.Logf("enqueue said: %s", lines[len(lines)-1])
}
