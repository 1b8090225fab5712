package worker

import (
	"strings"
	"testing"
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
