package worker

import (
	"errors"
	"strings"
	"testing"
	"time"

	"hpnorton/internal/testenv"
	"hpnorton/repo"
)

// TestStartRefusesZeroConcurrency guards linear mode: asynq would silently turn 0 into the number of CPUs.
func TestStartRefusesZeroConcurrency(t *testing.T) {
	t.Parallel()
	for _, n := range []int{0, -1, MaxConcurrency + 1, 10000} {
		_, err := Start(nil, nil, Config{Concurrency: n, Queue: "q"})
		if err == nil || !strings.Contains(err.Error(), "concurrency must be 1 to 64") {
			t.Errorf("Start(concurrency %d) = %v, want a refusal", n, err)
		}
	}
	if _, err := Start(nil, nil, Config{Concurrency: 1}); err == nil {
		t.Error("Start without a queue succeeded, want an error")
	}
}

// TestPrunesExpiredRuns: a worker deletes the records of runs kept past their time on its own, with no run
// starting, and keeps the others.
func TestPrunesExpiredRuns(t *testing.T) {
	t.Parallel()
	ns := testenv.Namespace(t)
	rdb := testenv.Redis(t, ns)
	db, err := repo.Open(t.Context(), testenv.MySQL(t, ns))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.StartRun(t.Context(), ns+"-kept", time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, err := db.StartRun(t.Context(), ns+"-expiring", 200*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	w, err := Start(rdb, db, Config{Concurrency: 1, Queue: ns, PruneEvery: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Shutdown()
	for deadline := time.Now().Add(20 * time.Second); ; {
		_, err := db.StartRun(t.Context(), ns+"-expiring", time.Hour)
		if err == nil {
			break // the expiring run's ID is free again: its registration was pruned
		}
		if !errors.Is(err, repo.ErrRunExists) || time.Now().After(deadline) {
			t.Fatalf("the expired run is still registered 20 s on: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := db.StartRun(t.Context(), ns+"-kept", time.Hour); !errors.Is(err, repo.ErrRunExists) {
		t.Errorf("the kept run's ID = %v, want ErrRunExists: it was pruned before its time", err)
	}
}
