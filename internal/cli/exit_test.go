package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"syscall"
	"testing"

	"hpnorton/internal/coordinator"
)

// TestExitCode is the whole mapping from what a command returns to its exit status.
func TestExitCode(t *testing.T) {
	t.Parallel()
	interrupted, cancel := context.WithCancelCause(t.Context())
	cancel(&Signalled{Signal: os.Interrupt})
	terminated, cancel := context.WithCancelCause(t.Context())
	cancel(&Signalled{Signal: syscall.SIGTERM})
	plain, cancel := context.WithCancelCause(t.Context())
	cancel(nil)
	for _, tc := range []struct {
		name string
		ctx  context.Context
		err  error
		want int
	}{
		{"done", t.Context(), nil, 0},
		{"--help", t.Context(), flag.ErrHelp, 0},
		{"--version", t.Context(), ErrVersion, 0},
		{"usage error", t.Context(), &UsageError{Msg: "bad"}, 2},
		{"Redis down", t.Context(), errors.New("cannot reach Redis"), 2},
		{"a task failed for good", t.Context(), fmt.Errorf("%w: task x failed for good", coordinator.ErrStalled), 2},
		{"cancelled by enqueue --cancel", t.Context(), fmt.Errorf("%w: r1", coordinator.ErrCancelled), 3},
		{"timed out", t.Context(), fmt.Errorf("%w within 1h", coordinator.ErrTimedOut), 124},
		{"Ctrl-C", interrupted, errors.New("interrupted while waiting"), 130},
		{"SIGTERM", terminated, errors.New("interrupted while waiting"), 143},
		{"Ctrl-C after a timeout's error", interrupted, coordinator.ErrTimedOut, 130},
		{"a usage error, whatever the context", interrupted, &UsageError{Msg: "bad"}, 2},
		{"served until SIGTERM", terminated, nil, 0},
		{"cancelled, not by a signal", plain, context.Canceled, 2},
	} {
		if got := ExitCode(tc.ctx, tc.err); got != tc.want {
			t.Errorf("%s: ExitCode = %d, want %d", tc.name, got, tc.want)
		}
	}
}

// TestExitOutput: help and version go to stdout; an error is one line on stderr, and a usage error a second line
// that says where the usage is; with --log-format json, the error is one JSON log record.
func TestExitOutput(t *testing.T) {
	t.Parallel()
	newFS := func() *flag.FlagSet {
		fs := flag.NewFlagSet("prog", flag.ContinueOnError)
		var c Conn
		c.AddRedisFlags(fs)
		fs.Bool("json", false, "print JSON")
		return fs
	}
	for _, tc := range []struct {
		name           string
		args           []string
		err            error
		stdout, stderr string // the first lines
		lines          int    // of stderr
	}{
		{"--help", []string{"--help"}, nil, "Usage: prog [flags]", "", 0},
		{"-h", []string{"-h"}, nil, "Usage: prog [flags]", "", 0},
		{"--version", []string{"--version"}, nil, "prog (hpnorton) ", "", 0},
		{"misspelt flag", []string{"--jsn"}, nil, "", "prog: usage error: unknown flag --jsn; did you mean --json?", 2},
		{"plain error", nil, errors.New("Redis down"), "", "prog: error: Redis down", 1},
	} {
		fs := newFS()
		err := Parse(fs, tc.args)
		if tc.err != nil {
			err = tc.err
		}
		var stdout, stderr bytes.Buffer
		Exit(t.Context(), &stdout, &stderr, fs, "prog [flags]", err)
		out, _, _ := strings.Cut(stdout.String(), "\n")
		if !strings.HasPrefix(out, tc.stdout) || tc.stdout == "" && stdout.Len() > 0 {
			t.Errorf("%s: stdout %q, want it to start %q", tc.name, stdout.String(), tc.stdout)
		}
		lines := strings.Split(strings.TrimSuffix(stderr.String(), "\n"), "\n")
		if stderr.Len() == 0 {
			lines = nil
		}
		if len(lines) != tc.lines || tc.lines > 0 && lines[0] != tc.stderr {
			t.Errorf("%s: stderr %q, want %d lines starting %q", tc.name, stderr.String(), tc.lines, tc.stderr)
		}
		if tc.lines == 2 && lines[1] != "Run 'prog --help' for usage." {
			t.Errorf("%s: stderr's second line %q, want the pointer to --help", tc.name, lines[1])
		}
	}
	if help := helpOf(newFS()); !strings.Contains(help, "\n  --redis URL\n") || strings.Contains(help, "\n  -redis") {
		t.Errorf("help names flags with one dash, or lacks --redis URL:\n%s", help)
	}
	if v := Version("prog"); !strings.HasSuffix(v, ", "+runtime.Version()) {
		t.Errorf("Version = %q, want the Go release at its end", v)
	}
	for _, tc := range []struct {
		info *debug.BuildInfo
		want string
	}{
		{nil, "prog (hpnorton) (devel), "},
		{&debug.BuildInfo{Main: debug.Module{Version: "v1.2.3"}}, "prog (hpnorton) v1.2.3, "},
		{&debug.BuildInfo{Main: debug.Module{Version: "v0.0.0-20261207153342-9df960b1a2c3+dirty"}, Settings: []debug.BuildSetting{
			{Key: "vcs", Value: "git"}, {Key: "vcs.revision", Value: "9df960b1a2c3d4e5"}, {Key: "vcs.modified", Value: "true"}}},
			"prog (hpnorton) v0.0.0-20261207153342-9df960b1a2c3+dirty, commit 9df960b1a2c3d4e5 with uncommitted changes, "},
		{&debug.BuildInfo{Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "9df960b"}, {Key: "vcs.modified", Value: "false"}}},
			"prog (hpnorton) (devel), commit 9df960b, "},
	} {
		if got := versionOf("prog", tc.info); got != tc.want+runtime.Version() {
			t.Errorf("versionOf(%+v) = %q, want %q", tc.info, got, tc.want+runtime.Version())
		}
	}

	fs := newFS()
	err := Parse(fs, []string{"--log-format", "json", "--jsn"})
	var stdout, stderr bytes.Buffer
	code := Exit(t.Context(), &stdout, &stderr, fs, "prog", err)
	var rec map[string]any
	if jerr := json.Unmarshal(stderr.Bytes(), &rec); jerr != nil || code != ExitUsage || rec["level"] != "ERROR" ||
		rec["msg"] != "usage error: unknown flag --jsn; did you mean --json?" || rec["help"] != "Run 'prog --help' for usage." {
		t.Errorf("--log-format json: exit %d, stderr %q (%v); want 2 and one JSON record of the error", code, stderr.String(), jerr)
	}
}

func helpOf(fs *flag.FlagSet) string {
	var b bytes.Buffer
	Usage(&b, fs, "prog")
	return b.String()
}

// TestParseMistakes: each kind of mistake on the command line is one line that names the flag with two dashes and
// says what it wants.
func TestParseMistakes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--jsn"}, "unknown flag --jsn; did you mean --json?"},
		{[]string{"-jsn"}, "unknown flag --jsn; did you mean --json?"},
		{[]string{"--chunk"}, "unknown flag --chunk; did you mean --chunk-rows?"},
		{[]string{"--verison"}, "unknown flag --verison; did you mean --version?"},
		{[]string{"--zzzzzz"}, "unknown flag --zzzzzz"},
		{[]string{"--chunk-rows", "many"}, `--chunk-rows "many": want a whole number`},
		{[]string{"--timeout=5"}, `--timeout "5": want a duration with its unit, such as 90s, 30m or 720h`},
		{[]string{"--json=maybe"}, `--json "maybe": want true or false`},
		{[]string{"--rejects"}, "--rejects needs a value: --rejects FILE"},
	} {
		fs := flag.NewFlagSet("x", flag.ContinueOnError)
		fs.Bool("json", false, "")
		fs.Int("chunk-rows", 1, "")
		fs.Duration("timeout", 0, "")
		fs.String("rejects", "", "write to `FILE`")
		err := Parse(fs, tc.args)
		var uerr *UsageError
		if !errors.As(err, &uerr) || uerr.Msg != tc.want {
			t.Errorf("%q: %v, want the usage error %q", tc.args, err, tc.want)
		}
	}
}

// TestSibling: the hint names the worker where it is beside the running command, as bin/worker beside
// bin/enqueue, and by its bare name when there is none beside it.
func TestSibling(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "bin")
	if err := os.Mkdir(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bin, "worker"), nil, 0o755); err != nil {
		t.Fatal(err)
	}
	self := os.Args[0]
	t.Cleanup(func() { os.Args[0] = self })
	for _, tc := range []struct{ arg0, want string }{
		{filepath.Join(bin, "enqueue"), filepath.Join(bin, "worker")},
		{"enqueue", "worker"},
		{filepath.Join(t.TempDir(), "enqueue"), "worker"},
	} {
		os.Args[0] = tc.arg0
		if got := Sibling("worker"); got != tc.want {
			t.Errorf("run as %s: Sibling(worker) = %q, want %q", tc.arg0, got, tc.want)
		}
	}
	// Relative to the working folder, as make build leaves them: bin/enqueue gives bin/worker.
	t.Chdir(filepath.Dir(bin))
	os.Args[0] = "bin/enqueue"
	if got := Sibling("worker"); got != "bin/worker" {
		t.Errorf("run as bin/enqueue: Sibling(worker) = %q, want bin/worker", got)
	}
}

// TestJSONLogFromTheEnvironment: HPNORTON_LOG_FORMAT=json stands in for --log-format json, also for a mistake on the
// command line, which stops Parse before it reads the environment; a --log-format given beats it.
func TestJSONLogFromTheEnvironment(t *testing.T) {
	t.Setenv("HPNORTON_LOG_FORMAT", "json")
	for _, tc := range []struct {
		args []string
		json bool
	}{
		{[]string{"--jsn"}, true},
		{[]string{"--log-format", "text", "--jsn"}, false},
	} {
		fs := flag.NewFlagSet("prog", flag.ContinueOnError)
		var c Conn
		c.AddRedisFlags(fs)
		err := Parse(fs, tc.args)
		var stderr bytes.Buffer
		code := Exit(t.Context(), io.Discard, &stderr, fs, "prog", err)
		isJSON := json.Valid(stderr.Bytes())
		if code != ExitUsage || isJSON != tc.json {
			t.Errorf("%q with HPNORTON_LOG_FORMAT=json: exit %d, stderr %q; want %d and JSON %v", tc.args, code, stderr.String(), ExitUsage, tc.json)
		}
	}
}
