// The command lines of the four commands, as a person types them: each kind of mistake, help and version, run as
// the built binaries, with the exit status, the stream and the first line checked; and the signals that end them.
package hpnorton_test

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"hpnorton/internal/testenv"
)

// TestMain gives back the Redis database this package's tests leased.
func TestMain(m *testing.M) { testenv.Main(m) }

// mistake is one command line and what it must give: the exit status, the stream that carries the answer (the
// other stays empty), and the answer's first line, matched whole.
type mistake struct {
	kind, cmd string
	args      []string
	env       []string // NAME=value
	status    int
	stream    string // stdout or stderr
	first     string // a regular expression for the first line
}

// mistakes has every kind of mistake for every command that can make it: gendata reads no environment variable
// and connects to nothing, and the monitor needs no MySQL.
var mistakes = func() []mistake {
	usage := func(cmd, msg string) string { return "^" + regexp.QuoteMeta(cmd+": usage error: "+msg) + "$" }
	const redisForm = "the Redis URL cannot be parsed; the expected form is redis://[:password@]host:port/db"
	const dsnForm = "the MySQL DSN cannot be parsed; the expected form is user:password@tcp(host:port)/database"
	m := []mistake{
		{"misspelt flag", "enqueue", []string{"--jsn"}, nil, 2, "stderr", usage("enqueue", "unknown flag --jsn; did you mean --json?")},
		{"misspelt flag", "worker", []string{"--concurency", "2"}, nil, 2, "stderr", usage("worker", "unknown flag --concurency; did you mean --concurrency?")},
		{"misspelt flag", "monitor", []string{"--read-onyl"}, nil, 2, "stderr", usage("monitor", "unknown flag --read-onyl; did you mean --read-only?")},
		{"misspelt flag", "gendata", []string{"-rwos", "5", "x"}, nil, 2, "stderr", usage("gendata", "unknown flag --rwos; did you mean --rows?")},
		{"bad value", "enqueue", []string{"--timeout", "5"}, nil, 2, "stderr", usage("enqueue", `--timeout "5": want a duration with its unit, such as 90s, 30m or 720h`)},
		{"bad value", "worker", []string{"--concurrency=four"}, nil, 2, "stderr", usage("worker", `--concurrency "four": want a whole number`)},
		{"bad value", "monitor", []string{"--read-only=maybe"}, nil, 2, "stderr", usage("monitor", `--read-only "maybe": want true or false`)},
		{"bad value", "gendata", []string{"--rows", "0", "x"}, nil, 2, "stderr", usage("gendata", "--rows: must be from 1 to 10,000,000, got 0")},
		{"bad env value", "enqueue", nil, []string{"HPNORTON_KEEP_RESULTS=5"}, 2, "stderr", usage("enqueue", `HPNORTON_KEEP_RESULTS="5": want a duration with its unit, such as 90s, 30m or 720h`)},
		{"bad env value", "worker", nil, []string{"HPNORTON_CONCURRENCY=0"}, 2, "stderr", usage("worker", "HPNORTON_CONCURRENCY: must be 1 to 64, got 0")},
		{"bad env value", "monitor", nil, []string{"HPNORTON_MONITOR_READ_ONLY=maybe"}, 2, "stderr", usage("monitor", `HPNORTON_MONITOR_READ_ONLY="maybe": want true or false`)},
		{"bad env value", "worker", nil, []string{"HPNORTON_LOG_FORMAT=xml"}, 2, "stderr", usage("worker", `HPNORTON_LOG_FORMAT: "xml": want text or json`)},
		{"missing argument", "enqueue", []string{"--rejects"}, nil, 2, "stderr", usage("enqueue", "--rejects needs a value: --rejects file")},
		{"missing argument", "worker", []string{"--ops"}, nil, 2, "stderr", usage("worker", "--ops needs a value: --ops address")},
		{"missing argument", "monitor", []string{"--addr"}, nil, 2, "stderr", usage("monitor", "--addr needs a value: --addr address")},
		{"missing argument", "gendata", nil, nil, 2, "stderr", usage("gendata", "missing DIR: the folder to write customers.csv and products.csv to")},
		{"bad DSN", "enqueue", []string{"--mysql", "root:s3cret@tcp(db"}, nil, 2, "stderr", usage("enqueue", "--mysql: "+dsnForm)},
		{"bad DSN", "worker", nil, []string{"HPNORTON_MYSQL_DSN=root:s3cret@tcp(db"}, 2, "stderr", usage("worker", "HPNORTON_MYSQL_DSN: "+dsnForm)},
		{"two ways at once", "enqueue", []string{"--list", "--cancel", "x"}, nil, 2, "stderr", usage("enqueue", "--list, --cancel and --resume each do a thing of their own; give one of them")},
		{"extra argument", "enqueue", []string{"--list", "testdata"}, nil, 2, "stderr", usage("enqueue", `--list and --cancel take no folder, got "testdata"`)},
		{"bad address", "monitor", []string{"--addr", "nohost"}, nil, 2, "stderr", usage("monitor", `--addr: "nohost": want host:port, such as 127.0.0.1:8080`)},
		{"bad address from the environment", "worker", nil, []string{"HPNORTON_OPS=bad"}, 2, "stderr", usage("worker", `HPNORTON_OPS: "bad": want host:port, such as 127.0.0.1:8080`)},
		{"bad queue name", "enqueue", []string{"--queue", "a b"}, nil, 2, "stderr", usage("enqueue", `--queue: "a b": want a name of letters, digits, '.', '_', '-' or ':'`)},
		{"empty queue name", "worker", nil, []string{"HPNORTON_QUEUE= "}, 2, "stderr", usage("worker", `HPNORTON_QUEUE: " ": want a name of letters, digits, '.', '_', '-' or ':'`)},
		{"error as a JSON record", "enqueue", []string{"--log-format", "json", "--redis", "redis://127.0.0.1:1/0"}, nil, 2, "stderr",
			`^\{"time":"[^"]+","level":"ERROR","msg":"error: cannot reach Redis at 127\.0\.0\.1:1 \(db 0\): .*","command":"enqueue","exit_status":2\}$`},
	}
	for _, cmd := range []string{"enqueue", "worker", "monitor", "gendata"} {
		m = append(m,
			mistake{"unknown flag", cmd, []string{"--no-such-flag"}, nil, 2, "stderr", usage(cmd, "unknown flag --no-such-flag")},
			mistake{"--help", cmd, []string{"--help"}, nil, 0, "stdout", "^Usage: " + cmd + " "},
			mistake{"-h", cmd, []string{"-h"}, nil, 0, "stdout", "^Usage: " + cmd + " "},
			mistake{"--version", cmd, []string{"--version"}, nil, 0, "stdout", "^" + cmd + ` \(hpnorton\) \S+(, commit [0-9a-f]+( with uncommitted changes)?)?, go\d`},
		)
		if cmd != "gendata" {
			m = append(m,
				mistake{"bad URL", cmd, []string{"--redis", "http://:s3cret@x"}, nil, 2, "stderr", usage(cmd, "--redis: "+redisForm)},
				mistake{"bad URL from the environment", cmd, nil, []string{"HPNORTON_REDIS_URL=redis://:s3cret@[::1"}, 2, "stderr", usage(cmd, "HPNORTON_REDIS_URL: "+redisForm)},
			)
		}
	}
	return m
}()

// TestCommandLineMistakes runs each built command with each kind of mistake, with --help, -h and --version. A usage
// error is one line and a pointer to --help on stderr, with nothing on stdout; help and version go to stdout, with
// nothing on stderr. No password shows.
func TestCommandLineMistakes(t *testing.T) {
	t.Parallel()
	bin := filepath.Dir(testenv.Build(t, "enqueue", "worker", "monitor", "gendata"))
	for _, tc := range mistakes {
		t.Run(tc.cmd+"/"+tc.kind, func(t *testing.T) {
			t.Parallel()
			cmd := exec.CommandContext(t.Context(), filepath.Join(bin, tc.cmd), tc.args...)
			cmd.Dir = t.TempDir() // gendata's folder, had it run
			cmd.Env = append(cleanEnv(), tc.env...)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			var exit *exec.ExitError
			if err != nil && !errors.As(err, &exit) {
				t.Fatal(err)
			}
			answer, other := stdout.String(), stderr.String()
			if tc.stream == "stderr" {
				answer, other = other, answer
			}
			first, rest, _ := strings.Cut(answer, "\n")
			if code := cmd.ProcessState.ExitCode(); code != tc.status || other != "" || !regexp.MustCompile(tc.first).MatchString(first) {
				t.Errorf("%s %q %q: exit %d, %s:\n%s\nother stream:\n%s\nwant exit %d, and on %s only, a first line matching %s",
					tc.cmd, tc.env, tc.args, code, tc.stream, answer, other, tc.status, tc.stream, tc.first)
			}
			if strings.Contains(first, "usage error: ") && rest != "Run '"+tc.cmd+" --help' for usage.\n" {
				t.Errorf("after the usage error: %q, want one line pointing at --help", rest)
			}
			if strings.Contains(answer, "s3cret") {
				t.Errorf("the output shows the password:\n%s", answer)
			}
		})
	}
}

// cleanEnv is the environment without hpnorton's own variables, which the machine running the tests may set.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "HPNORTON_") {
			env = append(env, kv)
		}
	}
	return env
}

// TestSignals: Ctrl-C ends enqueue with status 130 and SIGTERM with 143, saying that no worker serves the
// database; a worker stopped either way finishes its tasks and exits 0, its normal end.
func TestSignals(t *testing.T) {
	t.Parallel()
	bin := filepath.Dir(testenv.Build(t, "enqueue", "worker"))
	for _, tc := range []struct {
		cmd    string
		sig    syscall.Signal
		status int
	}{
		{"enqueue", syscall.SIGINT, 130},
		{"enqueue", syscall.SIGTERM, 143},
		{"worker", syscall.SIGINT, 0},
		{"worker", syscall.SIGTERM, 0},
	} {
		t.Run(tc.cmd+"/"+tc.sig.String(), func(t *testing.T) {
			t.Parallel()
			ns := testenv.Namespace(t)
			rdb := testenv.Redis(t, ns)
			args := []string{"--redis", testenv.RedisURL(), "--mysql", testenv.MySQL(t, ns), "--queue", ns}
			// No worker serves the enqueuer's queue: it waits once both its tasks are pending.
			ready := func(string) bool {
				keys := rdb.Keys(t.Context(), "asynq:{"+ns+".*}:pending").Val()
				return len(keys) == 1 && rdb.LLen(t.Context(), keys[0]).Val() == 2
			}
			if tc.cmd == "enqueue" {
				args = append(args, "--run-id", ns, "--timeout", "2m", "testdata")
			} else {
				ready = func(stderr string) bool { return strings.Contains(stderr, "worker started") }
			}
			cmd := exec.Command(filepath.Join(bin, tc.cmd), args...)
			cmd.Env = cleanEnv()
			var stderr testenv.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer cmd.Process.Kill()
			for deadline := time.Now().Add(time.Minute); !ready(stderr.String()); time.Sleep(10 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatalf("%s not ready within a minute:\n%s", tc.cmd, stderr.String())
				}
			}
			if err := cmd.Process.Signal(tc.sig); err != nil {
				t.Fatal(err)
			}
			_ = cmd.Wait() // the status is what is checked
			last := strings.TrimSpace(stderr.String())
			last = last[strings.LastIndex(last, "\n")+1:]
			wantLast := regexp.MustCompile(`worker stopped`)
			if tc.cmd == "enqueue" {
				// Both tasks pending may come a moment before each reader marks its file sent.
				wantLast = regexp.MustCompile(`^enqueue: error: interrupted \(customers (1 task waiting|still being enqueued), products (1 task waiting|still being enqueued)\); no worker serves database `)
			}
			if code := cmd.ProcessState.ExitCode(); code != tc.status || !wantLast.MatchString(last) {
				t.Errorf("%s after %s: exit %d, last line %q; want %d and %q", tc.cmd, tc.sig, code, last, tc.status, wantLast)
			}
		})
	}
}
