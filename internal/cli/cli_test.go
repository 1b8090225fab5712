package cli

import (
	"bytes"
	"errors"
	"flag"
	"strings"
	"testing"
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
