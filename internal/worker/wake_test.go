package worker

import (
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"hpnorton/internal/ledger"
	"hpnorton/internal/record"
	"hpnorton/internal/testenv"
	"hpnorton/tasks"
)

// startIdle starts a worker of its own on ns's queue and database that waits poll between looks, and returns it
// once it is idle: its hook has seen asynq's second look, which found the first empty and now waits.
func startIdle(t *testing.T, ns string, h *handler, poll time.Duration) *Worker {
	t.Helper()
	w, err := Start(testenv.Redis(t, ns), h.db, Config{Concurrency: 2, Queue: ns, Name: ns + "-worker", PollInterval: poll})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Shutdown)
	deadline := time.Now().Add(30 * time.Second) // only a guard: the looks come within milliseconds
	for w.wake.looks.Load() < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("the hook saw %d of asynq's looks at the queue; it no longer knows asynq's dequeue script", w.wake.looks.Load())
		}
		time.Sleep(time.Millisecond)
	}
	return w
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
// once, and stops at once when told to.
func TestAnnouncedTaskWakesIdleWorker(t *testing.T) {
	t.Parallel()
	ns, h, runNo := handlerRun(t)
	startIdle(t, ns, h, time.Hour)
	sendTask(t, ns, h, runNo)
	if err := h.ledger.Announce(t.Context(), tasks.QueueFor(ns, h.db.ID)); err != nil {
		t.Fatal(err)
	}
	waitDone(t, h.ledger, ns, 30*time.Second)
}

// TestUnannouncedTaskIsFoundAtTheNextLook: a task that nobody announces, as a retry is, waits for the next look.
func TestUnannouncedTaskIsFoundAtTheNextLook(t *testing.T) {
	t.Parallel()
	ns, h, runNo := handlerRun(t)
	startIdle(t, ns, h, 20*time.Millisecond)
	sendTask(t, ns, h, runNo)
	waitDone(t, h.ledger, ns, 30*time.Second)
}
