package main

import (
	"bytes"
	"context"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"

	"hpnorton/internal/cli"
	"hpnorton/internal/testenv"
)

// TestBenchSmallRun builds the two commands and runs every mode once on small files: the command checks each
// mode's row counts itself, and prints a line per run and both ratios.
func TestBenchSmallRun(t *testing.T) {
	t.Parallel()
	ns := testenv.Namespace(t)
	testenv.Redis(t, ns) // removes the bench's keys, all named after ns, when the test ends
	testenv.MySQL(t, ns) // skips, or fails under HPNORTON_REQUIRE_SERVICES, without a server
	if _, err := exec.LookPath("mysqlimport"); err != nil {
		t.Fatal("mysqlimport is not installed; it comes with Debian's mariadb-client")
	}
	bin := filepath.Dir(testenv.Build(t, "enqueue", "worker"))
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"--bin", bin, "--rows", "300", "--runs", "1", "--redis", testenv.RedisURL(), "--prefix", ns}, &stdout, &stderr)
	if code != cli.ExitOK {
		t.Fatalf("exit %d\n%s%s", code, stdout.String(), stderr.String())
	}
	for _, want := range []string{
		`round 1  linear +[0-9.]+ s`, `round 1  parallel +[0-9.]+ s`, `round 1  mysqlimport +[0-9.]+ s`,
		`parallel vs linear: [0-9.]+×`, `parallel vs mysqlimport: [0-9.]+×`, `enqueue [0-9]+ MiB, worker1 [0-9]+ MiB`,
	} {
		if !regexp.MustCompile(want).MatchString(stdout.String()) {
			t.Errorf("output lacks %s:\n%s", want, stdout.String())
		}
	}
}

func TestMedian(t *testing.T) {
	t.Parallel()
	if got := median([]float64{3, 1, 2}); got != 2 {
		t.Errorf("median(3 1 2) = %v, want 2", got)
	}
	if got := median([]float64{4, 1, 3, 2}); got != 2.5 {
		t.Errorf("median(4 1 3 2) = %v, want 2.5", got)
	}
}
