package main

import (
	"encoding/json"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"hpnorton/internal/cli"
	"hpnorton/internal/coordinator"
	"hpnorton/internal/testenv"
	"hpnorton/tasks"
)

// TestResume interrupts runs as an unlucky operator would, and finishes each with enqueue --resume: the enqueuer
// killed (SIGKILL) while it still enqueues, held back by --max-queued, and while it waits; and Redis losing the
// run's tasks and ledger, as a FLUSHDB does. Each resume must give exactly what an uninterrupted run gives: the
// tuples, with before as the run started and processed summed over all its tasks, the report's counts, the
// rejects and the rows. A resume of files changed since, or of a finished run, is refused.
func TestResume(t *testing.T) {
	t.Parallel()
	bin := testenv.Build(t, "enqueue")
	input := t.TempDir()
	writeRandomFiles(t, rand.New(rand.NewPCG(11, 20261127)), input, 3000)
	const chunk = "8" // about 175 tasks a file

	ref := setup(t, 2)
	refRejects := filepath.Join(t.TempDir(), "rejects.csv")
	code, stdout, stderr := ref.enqueue(t, "--json", "--quiet", "--chunk-rows", chunk, "--rejects", refRejects, input)
	if code != cli.ExitRejected {
		t.Fatalf("uninterrupted run: exit %d\n%s", code, stderr)
	}
	wantRep, wantRows := decode(t, stdout), dumpTables(t, ref.dsn)
	wantRejects, err := os.ReadFile(refRejects)
	if err != nil {
		t.Fatal(err)
	}

	// finish resumes the run and checks it against the uninterrupted one.
	finish := func(t *testing.T, b *testBundle, runID string) {
		t.Helper()
		rejects := filepath.Join(t.TempDir(), "rejects.csv")
		code, stdout, stderr := b.enqueue(t, "--json", "--quiet", "--rejects", rejects, "--resume", runID)
		if code != cli.ExitRejected {
			t.Fatalf("resume: exit %d\n%s", code, stderr)
		}
		rep := decode(t, stdout)
		if diff := cmp.Diff(wantRep, rep, sameImport("Redelivered")); diff != "" {
			t.Errorf("resumed report differs from an uninterrupted run (-want, +got):\n%s", diff)
		}
		got, err := os.ReadFile(rejects)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(string(wantRejects), string(got)); diff != "" {
			t.Errorf("rejects differ from an uninterrupted run (-want, +got):\n%s", diff)
		}
		if diff := cmp.Diff(wantRows, dumpTables(t, b.dsn)); diff != "" {
			t.Errorf("MySQL content differs from an uninterrupted run (-want, +got):\n%s", diff)
		}
		// Finished now: a second resume is refused, and says where the results are.
		if code, _, stderr := b.enqueue(t, "--resume", runID); code != cli.ExitError || !strings.Contains(stderr, "it finished; its results are under hpnorton:results:"+runID) {
			t.Errorf("resume of a finished run: exit %d, %s", code, stderr)
		}
	}

	// killed starts the enqueuer as a process, and kills it once the worker has recorded after outcomes and
	// beforeKill, if any, has returned.
	killed := func(t *testing.T, b *testBundle, runID, maxQueued string, after int, beforeKill func()) {
		t.Helper()
		cmd := exec.CommandContext(t.Context(), bin, "--redis", b.redisURL, "--mysql", b.dsn, "--queue", b.ns, "--run-id", runID,
			"--quiet", "--chunk-rows", chunk, "--max-queued", maxQueued, "--timeout", "3m", input)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		waitOutcomes(t, b, runID, after, 2*time.Minute)
		if beforeKill != nil {
			beforeKill()
		}
		_ = cmd.Process.Kill()
		_ = cmd.Wait() // "signal: killed"
	}

	t.Run("enqueuer killed while it enqueues", func(t *testing.T) {
		t.Parallel()
		b := setup(t, 1)
		runID := b.ns + "_killed"
		killed(t, b, runID, "2", 5, nil) // at most 2 tasks queued: most of the files are still to read
		finish(t, b, runID)
	})
	t.Run("enqueuer killed while it waits", func(t *testing.T) {
		t.Parallel()
		b := setup(t, 1)
		runID := b.ns + "_killed"
		killed(t, b, runID, "1000", 40, nil) // every task is queued within milliseconds
		// --list tells the run apart from a running one once its last heartbeat has expired.
		for deadline := time.Now().Add(30 * time.Second); runStates(t, b)[runID].State != coordinator.StateInterrupted; time.Sleep(100 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("--list does not show the killed run interrupted: %+v", runStates(t, b)[runID])
			}
		}
		finish(t, b, runID)
		if state := runStates(t, b)[runID].State; state != coordinator.StateFinished {
			t.Errorf("--list after the resume: %s, want finished", state)
		}
	})
	t.Run("tasks that failed for good when Redis lost their rows", func(t *testing.T) {
		t.Parallel()
		b := setup(t, 1)
		rdb := testenv.Redis(t, b.ns)
		runID := b.ns + "_killed"
		in := asynq.NewInspectorFromRedisClient(rdb)
		var queue string
		// The worker takes no more tasks until the enqueuer has queued some and is killed, so that tasks wait
		// whose rows then go.
		killed(t, b, runID, "4", 5, func() {
			queue = pauseQueue(t, in, b.ns)
			waitQueue(t, in, queue, "the enqueuer to queue a task", func(q *asynq.QueueInfo) bool { return q.Pending > 0 })
		})
		// The queued tasks' rows go; a worker then fails each of those tasks for good.
		if err := flushRun(t, rdb, "hpnorton:run:"+runID+":rows:*"); err != nil {
			t.Fatal(err)
		}
		if err := in.UnpauseQueue(queue); err != nil {
			t.Fatal(err)
		}
		waitQueue(t, in, queue, "a task of the run to fail for good", func(q *asynq.QueueInfo) bool {
			return q.Archived > 0 && q.Pending == 0 && q.Active == 0
		})
		finish(t, b, runID)
	})
	t.Run("Redis loses the run", func(t *testing.T) {
		t.Parallel()
		b := setup(t, 1)
		rdb := testenv.Redis(t, b.ns)
		runID := b.ns + "_run1" // the first run of b.enqueue
		wait := b.startEnqueue(t, "--quiet", "--chunk-rows", chunk, "--max-queued", "4", input)
		waitOutcomes(t, b, runID, 10, 2*time.Minute)
		// What FLUSHDB would take of this run, at once as FLUSHDB does: its queue and its ledger, nothing of other
		// tests.
		if err := flushRun(t, rdb, "asynq:{"+b.ns+".*}*", "hpnorton:run:"+runID+":*"); err != nil {
			t.Fatal(err)
		}
		code, _, stderr := wait(time.Minute, func() string { return "" })
		// The run finds a task gone, or a worker meets a task whose rows went while the enqueuer sent it (written
		// before the flush, the task sent after it) and fails it for good: both are Redis's loss, and both say
		// how to resume.
		lost := strings.Contains(stderr, "vanished from Redis") || (strings.Contains(stderr, "failed for good: ") && strings.Contains(stderr, tasks.RowsGone))
		if code != cli.ExitError || !lost || !strings.Contains(stderr, "finish the run with: enqueue ") || !strings.Contains(stderr, "--resume '"+runID+"'") {
			t.Fatalf("exit %d, stderr:\n%s\nwant 2, the vanished task or its rows, and the resume command", code, stderr)
		}
		finish(t, b, runID)
	})
	t.Run("Redis loses the rows of waiting tasks", func(t *testing.T) {
		t.Parallel()
		b := setup(t, 1)
		rdb := testenv.Redis(t, b.ns)
		runID := b.ns + "_run1" // the first run of b.enqueue
		// The worker takes nothing until the run's first tasks wait, and their rows are gone: it then fails them for
		// good, and the run, which still waits, says how to resume.
		in, queue := b.pauseRunQueue(t, rdb)
		wait := b.startEnqueue(t, "--quiet", "--chunk-rows", chunk, "--max-queued", "4", input)
		waitQueue(t, in, queue, "the enqueuer to queue 4 tasks", func(q *asynq.QueueInfo) bool { return q.Pending == 4 })
		if err := flushRun(t, rdb, "hpnorton:run:"+runID+":rows:*"); err != nil {
			t.Fatal(err)
		}
		if err := in.UnpauseQueue(queue); err != nil {
			t.Fatal(err)
		}
		code, _, stderr := wait(time.Minute, func() string { return "" })
		if code != cli.ExitError || !(strings.Contains(stderr, "failed for good: ") && strings.Contains(stderr, tasks.RowsGone)) || !strings.Contains(stderr, "--resume '"+runID+"'") {
			t.Fatalf("exit %d, stderr:\n%s\nwant 2, the task whose rows went, and the resume command", code, stderr)
		}
		finish(t, b, runID)
	})
	t.Run("files changed since", func(t *testing.T) {
		t.Parallel()
		b := setup(t, 1)
		dir := t.TempDir()
		for _, name := range []string{"customers.csv", "products.csv"} {
			data, err := os.ReadFile(filepath.Join(input, name))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		runID := b.ns + "_killed"
		cmd := exec.CommandContext(t.Context(), bin, "--redis", b.redisURL, "--mysql", b.dsn, "--queue", b.ns, "--run-id", runID,
			"--quiet", "--chunk-rows", chunk, "--max-queued", "2", "--timeout", "3m", dir)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		waitOutcomes(t, b, runID, 1, time.Minute)
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		f, err := os.OpenFile(filepath.Join(dir, "products.csv"), os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		f.WriteString("P99999,a corrected line,office,1\n")
		f.Close()
		code, _, stderr := b.enqueue(t, "--resume", runID)
		if code != cli.ExitError || !strings.Contains(stderr, filepath.Join(dir, "products.csv")+" changed since the run started") {
			t.Errorf("resume after a change: exit %d, stderr:\n%s\nwant 2 and the changed file named", code, stderr)
		}
	})
}

// runStates lists the bundle's runs as enqueue --list --json gives them, by run ID.
func runStates(t *testing.T, b *testBundle) map[string]coordinator.RunInfo {
	t.Helper()
	code, stdout, stderr := b.enqueue(t, "--list", "--json")
	if code != cli.ExitOK {
		t.Fatalf("--list: exit %d\n%s", code, stderr)
	}
	var runs []coordinator.RunInfo
	if err := json.Unmarshal([]byte(stdout), &runs); err != nil {
		t.Fatalf("--list --json: %v\n%s", err, stdout)
	}
	out := map[string]coordinator.RunInfo{}
	for _, r := range runs {
		out[r.RunID] = r
	}
	return out
}

// TestCancel cancels a run while it is read and loaded: its enqueuer stops saying so, no task of it stays queued,
// the counts it reports are the rows stored, and nothing of it stays in Redis but the request to stop, which
// expires. --list shows the run running, then cancelled, beside a finished one; a second cancel is refused.
func TestCancel(t *testing.T) {
	t.Parallel()
	b := setup(t, 1)
	rdb := testenv.Redis(t, b.ns)
	input := t.TempDir()
	writeRandomFiles(t, rand.New(rand.NewPCG(12, 20261127)), input, 3000)
	if code, _, stderr := b.enqueue(t, "--quiet", "../../testdata"); code != cli.ExitOK { // run 1: finished
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	runID := b.ns + "_run2"
	wait := b.startEnqueue(t, "--quiet", "--chunk-rows", "8", "--max-queued", "4", input)
	waitOutcomes(t, b, runID, 5, 2*time.Minute)
	if states := runStates(t, b); states[runID].State != coordinator.StateRunning || states[b.ns+"_run1"].State != coordinator.StateFinished {
		t.Errorf("--list while the run waits: %+v; want it running, and the first finished", states)
	}
	// The worker takes no more tasks, so that some wait in the queue when the cancel comes: it must remove them.
	pauseQueue(t, asynq.NewInspectorFromRedisClient(rdb), b.ns)

	code, stdout, stderr := b.enqueue(t, "--cancel", runID, "--json")
	if code != cli.ExitOK {
		t.Fatalf("--cancel: exit %d\n%s", code, stderr)
	}
	var infos []coordinator.RunInfo
	if err := json.Unmarshal([]byte(stdout), &infos); err != nil || len(infos) != 1 || infos[0].State != coordinator.StateCancelled {
		t.Fatalf("--cancel --json: %v, %s; want the run, cancelled", err, stdout)
	}
	if code, _, stderr := wait(time.Minute, func() string { return "" }); code != cli.ExitCancelled || !strings.Contains(stderr, "the run was cancelled") {
		t.Errorf("the cancelled run's enqueuer: exit %d, %s; want 3 saying it was cancelled", code, stderr)
	}
	// No task of the run stays in the queue.
	if keys := rdb.Keys(t.Context(), "asynq:{"+b.ns+".*}:t:"+runID+":*").Val(); len(keys) != 0 {
		t.Errorf("%d tasks of the cancelled run stay in Redis: %.3q", len(keys), keys)
	}
	// The counts reported are the rows stored: the tables held the first run's 1000 rows each, and the runs'
	// keys do not overlap.
	rows := dumpTables(t, b.dsn)
	for i, table := range []string{"customers", "products"} {
		if f := infos[0].Files[i]; int64(len(rows[table])) != 1000+f.Added {
			t.Errorf("%s: %d rows stored, and the cancel reports 1000 + %d added", table, len(rows[table]), f.Added)
		}
	}
	if keys := rdb.Keys(t.Context(), "hpnorton:run:"+runID+":*").Val(); len(keys) != 1 || !strings.HasSuffix(keys[0], ":cancel") {
		t.Errorf("Redis keeps %q of the cancelled run; want only its request to stop", keys)
	}
	if states := runStates(t, b); states[runID].State != coordinator.StateCancelled {
		t.Errorf("--list after the cancel: %+v", states[runID])
	}
	if code, _, stderr := b.enqueue(t, "--cancel", runID); code != cli.ExitError || !strings.Contains(stderr, "it has ended") {
		t.Errorf("a second cancel: exit %d, %s; want it refused", code, stderr)
	}
}

// pauseQueue pauses the bundle's queue (ns.<database>, as tasks.QueueFor names it), so that workers take no more of
// its tasks, and returns its name.
func pauseQueue(t *testing.T, in *asynq.Inspector, ns string) string {
	t.Helper()
	queues, err := in.Queues()
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range queues {
		if strings.HasPrefix(q, ns+".") {
			if err := in.PauseQueue(q); err != nil {
				t.Fatal(err)
			}
			return q
		}
	}
	t.Fatalf("no queue of %s among %q", ns, queues)
	return ""
}

// waitQueue waits until queue's state is what done asks for, as the tests' next step needs, for a minute at most.
func waitQueue(t *testing.T, in *asynq.Inspector, queue, what string, done func(*asynq.QueueInfo) bool) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(time.Millisecond) {
		if info, err := in.GetQueueInfo(queue); err == nil && done(info) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited a minute for %s on %s", what, queue)
		}
	}
}

// flushRun deletes the keys that match the patterns in one script, so that nothing runs between the deletes, as
// FLUSHDB deletes a database at once.
func flushRun(t *testing.T, rdb *redis.Client, patterns ...string) error {
	return redis.NewScript(`for _, p in ipairs(ARGV) do
	for _, k in ipairs(redis.call('KEYS', p)) do redis.call('DEL', k) end
end
return 0`).Run(t.Context(), rdb, nil, patterns).Err()
}

// waitOutcomes waits until the run has recorded at least n task outcomes, and fails the test after within.
func waitOutcomes(t *testing.T, b *testBundle, runID string, n int, within time.Duration) {
	t.Helper()
	for deadline := time.Now().Add(within); ; time.Sleep(time.Millisecond) {
		if done, err := b.ledger.Finished(t.Context(), runID); err == nil && done[0].Tasks+done[1].Tasks >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("run %s recorded fewer than %d outcomes in %s", runID, n, within)
		}
	}
}
