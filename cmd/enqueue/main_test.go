package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"hpnorton/internal/cli"
	"hpnorton/internal/coordinator"
	"hpnorton/internal/gen"
	"hpnorton/internal/ledger"
	"hpnorton/internal/testenv"
	"hpnorton/internal/worker"
	"hpnorton/repo"
	"hpnorton/tasks"
)

type testBundle struct {
	ns       string
	runs     atomic.Int64 // numbers the runs, whose IDs start with ns so that the cleanup finds their keys
	redisURL string
	dsn      string
	ledger   *ledger.Ledger
}

// setup gives the test its own queue, run IDs and database, and starts an in-process worker at the given
// concurrency that lives as long as the test.
func setup(tb testing.TB, concurrency int) *testBundle {
	tb.Helper()
	ns := testenv.Namespace(tb)
	rdb := testenv.Redis(tb, ns)
	dsn := testenv.MySQL(tb, ns)
	db, err := repo.Open(context.Background(), dsn)
	if err != nil {
		tb.Fatal(err)
	}
	w, err := worker.Start(rdb, db, worker.Config{Concurrency: concurrency, Queue: ns, Name: ns + "-worker"})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		w.Shutdown()
		db.Close()
	})
	return &testBundle{ns: ns, redisURL: testenv.RedisURL(), dsn: dsn, ledger: ledger.New(rdb)}
}

// enqueue runs the command with the bundle's connections and returns its exit status, stdout and stderr. A run
// gives up after 3 minutes unless args say otherwise, and stops when the test ends: a task that keeps failing
// fails its test instead of hanging for the default hour.
func (b *testBundle) enqueue(tb testing.TB, args ...string) (int, string, string) {
	tb.Helper()
	var stdout, stderr bytes.Buffer
	runID := fmt.Sprintf("%s_run%d", b.ns, b.runs.Add(1))
	base := []string{"--redis", b.redisURL, "--mysql", b.dsn, "--queue", b.ns, "--run-id", runID, "--timeout", "3m"}
	code := run(tb.Context(), append(base, args...), &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

// pauseRunQueue pauses the queue that the bundle's runs will send to, before any run has made it, so that their
// tasks wait while the test acts; it returns an inspector on rdb, closed when the test ends, and the queue.
func (b *testBundle) pauseRunQueue(t *testing.T, rdb *redis.Client) (*asynq.Inspector, string) {
	t.Helper()
	db, err := repo.Open(t.Context(), b.dsn)
	if err != nil {
		t.Fatal(err)
	}
	queue := tasks.QueueFor(b.ns, db.ID)
	db.Close()
	in := asynq.NewInspectorFromRedisClient(rdb)
	t.Cleanup(func() { in.Close() })
	if err := in.PauseQueue(queue); err != nil {
		t.Fatal(err)
	}
	return in, queue
}

// startEnqueue runs the command in the background, for tests that act on the workers meanwhile. wait returns
// what the command returned, or fails the test after timeout, showing what else tells why.
func (b *testBundle) startEnqueue(t *testing.T, args ...string) (wait func(timeout time.Duration, why func() string) (int, string, string)) {
	type result struct {
		code           int
		stdout, stderr string
	}
	done := make(chan result, 1)
	go func() {
		code, stdout, stderr := b.enqueue(t, args...)
		done <- result{code, stdout, stderr}
	}()
	return func(timeout time.Duration, why func() string) (int, string, string) {
		t.Helper()
		select {
		case r := <-done:
			return r.code, r.stdout, r.stderr
		case <-time.After(timeout):
			t.Fatalf("enqueue did not finish within %s:\n%s", timeout, why())
			return 0, "", ""
		}
	}
}

func decode(t *testing.T, s string) coordinator.Report {
	t.Helper()
	var rep coordinator.Report
	if err := json.Unmarshal([]byte(s), &rep); err != nil {
		t.Fatalf("output is not the results JSON: %v\n%s", err, s)
	}
	return rep
}

// TestLinearImportTwice is the assignment's contract end to end: the sample data with one worker at concurrency 1,
// twice. The first run adds every record; the second adds none.
func TestLinearImportTwice(t *testing.T) {
	t.Parallel()
	b := setup(t, 1)
	for i, wantProcessed := range []int64{1000, 0} {
		code, stdout, stderr := b.enqueue(t, "--json", "../../testdata")
		if code != cli.ExitOK {
			t.Fatalf("run %d: exit %d, want 0\n%s", i+1, code, stderr)
		}
		rep := decode(t, stdout)
		before := 1000 - wantProcessed
		want := []coordinator.Tuple{
			{Processed: wantProcessed, Before: before, After: 1000},
			{Processed: wantProcessed, Before: before, After: 1000},
		}
		if diff := cmp.Diff(want, rep.Results, cmp.Comparer(func(a, b coordinator.Tuple) bool {
			return a.Processed == b.Processed && a.Before == b.Before && a.After == b.After
		})); diff != "" {
			t.Errorf("run %d tuples (-want, +got):\n%s", i+1, diff)
		}
		for _, tu := range rep.Results {
			if tu.Seconds <= 0 || tu.Seconds > rep.Seconds {
				t.Errorf("run %d: file seconds %v, want in (0, %v]", i+1, tu.Seconds, rep.Seconds)
			}
		}
		if rep.Mode != "linear" || len(rep.Workers) != 1 || rep.Workers[0].Concurrency != 1 {
			t.Errorf("run %d: mode %q, workers %+v; want linear with one worker at concurrency 1", i+1, rep.Mode, rep.Workers)
		}
		for _, f := range rep.Files {
			if f.Read != 1000 || f.Read != f.Added+f.Present+f.Rejected {
				t.Errorf("run %d %s: read %d = added %d + present %d + rejected %d? want 1000 read", i+1, f.File, f.Read, f.Added, f.Present, f.Rejected)
			}
		}
		// The same JSON is stored under the results key.
		if rep.ResultsKey != "hpnorton:results:"+rep.RunID {
			t.Errorf("results key %q", rep.ResultsKey)
		}
		stored, err := b.ledger.Results(t.Context(), rep.RunID)
		if err != nil {
			t.Fatal(err)
		}
		if strings.TrimSpace(stdout) != string(stored) {
			t.Errorf("run %d: printed JSON differs from the stored one:\nprinted %s\nstored  %s", i+1, stdout, stored)
		}
	}
}

// TestTableOutput checks the human-readable report and that a file with bad rows exits 1 while its good rows land.
func TestTableOutput(t *testing.T) {
	t.Parallel()
	b := setup(t, 2)
	dir := t.TempDir()
	if err := gen.WriteDir(dir, 20, gen.Options{BOM: true, CRLF: true}); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(filepath.Join(dir, "products.csv"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprint(f, "P99999999,broken lamp,office,-4\r\n")
	f.Close()

	code, stdout, stderr := b.enqueue(t, dir)
	if code != cli.ExitRejected {
		t.Fatalf("exit %d, want 1 for a rejected row\n%s\n%s", code, stdout, stderr)
	}
	for _, want := range []string{
		"results (processed, before, after, seconds): [[20,0,20,",
		"],[20,0,20,",
		"\n1 problem:\n",
		`products.csv:22: column quantity_available value "-4": is not a whole number from 0 to 4294967295`,
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, stdout)
		}
	}
}

func TestMissingFileAndBadHeader(t *testing.T) {
	t.Parallel()
	b := setup(t, 1)
	dir := t.TempDir()
	if err := gen.WriteDir(dir, 5, gen.Options{}); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, "products.csv")); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := b.enqueue(t, "--json", dir)
	if code != cli.ExitRejected {
		t.Fatalf("exit %d, want 1\n%s", code, stderr)
	}
	rep := decode(t, stdout)
	if rep.Results[0].Processed != 5 || rep.Files[1].Error != "file does not exist in "+dir || rep.Results[1].Processed != 0 {
		t.Errorf("results %+v, files %+v; want customers imported and products reported missing", rep.Results, rep.Files)
	}

	if err := os.WriteFile(filepath.Join(dir, "products.csv"), []byte("id,desc\n1,x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, stdout, _ = b.enqueue(t, "--json", dir)
	rep = decode(t, stdout)
	want := "header does not match: want columns product_id,description,product_type,quantity_available, found id,desc"
	if code != cli.ExitRejected || rep.Files[1].Error != want {
		t.Errorf("exit %d, products error %q; want 1 and %q", code, rep.Files[1].Error, want)
	}
}

// TestRunIDUsedTwice: a run ID names one run only, since its tasks' records would make a second run report the
// first one's counts.
func TestRunIDUsedTwice(t *testing.T) {
	t.Parallel()
	b := setup(t, 1)
	id := b.ns + "_once"
	for i, want := range []int{cli.ExitOK, cli.ExitError} {
		// The last --run-id given wins over the one enqueue adds.
		code, _, stderr := b.enqueue(t, "--run-id", id, "../../testdata")
		if code != want {
			t.Fatalf("run %d: exit %d, want %d\n%s", i+1, code, want, stderr)
		}
		if i == 1 && !strings.Contains(stderr, "enqueue: error: the run ID was used by an earlier run; choose another or leave it empty: "+id) {
			t.Errorf("second run's stderr lacks the reason:\n%s", stderr)
		}
	}
}

// TestEmptyAndHeaderOnlyFiles: an empty file is rejected with a reason, while a file with a header and no records
// is a clean import of nothing.
func TestEmptyAndHeaderOnlyFiles(t *testing.T) {
	t.Parallel()
	b := setup(t, 1)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "customers.csv"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "products.csv"), []byte("\ufeffproduct_id,description,product_type,quantity_available\r\n\r\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := b.enqueue(t, "--json", dir)
	if code != cli.ExitRejected {
		t.Fatalf("exit %d, want 1\n%s", code, stderr)
	}
	rep := decode(t, stdout)
	if rep.Files[0].Error != "file is empty" || rep.Files[1].Error != "" || rep.Files[1].Read != 0 || rep.Files[1].Tasks != 0 {
		t.Errorf("files %+v; want customers empty and products read with no records", rep.Files)
	}
	if rep.ProblemCount != 1 || rep.Results[1].Seconds <= 0 {
		t.Errorf("problem count %d, results %+v; want 1 problem and positive seconds", rep.ProblemCount, rep.Results)
	}
}

func TestUsageAndInfrastructureErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		args []string
		want string
		code int
	}{
		{"unknown flag", []string{"--nope"}, "usage error: unknown flag --nope", cli.ExitUsage},
		{"two folders", []string{"a", "b"}, "usage error: one folder expected, got 2 arguments", cli.ExitUsage},
		{"zero chunk", []string{"--chunk-rows", "0"}, "usage error: --chunk-rows: must be 1 to 100000, got 0", cli.ExitUsage},
		{"zero queue bound", []string{"--max-queued", "0"}, "usage error: --max-queued: must be at least 1, got 0", cli.ExitUsage},
		{"redis down", []string{"--redis", "redis://:s3cret@127.0.0.1:1/0"}, "error: cannot reach Redis at 127.0.0.1:1 (db 0)", cli.ExitError},
		{"bad redis URL", []string{"--redis", "http://:s3cret@x"}, "usage error: --redis: the Redis URL cannot be parsed; the expected form is redis://", cli.ExitUsage},
		{"bad DSN", []string{"--mysql", "root:s3cret@tcp(x"}, "usage error: --mysql: the MySQL DSN cannot be parsed; the expected form is user:password@tcp(host:port)/database", cli.ExitUsage},
		{"rejects file that cannot be made", []string{"--rejects", "/no/such/folder/r.csv"}, "error: --rejects: open /no/such/folder/r.csv: no such file or directory", cli.ExitError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), tt.args, &stdout, &stderr)
			if code != tt.code {
				t.Errorf("exit %d, want %d", code, tt.code)
			}
			if !strings.HasPrefix(stderr.String(), "enqueue: "+tt.want) {
				t.Errorf("stderr does not start %q:\n%s", tt.want, stderr.String())
			}
			if strings.Contains(stderr.String(), "s3cret") || strings.Contains(stderr.String(), "goroutine ") {
				t.Errorf("stderr shows a password or a stack trace:\n%s", stderr.String())
			}
		})
	}
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"-h"}, &stdout, &stderr); code != cli.ExitOK || !strings.HasPrefix(stdout.String(), "Usage: enqueue") || stderr.Len() > 0 {
		t.Errorf("-h: exit %d, stdout %q, stderr %q; want 0 and the usage on stdout", code, stdout.String(), stderr.String())
	}
}

// TestNoWorker shows the bounded wait: with nobody serving the queue, the run gives up with a clear message.
func TestNoWorker(t *testing.T) {
	t.Parallel()
	ns := testenv.Namespace(t)
	testenv.Redis(t, ns)
	var stdout, stderr bytes.Buffer
	dsn := testenv.MySQL(t, ns)
	// 7 s: after 5 s without progress, the run looks for workers and says how to start one.
	args := []string{"--redis", testenv.RedisURL(), "--mysql", dsn, "--queue", ns, "--run-id", ns, "--timeout", "7s", "../../testdata"}
	code := run(t.Context(), args, &stdout, &stderr)
	want := "enqueue: error: run did not finish within 7s: customers 1 task waiting, products 1 task waiting; no worker serves database "
	if code != cli.ExitTimedOut || !strings.Contains(stderr.String(), want) || !strings.Contains(stderr.String(), ", so its tasks stay queued until one does") {
		t.Errorf("exit %d, stderr:\n%s\nwant 124 and %q", code, stderr.String(), want)
	}
	// The hint gives the whole command, so that a copied one starts a worker on this run's Redis and database.
	hint := "start one with: " + cli.Conn{RedisURL: testenv.RedisURL(), MySQLDSN: dsn, Queue: ns}.WorkerCommand()
	if !strings.Contains(stderr.String(), hint) || !strings.Contains(hint, "--mysql '"+dsn+"'") {
		t.Errorf("stderr:\n%s\nwant the hint %q", stderr.String(), hint)
	}
}

// TestInterrupted: Ctrl-C while waiting ends the command with status 130 and a message saying what happens to the
// run. No worker serves its database, so the message says the tasks wait for one, rather than that workers import
// them.
func TestInterrupted(t *testing.T) {
	t.Parallel()
	ns := testenv.Namespace(t)
	rdb := testenv.Redis(t, ns)
	ctx, cancel := context.WithCancelCause(t.Context())
	defer cancel(nil)
	// Once both tasks are pending, the run is waiting, and the cancel comes as cli.SignalContext's does on SIGINT.
	go func() {
		for ctx.Err() == nil {
			if pendingList(ctx, rdb, ns, 2) != "" {
				cancel(&cli.Signalled{Signal: os.Interrupt})
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	var stdout, stderr bytes.Buffer
	args := []string{"--redis", testenv.RedisURL(), "--mysql", testenv.MySQL(t, ns), "--queue", ns, "--run-id", ns, "--timeout", "1m", "../../testdata"}
	code := run(ctx, args, &stdout, &stderr)
	// Both tasks pending may come a moment before each reader marks its file sent: either snapshot is true.
	want := regexp.MustCompile(`(?m)^enqueue: error: interrupted \(customers (1 task waiting|still being enqueued), products (1 task waiting|still being enqueued)\); no worker serves database \w+, so its tasks stay queued until one does, but this run's results are not recorded; finish the run with: `)
	if code != cli.ExitInterrupted || !want.MatchString(stderr.String()) || strings.Contains(stderr.String(), "workers still import") {
		t.Errorf("exit %d, stderr:\n%s\nwant 130 and %s", code, stderr.String(), want)
	}
}

// TestInterruptedWhileWorkersServe: SIGTERM while a worker serves the run's database, with its queue paused so
// that the tasks wait, ends the command with 143 and says that the workers still import the tasks.
func TestInterruptedWhileWorkersServe(t *testing.T) {
	t.Parallel()
	b := setup(t, 1)
	rdb := testenv.Redis(t, b.ns)
	b.pauseRunQueue(t, rdb)
	ctx, cancel := context.WithCancelCause(t.Context())
	defer cancel(nil)
	go func() {
		for ctx.Err() == nil {
			if pendingList(ctx, rdb, b.ns, 2) != "" {
				cancel(&cli.Signalled{Signal: syscall.SIGTERM})
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	var stdout, stderr bytes.Buffer
	args := []string{"--redis", b.redisURL, "--mysql", b.dsn, "--queue", b.ns, "--run-id", b.ns, "--timeout", "1m", "../../testdata"}
	code := run(ctx, args, &stdout, &stderr)
	want := regexp.MustCompile(`(?m)^enqueue: error: interrupted \(customers (1 task waiting|still being enqueued), products (1 task waiting|still being enqueued)\); its tasks stay queued, and the workers still import them, but this run's results are not recorded`)
	if code != 128+int(syscall.SIGTERM) || !want.MatchString(stderr.String()) {
		t.Errorf("exit %d, stderr:\n%s\nwant 143 and %s", code, stderr.String(), want)
	}
}

// BenchmarkImport times whole runs end to end, from the enqueue command's start to its printed tuples, with an
// in-process worker already running and empty tables each time: linear mode (concurrency 1) against parallel mode
// (the worker command's default concurrency). lab/bench does the same with real processes and mysqlimport.
func BenchmarkImport(b *testing.B) {
	for _, mode := range []struct {
		name        string
		concurrency int
	}{{"linear", 1}, {"parallel", 4}} {
		for _, rows := range []int{1000, 300_000} {
			b.Run(fmt.Sprintf("mode=%s/rows=%d", mode.name, rows), func(b *testing.B) {
				bundle := setup(b, mode.concurrency)
				dir := b.TempDir()
				if err := gen.WriteDir(dir, rows, gen.Options{}); err != nil {
					b.Fatal(err)
				}
				db, err := sql.Open("mysql", bundle.dsn)
				if err != nil {
					b.Fatal(err)
				}
				defer db.Close()
				var total float64
				for b.Loop() {
					b.StopTimer()
					// Empty tables for every run; the run and task records go too, or the next run's would grow.
					for _, table := range []string{"customers", "products", "import_tasks", "import_runs"} {
						if _, err := db.Exec("TRUNCATE TABLE " + table); err != nil {
							b.Fatal(err)
						}
					}
					// TRUNCATE fires no trigger: the counts go to 0 with the rows (README, "Row counts").
					if _, err := db.Exec("UPDATE import_counts SET n = 0"); err != nil {
						b.Fatal(err)
					}
					b.StartTimer()
					code, stdout, stderr := bundle.enqueue(b, "--json", dir)
					if code != cli.ExitOK {
						b.Fatalf("exit %d\n%s", code, stderr)
					}
					var rep coordinator.Report
					if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
						b.Fatal(err)
					}
					if rep.Results[0].Processed != int64(rows) || rep.Results[1].Processed != int64(rows) {
						b.Fatalf("results %+v, want %d processed per file", rep.Results, rows)
					}
					total += rep.Seconds
				}
				b.ReportMetric(total/float64(b.N), "s/run")
				b.ReportMetric(float64(2*rows*b.N)/total, "rows/s")
			})
		}
	}
}

// TestSecretsStayHidden gives passwords in the Redis URL and the MySQL DSN, on the command line and in the
// environment, and makes every path that prints something about a connection run: usage, unreachable servers, a
// refused login and an unparsable DSN. The password must appear nowhere.
func TestSecretsStayHidden(t *testing.T) {
	const secret = "hunter2-s3cr3t"
	t.Setenv("HPNORTON_REDIS_URL", "redis://:"+secret+"@127.0.0.1:1/0")
	t.Setenv("HPNORTON_MYSQL_DSN", "root:"+secret+"@tcp(127.0.0.1:1)/db")
	for _, args := range [][]string{
		{"--no-such-flag"},              // usage, with the flags' defaults
		{"-h"},                          // the same, asked for
		{"../../testdata"},              // Redis unreachable
		{"--redis", testenv.RedisURL()}, // MySQL unreachable
		{"--redis", "redis://:" + secret + "@[::1"},                                               // a URL that cannot be parsed
		{"--redis", testenv.RedisURL(), "--mysql", "nobody:" + secret + "@tcp(127.0.0.1:3306)/x"}, // login refused
		{"--redis", testenv.RedisURL(), "--mysql", "root:" + secret + "@tcp(127.0.0.1:3306"},      // DSN cannot be parsed
		{"--log-format", "json", "--redis", "redis://:" + secret + "@127.0.0.1:1/0", "../../testdata"},
	} {
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), args, &stdout, &stderr)
		if out := stdout.String() + stderr.String(); strings.Contains(out, secret) || code == cli.ExitOK && args[0] != "-h" {
			t.Errorf("%v: exit %d, output shows the password or the command succeeded:\n%s", args, code, out)
		}
	}
}

// TestMissingOrEmptyFolder: a folder that is missing, a file given as the folder, or a folder holding neither
// file is an error in one line naming the folder, with exit status 2; no run starts, so MySQL records no run and
// Redis holds nothing of it.
func TestMissingOrEmptyFolder(t *testing.T) {
	t.Parallel()
	b := setup(t, 1)
	rdb := testenv.Redis(t, b.ns)
	empty := t.TempDir()
	missing := filepath.Join(empty, "no-such-folder")
	file := filepath.Join(t.TempDir(), "customers.csv")
	if err := os.WriteFile(file, []byte("user_id\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ dir, want string }{
		{missing, "enqueue: error: folder " + missing + " does not exist\n"},
		{empty, "enqueue: error: folder " + empty + " holds neither customers.csv nor products.csv\n"},
		{file, "enqueue: error: " + file + " is not a folder; give the folder that holds customers.csv and products.csv\n"},
	} {
		code, stdout, stderr := b.enqueue(t, tc.dir)
		if code != cli.ExitError || stdout != "" || stderr != tc.want {
			t.Errorf("%s: exit %d, stdout %q, stderr %q; want 2, nothing and %q", tc.dir, code, stdout, stderr, tc.want)
		}
	}
	db, err := sql.Open("mysql", b.dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var runs int
	if err := db.QueryRow("SELECT COUNT(*) FROM import_runs").Scan(&runs); err != nil || runs != 0 {
		t.Errorf("%d runs recorded, %v; want none", runs, err)
	}
	if keys := rdb.Keys(t.Context(), "*"+b.ns+"_run*").Val(); len(keys) != 0 {
		t.Errorf("Redis holds %q; want nothing of the runs", keys)
	}
}

// TestTableFits80Columns: the results table of a run of 2 × 1,000,000 rows fits an 80-column terminal.
func TestTableFits80Columns(t *testing.T) {
	t.Parallel()
	rep := &coordinator.Report{RunID: "20261127T174728Z-b7033460", Mode: "parallel"}
	for _, name := range []string{"customers.csv", "products.csv"} {
		f := coordinator.File{File: name, Lines: 1_000_000, Tasks: 50, Seconds: 61.234, Before: 1_000_000, After: 2_000_000}
		f.Read, f.Added, f.Present, f.Rejected = 1_000_000, 999_000, 500, 500
		rep.Files = append(rep.Files, f)
	}
	var b bytes.Buffer
	if err := printTable(&b, rep, ""); err != nil {
		t.Fatal(err)
	}
	table := strings.Split(b.String(), "\n\n")[1] // after the run's line and the tuples
	for _, line := range strings.Split(strings.TrimSpace(table), "\n") {
		if len(line) > 80 {
			t.Errorf("a table line of %d columns, want at most 80:\n%s", len(line), table)
		}
	}
}

// TestFlagsAfterTheFolder: flags typed after the folder count, as people type them.
func TestFlagsAfterTheFolder(t *testing.T) {
	t.Parallel()
	b := setup(t, 2)
	rejects := filepath.Join(t.TempDir(), "r.csv")
	code, stdout, stderr := b.enqueue(t, "../../testdata", "--json", "--rejects", rejects)
	if code != cli.ExitOK {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	if rep := decode(t, stdout); rep.Results[0].Processed != 1000 || rep.Results[1].Processed != 1000 {
		t.Errorf("results %v, want 1000 rows of each", rep.Results)
	}
	if _, err := os.Stat(rejects); err != nil {
		t.Errorf("--rejects after the folder made no file: %v", err)
	}
}

// TestFirstContactSaysItOnce: with Redis or MySQL down, the built command prints one line saying which and where,
// without the Redis client's own dial warnings before it or an internal prefix.
func TestFirstContactSaysItOnce(t *testing.T) {
	t.Parallel()
	bin := testenv.Build(t, "enqueue")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := ln.Addr().String() // a port nothing listens on once closed
	ln.Close()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--redis", "redis://" + down + "/0"}, "enqueue: error: cannot reach Redis at " + down + " (db 0): "},
		{[]string{"--redis", testenv.RedisURL(), "--mysql", "root@tcp(" + down + ")/x"}, "enqueue: error: cannot reach MySQL at " + down + ": "},
	} {
		var stderr bytes.Buffer
		cmd := exec.CommandContext(t.Context(), bin, append(tc.args, "../../testdata")...)
		cmd.Stderr = &stderr
		err := cmd.Run()
		lines := strings.Split(strings.TrimSuffix(stderr.String(), "\n"), "\n")
		if code := cmd.ProcessState.ExitCode(); code != cli.ExitError || len(lines) != 1 || !strings.HasPrefix(lines[0], tc.want) {
			t.Errorf("%v: exit %d (%v), stderr:\n%s\nwant 2 and one line starting %q", tc.args, code, err, stderr.String(), tc.want)
		}
	}
}

// pendingList returns the key of the pending list of the queue named for ns once it holds n tasks, or "" before.
func pendingList(ctx context.Context, rdb *redis.Client, ns string, n int64) string {
	keys, _ := rdb.Keys(ctx, "asynq:{"+ns+".*}:pending").Result()
	if len(keys) == 1 && rdb.LLen(ctx, keys[0]).Val() == n {
		return keys[0]
	}
	return ""
}

// TestTasksVanish: when a run's tasks and ledger disappear from Redis, as a FLUSHDB or a restart without
// persistence does, the enqueuer stops at its next look at the stalled run, saying so, instead of waiting out its
// timeout. Only this test's keys are deleted, so that other tests sharing the Redis database go on.
func TestTasksVanish(t *testing.T) {
	t.Parallel()
	ns := testenv.Namespace(t)
	rdb := testenv.Redis(t, ns)
	b := &testBundle{ns: ns, redisURL: testenv.RedisURL(), dsn: testenv.MySQL(t, ns)}
	wait := b.startEnqueue(t, "--timeout", "2m", "../../testdata") // no worker: the tasks stay pending
	var pending string
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(5 * time.Millisecond) {
		if pending = pendingList(t.Context(), rdb, ns, 2); pending != "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the run's two tasks were not pending within a minute")
		}
	}
	if err := flushRun(t, rdb, strings.TrimSuffix(pending, ":pending")+":*", "hpnorton:run:"+ns+"_run1:*"); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := wait(time.Minute, func() string { return "" })
	want := "vanished from Redis before it recorded an outcome"
	if code != cli.ExitError || !strings.Contains(stderr, want) {
		t.Errorf("exit %d, stderr:\n%s\nwant 2 and %q", code, stderr, want)
	}
}
