package main

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"hpnorton/internal/cli"
	"hpnorton/internal/coordinator"
	"hpnorton/internal/testenv"
)

// TestWorkerDiesMidRun stops the only worker in the middle of a run, with SIGKILL at several points or with
// SIGTERM, and starts another. The run must end with exactly the report, rejects and MySQL content of an
// uninterrupted run: a task the dead worker held runs again, and its transaction either committed whole, and
// the task's record in import_tasks makes the second delivery count nothing new, or rolled back whole.
//
// asynq hands a dead worker's tasks to another only after their lease has been expired for 30 s, so a SIGKILL
// case takes 60 to 90 s.
func TestWorkerDiesMidRun(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("skipping in -short mode: a killed worker's tasks wait out asynq's 30 s lease")
	}
	worker := testenv.Build(t, "worker")
	armed := testenv.BuildTags(t, "crashtest", "worker") // HPNORTON_CRASH_AFTER_COMMIT arms its crash hook
	input := t.TempDir()
	writeRandomFiles(t, rand.New(rand.NewPCG(7, 20261127)), input, 3000)
	// About 1,400 of a file's 3,000 records are sent, the first valid occurrence of each key: chunks of 8 rows
	// make about 175 tasks a file, so that the kills land while tasks are in flight.
	const chunk = "8"

	// importRun runs one import of input with a worker at concurrency 2, and lets interrupt act on that worker
	// once it has finished `after` tasks. With crashAfter set, the first worker instead runs at concurrency 1 with
	// its crash hook armed, and kills itself after the commit of its crashAfter-th task, before recording it.
	importRun := func(t *testing.T, after, crashAfter int, interrupt func(*testWorker)) (coordinator.Report, map[string][][]string, string) {
		ns := testenv.Namespace(t)
		testenv.Redis(t, ns)
		dsn := testenv.MySQL(t, ns)
		var first *testWorker
		if crashAfter > 0 {
			first = startWorkerEnv(t, armed, []string{fmt.Sprintf("HPNORTON_CRASH_AFTER_COMMIT=%d", crashAfter)}, ns, dsn, "--concurrency=1", "first")
		} else {
			first = startWorker(t, worker, ns, dsn, "--concurrency=2", "first")
		}
		b := &testBundle{ns: ns, redisURL: testenv.RedisURL(), dsn: dsn}
		rejects := filepath.Join(t.TempDir(), "rejects.csv")
		wait := b.startEnqueue(t, "--json", "--quiet", "--timeout", "4m", "--chunk-rows", chunk, "--rejects", rejects, input)
		if crashAfter > 0 {
			died := make(chan error, 1)
			go func() { died <- first.cmd.Wait() }()
			select {
			case err := <-died:
				if !strings.Contains(fmt.Sprint(err), "killed") {
					t.Fatalf("the armed worker ended with %v, not killed by its hook\n%s", err, first.Log())
				}
			case <-time.After(2 * time.Minute):
				t.Fatalf("the armed worker did not crash after %d commits in 2 minutes\n%s", crashAfter, first.Log())
			}
			interrupt(first)
			startWorker(t, worker, ns, dsn, "--concurrency=2", "second")
		} else if interrupt != nil {
			for deadline := time.Now().Add(2 * time.Minute); strings.Count(first.Log(), "task finished") < after; {
				if time.Now().After(deadline) {
					t.Fatalf("the first worker finished %d tasks in 2 minutes, not the %d the case stops it after", strings.Count(first.Log(), "task finished"), after)
				}
				time.Sleep(time.Millisecond)
			}
			interrupt(first)
			startWorker(t, worker, ns, dsn, "--concurrency=2", "second")
		}
		code, stdout, stderr := wait(4*time.Minute, first.Log)
		if code != cli.ExitRejected {
			t.Fatalf("enqueue = %d, want 1 (rows rejected)\n%s", code, stderr)
		}
		out, err := os.ReadFile(rejects)
		if err != nil {
			t.Fatal(err)
		}
		return decode(t, stdout), dumpTables(t, dsn), string(out)
	}

	wantRep, wantRows, wantRejects := importRun(t, 0, 0, nil)
	crashed := func(*testWorker, *testing.T) {} // the armed worker has stopped itself
	cases := []struct {
		name       string
		after      int
		crashAfter int // the crash hook's task; the run must then count exactly one redelivery
		stop       func(*testWorker, *testing.T)
	}{
		// Two kill points, since go test runs two parallel subtests at a time on two cores and each waits a minute.
		{"SIGKILL after 1 task", 1, 0, (*testWorker).Kill},
		{"SIGKILL after 200 tasks", 200, 0, (*testWorker).Kill},
		{"SIGTERM after 100 tasks", 100, 0, (*testWorker).Terminate},
		// The window between a task's commit and its outcome: its rows are stored, and only MySQL knows.
		{"SIGKILL between the commit of task 30 and its outcome", 0, 30, crashed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			var killedLog string
			rep, rows, rejects := importRun(t, c.after, c.crashAfter, func(w *testWorker) {
				c.stop(w, t)
				killedLog = w.Log()
			})
			finished := strings.Count(killedLog, "task finished")
			t.Logf("the first worker finished %d tasks before it stopped; the run redelivered %d and %d", finished, rep.Files[0].Redelivered, rep.Files[1].Redelivered)
			if total := rep.Files[0].Tasks + rep.Files[1].Tasks; finished >= total {
				t.Fatalf("the first worker finished all %d tasks before it stopped; the case tests nothing", total)
			}
			if c.crashAfter > 0 {
				// At concurrency 1 the crash leaves exactly one task committed and unrecorded: the second worker's
				// delivery of it must find the commit and count it as a redelivery, once, adding nothing.
				if finished != c.crashAfter-1 {
					t.Errorf("the armed worker recorded %d tasks before its crash, want %d", finished, c.crashAfter-1)
				}
				if n := rep.Files[0].Redelivered + rep.Files[1].Redelivered; n != 1 {
					t.Errorf("the run counted %d redeliveries, want 1: the task committed before the crash", n)
				}
			}
			if diff := cmp.Diff(wantRep, rep, sameImport("Redelivered")); diff != "" {
				t.Errorf("report differs from an uninterrupted run (-want, +got):\n%s", diff)
			}
			if diff := cmp.Diff(wantRejects, rejects); diff != "" {
				t.Errorf("rejects differ from an uninterrupted run (-want, +got):\n%s", diff)
			}
			if diff := cmp.Diff(wantRows, rows); diff != "" {
				t.Errorf("MySQL content differs from an uninterrupted run (-want, +got):\n%s", diff)
			}
			for _, f := range rep.Files {
				if f.Read != f.Added+f.Present+f.Rejected {
					t.Errorf("%s: read %d != added %d + present %d + rejected %d", f.File, f.Read, f.Added, f.Present, f.Rejected)
				}
			}
		})
	}
}
