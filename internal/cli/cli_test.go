package cli

import (
	"bytes"
	"database/sql"
	"errors"
	"flag"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"hpnorton/internal/testenv"
)

// TestFlagsFromEnvironment: an environment variable named in a flag's usage sets the flag when the command line
// does not; the command line wins; a bad value names the variable and the form wanted.
func TestFlagsFromEnvironment(t *testing.T) {
	t.Setenv("HPNORTON_QUEUE", "from-env")
	t.Setenv("HPNORTON_REDIS_URL", "redis://from-env:1/0")
	t.Setenv("HPNORTON_N", "7")
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	var c Conn
	c.AddFlags(fs)
	n := fs.Int("n", 1, "a number (env HPNORTON_N)")
	if err := Parse(fs, []string{"--redis", "redis://h:1/2"}); err != nil {
		t.Fatal(err)
	}
	if c.Queue != "from-env" || c.RedisURL != "redis://h:1/2" || c.MySQLDSN != DefaultMySQLDSN || *n != 7 {
		t.Errorf("conn %+v, n %d: want the queue from the environment, the flag's Redis, the default DSN and n 7", c, *n)
	}
	if err := Invalid(fs, "n", "must be 8"); err.Msg != "HPNORTON_N: must be 8" {
		t.Errorf("Invalid(n from the environment) = %q, want it to name the variable", err.Msg)
	}
	if err := Invalid(fs, "redis", "bad"); err.Msg != "--redis: bad" {
		t.Errorf("Invalid(redis from the command line) = %q, want it to name the flag", err.Msg)
	}
	t.Setenv("HPNORTON_N", "seven")
	fs = flag.NewFlagSet("x", flag.ContinueOnError)
	fs.Int("n", 1, "a number (env HPNORTON_N)")
	var uerr *UsageError
	if err := Parse(fs, nil); !errors.As(err, &uerr) || err.Error() != `HPNORTON_N="seven": want a whole number` {
		t.Errorf("Parse with HPNORTON_N=seven = %v, want a usage error naming the variable and the form", err)
	}
}

func TestNewLogger(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	log, err := NewLogger(&b, "json")
	if err != nil {
		t.Fatal(err)
	}
	log.Info("hello", "k", 1)
	if !strings.HasPrefix(b.String(), "{") || !strings.Contains(b.String(), `"msg":"hello"`) {
		t.Errorf("json log line = %q", b.String())
	}
	if _, err := NewLogger(&b, "xml"); err == nil {
		t.Error("NewLogger(xml) succeeded, want a usage error")
	}
}

func TestGuard(t *testing.T) {
	t.Parallel()
	err := Guard(func() error { panic("boom") })
	if code := ExitCode(t.Context(), err); code != ExitError || err.Error() != "internal error, please report it: boom" {
		t.Errorf("Guard(panic) gives exit %d, %q", code, err)
	}
	want := errors.New("plain")
	if err := Guard(func() error { return want }); err != want {
		t.Errorf("Guard(error) = %v, want the error itself", err)
	}
}

// TestDriverMessagesReachTheLogger: after RouteDriverLogs, what the Redis and MySQL clients log themselves, such as
// a failed dial, goes to the command's logger, without the passwords of the URL and DSN. It changes the process's
// driver loggers, so it does not run in parallel, and puts them back.
func TestDriverMessagesReachTheLogger(t *testing.T) {
	t.Cleanup(func() {
		routeDrivers.Store(false)
		driverLog.Store(nil)
	})
	RouteDriverLogs()
	var buf testenv.Buffer
	if _, err := NewLogger(&buf, "text"); err != nil {
		t.Fatal(err)
	}
	// A server that hangs up at once makes the MySQL driver log "unexpected EOF"; once it is gone, a dial to its
	// port makes go-redis log "failed to dial".
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	db, err := sql.Open("mysql", "root:s3cret-mysql@tcp("+addr+")/x?timeout=5s")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if db.Ping() == nil {
		t.Fatal("a server that hangs up answered the ping")
	}
	ln.Close()
	rdb := redis.NewClient(&redis.Options{Addr: addr, Password: "s3cret-redis", MaxRetries: -1})
	defer rdb.Close()
	if rdb.Ping(t.Context()).Err() == nil {
		t.Fatal("a closed port answered the ping")
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		got := buf.String()
		if strings.Contains(got, "level=WARN msg=\"mysql: ") && strings.Contains(got, "level=WARN msg=\"redis: ") {
			if strings.Contains(got, "s3cret") {
				t.Errorf("a driver message shows a password:\n%s", got)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the logger got no warning from both clients in 10 s:\n%s", got)
		}
	}
}

// TestParseFlagsAnywhere: flags before and after the arguments are parsed, and "--" ends them.
func TestParseFlagsAnywhere(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args       []string
		json       bool
		rejects    string
		positional []string
	}{
		{[]string{"testdata", "--json", "--rejects", "r.csv"}, true, "r.csv", []string{"testdata"}},
		{[]string{"--json", "testdata", "--rejects=r.csv"}, true, "r.csv", []string{"testdata"}},
		{[]string{"a", "b", "--json"}, true, "", []string{"a", "b"}},
		{[]string{"--json", "--", "--rejects", "x"}, true, "", []string{"--rejects", "x"}},
		{[]string{"a", "--", "-b"}, false, "", []string{"a", "-b"}},
		{nil, false, "", []string{}},
	} {
		fs := flag.NewFlagSet("x", flag.ContinueOnError)
		asJSON := fs.Bool("json", false, "")
		rejects := fs.String("rejects", "", "")
		if err := Parse(fs, tc.args); err != nil {
			t.Errorf("%q: %v", tc.args, err)
			continue
		}
		if *asJSON != tc.json || *rejects != tc.rejects || !slices.Equal(fs.Args(), tc.positional) {
			t.Errorf("%q: json %v, rejects %q, arguments %q; want %v, %q, %q", tc.args, *asJSON, *rejects, fs.Args(), tc.json, tc.rejects, tc.positional)
		}
	}
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	var ue *UsageError
	if err := Parse(fs, []string{"dir", "--no-such-flag"}); !errors.As(err, &ue) {
		t.Errorf("an unknown flag after an argument gives %v, want a usage error", err)
	}
	fs = flag.NewFlagSet("x", flag.ContinueOnError)
	n := fs.Int("n", 0, "")
	if err := Parse(fs, []string{"-n", "-3", "a"}); err != nil || *n != -3 || !slices.Equal(fs.Args(), []string{"a"}) {
		t.Errorf("-n -3 a: %v, n %d, arguments %q; want a negative value taken as the value", err, *n, fs.Args())
	}
}

// TestWorkerCommand: the hint's command names the same servers and queue, with every password masked, quoted for
// a shell.
func TestWorkerCommand(t *testing.T) {
	t.Parallel()
	c := Conn{RedisURL: "redis://:s3cret@redis.example:6380/2", MySQLDSN: "app:s3cret@tcp(db.example:3306)/imports", Queue: "nightly"}
	want := Sibling("worker") + " --redis 'redis://:xxxxx@redis.example:6380/2' --mysql 'app:xxxxx@tcp(db.example:3306)/imports' --queue 'nightly'"
	if got := c.WorkerCommand(); got != want {
		t.Errorf("WorkerCommand() = %q, want %q", got, want)
	}
	c = Conn{RedisURL: DefaultRedisURL, MySQLDSN: DefaultMySQLDSN, Queue: DefaultQueue}
	want = "worker --redis 'redis://127.0.0.1:6379/0' --mysql 'root@tcp(127.0.0.1:3306)/hpnorton' --queue 'hpnorton'"
	if Sibling("worker") != "worker" {
		t.Fatalf("Sibling(worker) = %q in a test binary, which has no worker beside it", Sibling("worker"))
	}
	if got := c.WorkerCommand(); got != want {
		t.Errorf("WorkerCommand() = %q, want %q", got, want)
	}
}
