package main

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"hpnorton/internal/coordinator"
	"hpnorton/internal/record"
)

// TestHeadline: the first line counts the run's tasks and the workers that took them, as such; a worker that
// served the queue and took none is not among them.
func TestHeadline(t *testing.T) {
	t.Parallel()
	rep := &coordinator.Report{RunID: "r1", ResultsKey: "hpnorton:results:r1", Mode: "parallel", Seconds: 0.051,
		Workers: []coordinator.WorkerUse{{Worker: "vm:1", Concurrency: 4, Tasks: 2}},
		Files:   []coordinator.File{{File: "customers.csv", Tasks: 1}, {File: "products.csv", Tasks: 1}}}
	if got, want := headline(rep), "run r1: parallel, 2 tasks taken by 1 worker, 0.051 s; results in Redis at hpnorton:results:r1"; got != want {
		t.Errorf("headline = %q, want %q", got, want)
	}
	rep.Workers, rep.Files, rep.Mode = nil, []coordinator.File{{File: "customers.csv"}, {File: "products.csv"}}, "linear"
	if got, want := headline(rep), "run r1: linear, no tasks, 0.051 s; results in Redis at hpnorton:results:r1"; got != want {
		t.Errorf("headline of a run of empty files = %q, want %q", got, want)
	}
}

// TestProblemsPointer: the text report lists 10 problems and says where the others are: in the --rejects file
// given, or how to write them all.
func TestProblemsPointer(t *testing.T) {
	t.Parallel()
	rep := &coordinator.Report{ProblemCount: 12}
	for i := range 12 {
		rep.Problems = append(rep.Problems, record.Problem{File: "customers.csv", Line: i + 2, Column: "user_id", Reason: "key is empty"})
	}
	for _, tc := range []struct{ rejects, want string }{
		{"", "  … and 2 more; --rejects FILE writes them all to FILE\n"},
		{"/tmp/r.csv", "  … and 2 more; /tmp/r.csv lists all 12\n"},
	} {
		var b bytes.Buffer
		printProblems(&b, rep, tc.rejects)
		if lines := strings.Split(b.String(), "\n"); len(lines) != 14 || !strings.HasSuffix(b.String(), tc.want) {
			t.Errorf("--rejects %q: %d lines, want 12 problems: 10 listed, then %q:\n%s", tc.rejects, len(lines)-2, tc.want, b.String())
		}
	}
}

// TestListEndsLinesCleanly: --list's lines end without spaces.
func TestListEndsLinesCleanly(t *testing.T) {
	t.Parallel()
	var runs []coordinator.RunInfo
	for i, state := range []string{coordinator.StateRunning, coordinator.StateFinished} {
		runs = append(runs, coordinator.RunInfo{RunID: fmt.Sprintf("20261127T23531%dZ_7e93daf8", i), State: state, StartedAt: time.Now(),
			Files: []coordinator.RunFile{{File: "customers.csv", Added: 14000, Present: 120000}, {File: "products.csv", Added: int64(i)}}})
	}
	var b bytes.Buffer
	if err := printRuns(&b, runs, false); err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n") {
		if strings.HasSuffix(line, " ") || len(line) > 80 {
			t.Errorf("a line ends in spaces or is over 80 columns: %q", line)
		}
	}
	if !strings.Contains(b.String(), "  0+0\n") || !strings.HasPrefix(b.String(), "run  ") {
		t.Errorf("--list lost its columns:\n%s", b.String())
	}
}
