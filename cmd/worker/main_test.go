package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"hpnorton/internal/cli"
	"hpnorton/internal/testenv"
)

func TestRejectsBadFlags(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--concurrency", "0"}, "--concurrency: must be 1 to 64, got 0"},
		{[]string{"--concurrency", "-3"}, "--concurrency: must be 1 to 64, got -3"},
		{[]string{"--concurrency", "10000"}, "--concurrency: must be 1 to 64, got 10000"},
		{[]string{"--poll", "0s"}, "--poll: must be at least 1ms, got 0s"},
		{[]string{"--poll", "999us"}, "--poll: must be at least 1ms, got 999µs"},
	} {
		args, want := tc.args, tc.want
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), args, &stdout, &stderr)
		if code != cli.ExitError || !strings.Contains(stderr.String(), "worker: usage error: "+want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and a usage error", args, code, stderr.String())
		}
	}
}

// TestRejectsBadEnvironment: a value from the environment that cannot be used is refused naming the variable,
// not the flag, and with the form it wants; the flag given on the command line wins over it.
func TestRejectsBadEnvironment(t *testing.T) {
	for _, tc := range []struct{ value, want string }{
		{"many", `worker: usage error: HPNORTON_CONCURRENCY="many": want a whole number`},
		{"0", "worker: usage error: HPNORTON_CONCURRENCY: must be 1 to 64, got 0"},
	} {
		t.Setenv("HPNORTON_CONCURRENCY", tc.value)
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), nil, &stdout, &stderr)
		if first, _, _ := strings.Cut(stderr.String(), "\n"); code != cli.ExitUsage || first != tc.want {
			t.Errorf("HPNORTON_CONCURRENCY=%s: exit %d, stderr %q; want 2 and %q", tc.value, code, stderr.String(), tc.want)
		}
		stderr.Reset()
		code = run(context.Background(), []string{"--concurrency", "0"}, &stdout, &stderr)
		if want := "worker: usage error: --concurrency: must be 1 to 64, got 0\n"; code != cli.ExitUsage || !strings.HasPrefix(stderr.String(), want) {
			t.Errorf("--concurrency 0 with HPNORTON_CONCURRENCY=%s: exit %d, stderr %q; want 2 and %q", tc.value, code, stderr.String(), want)
		}
	}
}

// TestServesUntilCancelled starts the real command and stops it the way SIGTERM does, through its context. It
// starts without --concurrency, which must give the documented parallel mode of 4 tasks at once.
func TestServesUntilCancelled(t *testing.T) {
	t.Parallel()
	ns := testenv.Namespace(t)
	testenv.Redis(t, ns)
	dsn := testenv.MySQL(t, ns)
	ctx, cancel := context.WithCancel(context.Background())
	var stderr testenv.Buffer
	done := make(chan int)
	go func() {
		done <- run(ctx, []string{"--redis", testenv.RedisURL(), "--mysql", dsn, "--queue", ns, "--ops", "127.0.0.1:0"}, io.Discard, &stderr)
	}()
	for deadline := time.Now().Add(30 * time.Second); !strings.Contains(stderr.String(), "worker started"); {
		if time.Now().After(deadline) {
			t.Fatalf("worker did not start within 30 s:\n%s", stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !regexp.MustCompile(`"worker started" .*concurrency=4 `).MatchString(stderr.String()) {
		t.Errorf("the worker's default concurrency is not 4:\n%s", stderr.String())
	}
	// The operations address serves the Go profiler…
	m := regexp.MustCompile(`pprof=(http://\S+)`).FindStringSubmatch(stderr.String())
	if m == nil {
		t.Fatalf("log names no pprof address:\n%s", stderr.String())
	}
	resp, err := http.Get(m[1] + "goroutine?debug=1")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "goroutine profile") {
		t.Errorf("GET %sgoroutine = %d %.100q, want the goroutine profile", m[1], resp.StatusCode, body)
	}
	// …but not the command line, which holds --mysql and --redis with their passwords.
	resp, err = http.Get(m[1] + "cmdline")
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound || strings.Contains(string(body), os.Args[0]) {
		t.Errorf("GET %scmdline = %d %.100q, want 404 and no command line", m[1], resp.StatusCode, body)
	}
	// And the Prometheus metrics.
	m = regexp.MustCompile(`metrics=(http://\S+)`).FindStringSubmatch(stderr.String())
	if m == nil {
		t.Fatalf("log names no metrics address:\n%s", stderr.String())
	}
	resp, err = http.Get(m[1])
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "go_goroutines") {
		t.Errorf("GET %s = %d %.100q, want Prometheus metrics", m[1], resp.StatusCode, body)
	}
	cancel()
	select {
	case code := <-done:
		if code != cli.ExitOK {
			t.Fatalf("exit %d, want 0\n%s", code, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("worker did not stop within 30 s of cancellation")
	}
	for _, want := range []string{"worker started", "write=load", "poll=500ms", "shutting down", "worker stopped"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, stderr.String())
		}
	}
}
