package worker

import (
	"fmt"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"hpnorton/internal/ledger"
	"hpnorton/internal/record"
	"hpnorton/internal/testenv"
	"hpnorton/tasks"
)

// startIdle starts a worker of its own on ns's queue and database that waits poll between looks, and returns it
// once it is idle: one of asynq's looks, after one that found the queue empty, waits for an announcement.
func startIdle(t *testing.T, ns string, h *handler, poll time.Duration) *Worker {
	t.Helper()
	w, err := Start(testenv.Redis(t, ns), h.db, Config{Concurrency: 2, Queue: ns, Name: ns + "-worker", PollInterval: poll})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Shutdown)
	waitIdle(t, w)
	return w
}

// waitIdle returns once one of w's looks waits for an announcement.
func waitIdle(t *testing.T, w *Worker) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second) // only a guard: the looks come within milliseconds
	for w.wake.waits.Load() < 1 {
		if time.Now().After(deadline) {
			t.Fatalf("no look waited; the hook saw %d of asynq's looks at the queue (none: it no longer knows asynq's dequeue script)", w.wake.looks.Load())
		}
		time.Sleep(time.Millisecond)
	}
}

// sendTask queues a one-row customers task of the run ns, as the enqueuer does but for the announcement.
func sendTask(t *testing.T, ns string, h *handler, runNo uint64) {
	t.Helper()
	rows := []byte("C1\tZoë\t1 Main St\t02134\t555\tz@example.com\n")
	p := tasks.ImportPayload{DB: h.db.ID, RunID: ns, RunNo: runNo, File: "customers.csv", FirstLine: 2, Rows: 1, Bytes: len(rows)}
	task, err := tasks.NewCustomerImportTask(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.ledger.PutRows(t.Context(), ns, p.TaskID(record.Customers), rows); err != nil {
		t.Fatal(err)
	}
	client := asynq.NewClientFromRedisClient(testenv.Redis(t, ns))
	defer client.Close()
	if _, err := client.EnqueueContext(t.Context(), task, asynq.Queue(tasks.QueueFor(ns, h.db.ID))); err != nil {
		t.Fatal(err)
	}
}

// waitDone waits for the run's one task to record its outcome, and fails the test if it has not within limit.
func waitDone(t *testing.T, l *ledger.Ledger, ns string, limit time.Duration) {
	t.Helper()
	woke, err := l.Wait(t.Context(), ns, limit)
	if err != nil {
		t.Fatal(err)
	}
	if !woke {
		t.Fatalf("the task was not done within %s", limit)
	}
}

// TestAnnouncedTaskWakesIdleWorker: a worker that would not look again for an hour takes an announced task at
// once. Its Shutdown, when the test ends, does not wait out that hour either (the test would time out), and a
// second Shutdown does nothing.
func TestAnnouncedTaskWakesIdleWorker(t *testing.T) {
	t.Parallel()
	ns, h, runNo := handlerRun(t)
	w := startIdle(t, ns, h, time.Hour)
	sendTask(t, ns, h, runNo)
	if err := h.ledger.Announce(t.Context(), tasks.QueueFor(ns, h.db.ID)); err != nil {
		t.Fatal(err)
	}
	waitDone(t, h.ledger, ns, 30*time.Second)
	w.Shutdown()
}

// TestUnannouncedTaskIsFoundAtTheNextLook: a task that nobody announces, as a retry is, waits for the next look.
func TestUnannouncedTaskIsFoundAtTheNextLook(t *testing.T) {
	t.Parallel()
	ns, h, runNo := handlerRun(t)
	startIdle(t, ns, h, 20*time.Millisecond)
	sendTask(t, ns, h, runNo)
	waitDone(t, h.ledger, ns, 30*time.Second)
}

// TestWorkersSharingAClient: two workers on one Redis client and queue, idle, each with an hour between looks. One
// stops without waiting out the other's hour, and the other still takes an announced task at once.
func TestWorkersSharingAClient(t *testing.T) {
	t.Parallel()
	ns, h, runNo := handlerRun(t)
	rdb := testenv.Redis(t, ns)
	var ws [2]*Worker
	for i := range ws {
		w, err := Start(rdb, h.db, Config{Concurrency: 1, Queue: ns, Name: fmt.Sprintf("%s-worker-%d", ns, i), PollInterval: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(w.Shutdown)
		ws[i] = w
	}
	for _, w := range ws {
		waitIdle(t, w)
	}
	ws[0].Shutdown()
	sendTask(t, ns, h, runNo)
	if err := h.ledger.Announce(t.Context(), tasks.QueueFor(ns, h.db.ID)); err != nil {
		t.Fatal(err)
	}
	waitDone(t, h.ledger, ns, 30*time.Second)
}
