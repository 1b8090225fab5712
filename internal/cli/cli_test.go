package cli

import (
	"bytes"
	"database/sql"
	"errors"
	"flag"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"hpnorton/internal/testenv"
)

func TestExitCode(t *testing.T) {
	t.Parallel()
	tests := []struct {
		err      error
		code     int
		msg      string
		se, help bool
	}{
		{nil, ExitOK, "", false, false},
		{flag.ErrHelp, ExitOK, "", false, true},
		{&UsageError{Msg: "bad"}, ExitError, "usage error: bad", false, true},
		{errors.New("Redis down"), ExitError, "error: Redis down", false, false},
	}
	for _, tt := range tests {
		code, msg := ExitCode(tt.err)
		if code != tt.code || msg != tt.msg || WantsUsage(tt.err) != tt.help {
			t.Errorf("ExitCode(%v) = %d, %q, usage %v; want %d, %q, %v", tt.err, code, msg, WantsUsage(tt.err), tt.code, tt.msg, tt.help)
		}
	}
}

func TestFlagsFromEnvironment(t *testing.T) {
	t.Setenv("HPNORTON_QUEUE", "from-env")
	t.Setenv("HPNORTON_N", "7")
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	var c Conn
	c.AddFlags(fs)
	n := fs.Int("n", 1, "")
	if err := EnvDefault(fs, "n", "HPNORTON_N"); err != nil {
		t.Fatal(err)
	}
	if err := Parse(fs, []string{"--redis", "redis://h:1/2"}); err != nil {
		t.Fatal(err)
	}
	if c.Queue != "from-env" || c.RedisURL != "redis://h:1/2" || c.MySQLDSN != DefaultMySQLDSN || *n != 7 {
		t.Errorf("conn %+v, n %d: want the queue from the environment, the flag's Redis, the default DSN and n 7", c, *n)
	}
	t.Setenv("HPNORTON_N", "seven")
	var uerr *UsageError
	if err := EnvDefault(fs, "n", "HPNORTON_N"); !errors.As(err, &uerr) || !strings.Contains(err.Error(), `HPNORTON_N="seven"`) {
		t.Errorf("EnvDefault(malformed) = %v, want a usage error naming the variable", err)
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
	if code, msg := ExitCode(err); code != ExitError || msg != "error: internal error, please report it: boom" {
		t.Errorf("Guard(panic) gives exit %d, %q", code, msg)
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
