package main

import (
	"bufio"
	"database/sql"
	"encoding/csv"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"hpnorton/internal/coordinator"
	"hpnorton/internal/record"
	"hpnorton/internal/testenv"
)

// TestParallelEqualsLinear imports random files, with repeated keys and bad rows, once in linear mode and then
// with one, two and three worker processes, and with chunks of 17 rows and of 2, each into a database of its own
// that an earlier run has already filled in part, so that some repeated keys are present already. Every parallel
// run must report what the linear run reported, but for timings, worker names and the number of tasks, reject the
// same lines for the same reasons, and leave the very same rows in MySQL. A second run of the same folder rejects
// the same lines again, and adds nothing.
func TestParallelEqualsLinear(t *testing.T) {
	t.Parallel()
	worker := testenv.Build(t, "worker")
	for _, seed := range []uint64{1, 2} {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			t.Parallel()
			rng := rand.New(rand.NewPCG(seed, 20261127))
			earlier, input := t.TempDir(), t.TempDir()
			writeRandomFiles(t, rng, earlier, 120)
			writeRandomFiles(t, rng, input, 600)

			setups := []struct {
				name        string
				processes   int
				concurrency int
				chunkRows   string
			}{
				{"linear", 1, 1, "17"},
				{"1 process", 1, 4, "17"},
				{"2 processes", 2, 3, "17"},
				{"3 processes", 3, 2, "17"},
				{"2 processes, chunks of 2", 2, 2, "2"},
			}
			var wantRep coordinator.Report
			var wantRows map[string][][]string
			var wantRejects string
			for i, s := range setups {
				rep, rows, rejects := importWithProcesses(t, worker, s.processes, s.concurrency, s.chunkRows, earlier, input)
				wantMode := map[bool]string{true: "linear", false: "parallel"}[s.concurrency == 1 && s.processes == 1]
				if rep.Mode != wantMode {
					t.Errorf("%s: mode %q, want %q", s.name, rep.Mode, wantMode)
				}
				if i == 0 {
					wantRep, wantRows, wantRejects = rep, rows, rejects
					if rep.Files[0].Rejected == 0 || rep.Files[0].Present == 0 || rep.Files[0].Before == 0 {
						t.Fatalf("the random input should have rejected, present and earlier rows: %+v", rep.Files[0])
					}
					lines := strings.Count(rejects, "\n") - 1 // less the header
					if dups := strings.Count(rejects, "repeats the key of line"); dups == 0 || lines != rep.ProblemCount {
						t.Fatalf("the rejects file lists %d problems of %d, %d of them repeated keys; want all, and some repeats", lines, rep.ProblemCount, dups)
					}
					for _, f := range rep.Files {
						if f.Read != f.Added+f.Present+f.Rejected {
							t.Errorf("%s: read %d != added %d + present %d + rejected %d", f.File, f.Read, f.Added, f.Present, f.Rejected)
						}
					}
					continue
				}
				if diff := cmp.Diff(wantRep, rep, sameImport("Tasks")); diff != "" {
					t.Errorf("%s: report differs from linear mode (-linear, +parallel):\n%s", s.name, diff)
				}
				if diff := cmp.Diff(wantRejects, rejects); diff != "" {
					t.Errorf("%s: rejects file differs from linear mode (-linear, +parallel):\n%s", s.name, diff)
				}
				if diff := cmp.Diff(wantRows, rows); diff != "" {
					t.Errorf("%s: MySQL content differs from linear mode (-linear, +parallel):\n%s", s.name, diff)
				}
			}
		})
	}
}

// importWithProcesses starts worker processes on a fresh database and queue, imports earlier and then input with
// small chunks, and returns the report of the second run, every stored row and the rejects file. It imports input
// once more and checks that the third run rejects the very same lines and adds nothing.
func importWithProcesses(t *testing.T, worker string, processes, concurrency int, chunkRows, earlier, input string) (coordinator.Report, map[string][][]string, string) {
	t.Helper()
	ns := testenv.Namespace(t)
	testenv.Redis(t, ns) // cleans the queue's keys up after the test
	dsn := testenv.MySQL(t, ns)
	for i := range processes {
		startWorker(t, worker, ns, dsn, fmt.Sprintf("--concurrency=%d", concurrency), fmt.Sprintf("w%d", i))
	}
	b := &testBundle{ns: ns, redisURL: testenv.RedisURL(), dsn: dsn}
	var reps []coordinator.Report
	var rejects []string
	for _, dir := range []string{earlier, input, input} {
		path := filepath.Join(t.TempDir(), "rejects.csv")
		code, stdout, stderr := b.enqueue(t, "--json", "--quiet", "--chunk-rows", chunkRows, "--rejects", path, dir)
		if code != 1 {
			t.Fatalf("enqueue %s = %d, want 1 (rows rejected)\n%s", dir, code, stderr)
		}
		reps = append(reps, decode(t, stdout))
		out, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		rejects = append(rejects, string(out))
	}
	rows := dumpTables(t, dsn)
	if diff := cmp.Diff(rejects[1], rejects[2]); diff != "" {
		t.Errorf("a second run of the same folder rejects other lines (-first, +second):\n%s", diff)
	}
	for i, f := range reps[2].Files {
		if f.Added != 0 || f.Present != reps[1].Files[i].Added+reps[1].Files[i].Present {
			t.Errorf("a second run of the same folder: %s added %d and found %d present; want 0 and %d", f.File, f.Added, f.Present, reps[1].Files[i].Added+reps[1].Files[i].Present)
		}
	}
	return reps[1], rows, rejects[1]
}

// sameImport compares two runs' reports on what importing the same files must give alike: the counts, the tuples
// but for their seconds, and the problems; not a run's identity, mode or timings. fileFields names further File
// fields that the two runs may differ in, such as Tasks between modes, or Redelivered after a crash.
func sameImport(fileFields ...string) cmp.Option {
	return cmp.Options{
		cmpopts.IgnoreFields(coordinator.Report{}, "RunID", "ResultsKey", "Mode", "Workers", "Queue", "Database", "StartedAt", "Seconds"),
		cmpopts.IgnoreFields(coordinator.File{}, append([]string{"Seconds"}, fileFields...)...),
		cmpopts.IgnoreFields(coordinator.Tuple{}, "Seconds"),
	}
}

// dumpTables reads every imported row in key order.
func dumpTables(t *testing.T, dsn string) map[string][][]string {
	t.Helper()
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	out := map[string][][]string{}
	for _, k := range record.Kinds {
		cols := k.Header()
		q := "SELECT " + strings.Join(cols, ", ") + " FROM " + k.Table() + " ORDER BY " + k.Header()[k.KeyIndex()]
		rows, err := db.Query(q)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			vals := make([]string, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			out[k.Table()] = append(out[k.Table()], vals)
		}
		if err := rows.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// testWorker is a worker process a test started; the test ends it with SIGTERM unless it killed it first.
type testWorker struct {
	cmd *exec.Cmd
	mu  sync.Mutex
	log strings.Builder
}

// Log returns what the worker has logged so far.
func (w *testWorker) Log() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.log.String()
}

// Kill ends the worker with SIGKILL, as a crash or the OOM killer would: no deferred call, no shutdown.
func (w *testWorker) Kill(t *testing.T) {
	t.Helper()
	if err := w.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = w.cmd.Wait() // "signal: killed", as intended
}

// Terminate stops the worker with SIGTERM and waits for it to exit cleanly.
func (w *testWorker) Terminate(t *testing.T) {
	t.Helper()
	_ = w.cmd.Process.Signal(syscall.SIGTERM)
	if err := w.cmd.Wait(); err != nil {
		t.Errorf("worker after SIGTERM: %v\n%s", err, w.Log())
	}
}

// startWorker runs a worker process on the test's queue and database until the test ends, then stops it with
// SIGTERM and waits for it. It returns once the worker says it has started.
func startWorker(t *testing.T, bin, queue, dsn string, args ...string) *testWorker {
	t.Helper()
	return startWorkerEnv(t, bin, nil, queue, dsn, args...)
}

// startWorkerEnv is startWorker with env added to the worker's environment.
func startWorkerEnv(t *testing.T, bin string, env []string, queue, dsn string, args ...string) *testWorker {
	t.Helper()
	name := args[len(args)-1]
	args = append([]string{"--redis", testenv.RedisURL(), "--mysql", dsn, "--queue", queue, "--poll", "5ms"}, args[:len(args)-1]...)
	w := &testWorker{cmd: exec.Command(bin, args...)}
	w.cmd.Env = append(os.Environ(), env...)
	stderr, err := w.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := w.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		once := sync.Once{}
		for sc.Scan() {
			w.mu.Lock()
			w.log.WriteString(sc.Text() + "\n")
			w.mu.Unlock()
			if strings.Contains(sc.Text(), "worker started") {
				once.Do(func() { close(started) })
			}
		}
	}()
	t.Cleanup(func() {
		if w.cmd.ProcessState != nil {
			return // the test already ended it
		}
		_ = w.cmd.Process.Signal(syscall.SIGTERM)
		if err := w.cmd.Wait(); err != nil {
			t.Errorf("worker %s: %v\n%s", name, err, w.Log())
		}
	})
	select {
	case <-started:
	case <-time.After(30 * time.Second):
		t.Fatalf("worker %s did not start", name)
	}
	return w
}

// writeRandomFiles writes customers.csv and products.csv of n records each into dir. Keys come from a pool
// smaller than n, so many repeat with other values, across chunks and within them; about one record in twelve is
// bad in one of the ways validation reports; some fields hold quotes, commas and newlines.
func writeRandomFiles(t *testing.T, rng *rand.Rand, dir string, n int) {
	t.Helper()
	text := func() string {
		parts := []string{"oak", "Zoë", "北京", `say "hi"`, "a, b", "two\nlines", "O'Brien", `back\slash`}
		return parts[rng.IntN(len(parts))] + " " + parts[rng.IntN(len(parts))]
	}
	for _, k := range record.Kinds {
		f, err := os.Create(filepath.Join(dir, k.FileName()))
		if err != nil {
			t.Fatal(err)
		}
		w := csv.NewWriter(f)
		if err := w.Write(k.Header()); err != nil {
			t.Fatal(err)
		}
		for range n {
			key := fmt.Sprintf("%c%03d", strings.ToUpper(k.String())[0], rng.IntN(n*2/3))
			var rec []string
			if k == record.Customers {
				rec = []string{key, text(), text(), fmt.Sprint(rng.IntN(99999)), "555", "x@example.com"}
			} else {
				rec = []string{key, text(), "office", fmt.Sprint(rng.IntN(500))}
			}
			switch rng.IntN(12) {
			case 0:
				rec[0] = "" // an empty key
			case 1:
				rec = rec[:len(rec)-1] // a field missing
			case 2:
				rec[1] = strings.Repeat("x", 256) // too long for its column
			case 3:
				rec[len(rec)-1] = "-" + rec[len(rec)-1] // not a whole number for products
			}
			if err := w.Write(rec); err != nil {
				t.Fatal(err)
			}
		}
		w.Flush()
		if err := w.Error(); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
