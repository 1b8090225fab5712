package main

import (
	"bytes"
	"context"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"testing"
	"time"

	"hpnorton/internal/cli"
	"hpnorton/internal/testenv"
)

// benchEnv is a bench run's test setting: Redis keys and MySQL databases of the test's own, all named after ns, and
// the two commands built into bin.
type benchEnv struct {
	t       *testing.T
	ns, bin string
}

func newBenchEnv(t *testing.T) benchEnv {
	t.Helper()
	ns := testenv.Namespace(t)
	testenv.Redis(t, ns) // removes the bench's keys, all named after ns, when the test ends
	testenv.MySQL(t, ns) // skips, or fails under HPNORTON_REQUIRE_SERVICES, without a server
	return benchEnv{t: t, ns: ns, bin: filepath.Dir(testenv.Build(t, "enqueue", "worker"))}
}

// run runs the bench with args, on the setting's binaries, Redis and names, and returns what it printed; an exit
// other than success fails the test.
func (e benchEnv) run(args ...string) string {
	e.t.Helper()
	var stdout, stderr bytes.Buffer
	args = append([]string{"--bin", e.bin, "--redis", testenv.RedisURL(), "--prefix", e.ns}, args...)
	// The bench's commands die with this context: a run that hangs fails its test in minutes and leaves no process.
	ctx, cancel := context.WithTimeout(e.t.Context(), 5*time.Minute)
	defer cancel()
	if code := run(ctx, args, &stdout, &stderr); code != cli.ExitOK {
		e.t.Fatalf("exit %d\n%s%s", code, stdout.String(), stderr.String())
	}
	return stdout.String()
}

// TestBenchSmallRun builds the two commands and runs every mode once on small files: the command checks each
// mode's row counts itself, and prints a line per run, the ratios and each process's CPU-seconds.
func TestBenchSmallRun(t *testing.T) {
	t.Parallel()
	e := newBenchEnv(t)
	if _, err := exec.LookPath("mysqlimport"); err != nil {
		t.Fatal("mysqlimport is not installed; it comes with Debian's mariadb-client")
	}
	out := e.run("--rows", "300", "--runs", "1")
	for _, want := range []string{
		`round 1  linear +[0-9.]+ s`, `round 1  parallel +[0-9.]+ s`, `round 1  mysqlimport +[0-9.]+ s`, `round 1  mysqlimport-threads +[0-9.]+ s`,
		`parallel vs linear: [0-9.]+×`, `parallel vs mysqlimport: [0-9.]+×`, `parallel vs mysqlimport-threads: [0-9.]+×`,
		// MariaDB's line is left out where mysqlimport's 300 rows cost it no CPU tick, so the times' line is the
		// one checked for the round-by-round ratio.
		`parallel vs linear: [0-9.]+× .*; round by round [0-9.]+× \([0-9.]+–[0-9.]+, 1 rounds\)`,
		`enqueue [0-9]+ MiB, worker1 [0-9]+ MiB`,
		// Every process's CPU, where each mode has it: the enqueuer, worker and ours only for our modes.
		`\nparallel +[0-9.]+ \([0-9.]+–[0-9.]+\) +[0-9.]+ \([0-9.]+–[0-9.]+\) +[0-9.]+ \([0-9.]+–[0-9.]+\) +[0-9.]+ \([0-9.]+–[0-9.]+\) +- +[0-9.]+ \(`,
		`\nmysqlimport +- +- +[0-9.]+ \([0-9.]+–[0-9.]+\) +[0-9.]+ \([0-9.]+–[0-9.]+\) +[0-9.]+ \([0-9.]+–[0-9.]+\) +- +-\n`,
	} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("output lacks %s:\n%s", want, out)
		}
	}
}

// TestByRound checks the round-by-round ratio against one worked out by hand, where it differs from the ratio of
// the medians: the rounds' ratios are 5, 2, 4, 3 and 1, whose median is 3; the medians give 5 / 1.
func TestByRound(t *testing.T) {
	t.Parallel()
	num, den := []float64{5, 2, 8, 9, 1}, []float64{1, 1, 2, 3, 1}
	if got, want := byRound(num, den), "; round by round 3.00× (1.00–5.00, 5 rounds)"; got != want {
		t.Errorf("byRound = %q, want %q", got, want)
	}
	for _, bad := range [][2][]float64{{num, den[:2]}, {num, {1, 1, 0, 3, 1}}, {nil, nil}} {
		if got := byRound(bad[0], bad[1]); got != "" {
			t.Errorf("byRound(%v, %v) = %q, want nothing", bad[0], bad[1], got)
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

// TestBenchReimport runs the re-import mode on files with repeated keys, beside linear and parallel mode, with the
// same binaries standing in for an earlier version: the command checks that each run stored every distinct key,
// and prints the re-import's ratio, each mode's now against before, and each mode's workers, the earlier
// version's linear mode being one worker at concurrency 1 too.
func TestBenchReimport(t *testing.T) {
	t.Parallel()
	e := newBenchEnv(t)
	out := e.run("--before", e.bin, "--modes", "linear,parallel,reimport", "--rows", "300", "--repeat-every", "10", "--runs", "1")
	for _, want := range []string{
		`2 × 300 rows \(270 distinct keys each\)`, `round 1  reimport@before +[0-9.]+ s`,
		`reimport vs parallel: [0-9.]+× the time of a fresh import`, `reimport now vs before: [0-9.]+× the time`,
		// An earlier version's linear mode is linear too: one worker at concurrency 1.
		`\nlinear +1 × 1 `, `\nlinear@before +1 × 1 `, `\nparallel@before +1 × 4 `,
	} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("output lacks %s:\n%s", want, out)
		}
	}
}

// TestBenchUpdate runs the update modes over 300 stored rows, 30 of them changed, into tables that hold 200 more:
// the command checks that each table then holds exactly the 30 changed rows, and that enqueue --update counted 30
// updated.
func TestBenchUpdate(t *testing.T) {
	t.Parallel()
	e := newBenchEnv(t)
	out := e.run("--modes", "parallel,update,mysqlimport-replace", "--rows", "300", "--stored", "200", "--runs", "2")
	for _, want := range []string{
		`round 2  update +[0-9.]+ s`, `round 2  mysqlimport-replace +[0-9.]+ s`,
		`update vs parallel: [0-9.]+× the time of a fresh import .*; round by round`,
		`update vs mysqlimport-replace: [0-9.]+× the time of mysqlimport --replace`,
	} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("output lacks %s:\n%s", want, out)
		}
	}
}

func TestTurns(t *testing.T) {
	t.Parallel()
	modes := []string{"a", "b", "c"}
	for round, want := range [][]string{{"a", "b", "c"}, {"c", "b", "a"}, {"a", "b", "c"}, {"c", "b", "a"}} {
		if got := turns(modes, round+1); !slices.Equal(got, want) {
			t.Errorf("turns(round %d) = %v, want %v", round+1, got, want)
		}
	}
	if !slices.Equal(modes, []string{"a", "b", "c"}) {
		t.Errorf("turns changed its argument: %v", modes)
	}
}

// TestBenchOnStoredRows runs the modes on tables that already hold rows, twice, so that the second round finds
// the first round's rows gone and the stored ones kept: the command checks each run's tuples against the stored
// rows, and each table's rows by reading it.
func TestBenchOnStoredRows(t *testing.T) {
	t.Parallel()
	e := newBenchEnv(t)
	out := e.run("--rows", "300", "--runs", "2", "--stored", "1000", "--modes", "parallel,reimport,mysqlimport")
	for _, want := range []string{`round 2  parallel +[0-9.]+ s`, `round 2  reimport +[0-9.]+ s`, `round 2  mysqlimport +[0-9.]+ s`} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("output lacks %s:\n%s", want, out)
		}
	}
}

// TestStoredLevels: --stored takes a rising list with --sizes only, and refuses anything else before it touches a
// server.
func TestStoredLevels(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"--stored", "1000,0", "--sizes", "10"},
		{"--stored", "5,1"},
		{"--stored", "1000,1000", "--sizes", "10"},
		{"--stored", "0,1000"},
		{"--stored", "-1"},
		{"--stored", "many"},
	} {
		var stdout, stderr bytes.Buffer
		args = append(args, "--mysql", "nobody@tcp(127.0.0.1:1)/", "--redis", "redis://127.0.0.1:1")
		code := run(t.Context(), args, &stdout, &stderr)
		if code != cli.ExitUsage || !regexp.MustCompile(`usage error: --stored.*\nRun 'bench --help' for usage\.\n$`).MatchString(stderr.String()) {
			t.Errorf("%q: exit %d, %s; want a usage error that names --stored", args, code, stderr.String())
		}
	}
}
