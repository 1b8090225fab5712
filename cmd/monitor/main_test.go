package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"hpnorton/internal/cli"
	"hpnorton/internal/testenv"
)

func TestRejectsBadUsage(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"extra"}, `usage error: unexpected argument "extra"; the monitor takes flags only`},
		{[]string{"--read-only=maybe"}, `usage error: --read-only "maybe": want true or false`},
		{[]string{"--redis", "http://nowhere"}, "the Redis URL cannot be parsed"},
		{[]string{"--redis", "redis://:hunter2@127.0.0.1:1/0"}, "cannot reach Redis at 127.0.0.1:1"},
		{[]string{"--addr", "256.0.0.1:80"}, "monitor address"},
	} {
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), tc.args, &stdout, &stderr)
		if code != cli.ExitError || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", tc.args, code, stderr.String(), tc.want)
		}
		if strings.Contains(stderr.String(), "hunter2") {
			t.Errorf("%v: stderr shows the password: %q", tc.args, stderr.String())
		}
	}
}

// startCommand runs the command on a free loopback port with the given flags, and returns its URL once it listens, its
// log, and stop, which cancels it as SIGTERM does and returns its exit status.
func startCommand(t *testing.T, flags ...string) (url string, stderr *testenv.Buffer, stop func() int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	stderr = &testenv.Buffer{}
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, append([]string{"--redis", testenv.RedisURL(), "--addr", "127.0.0.1:0", "--log-format", "json"}, flags...), io.Discard, stderr)
	}()
	stop = sync.OnceValue(func() int {
		cancel()
		select {
		case code := <-done:
			return code
		case <-time.After(30 * time.Second):
			t.Error("monitor did not stop within 30 s of cancellation")
			return -1
		}
	})
	for deadline := time.Now().Add(30 * time.Second); url == ""; {
		if m := regexp.MustCompile(`"url":"(http://[^"]+)"`).FindStringSubmatch(stderr.String()); m != nil {
			url = m[1]
		} else if time.Now().After(deadline) {
			stop()
			t.Fatalf("monitor did not start within 30 s:\n%s", stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return url, stderr, stop
}

// TestServesUntilCancelled starts the real command, reads the queue list from its API, and stops it the way SIGTERM
// does, through its context.
func TestServesUntilCancelled(t *testing.T) {
	t.Parallel()
	ns := testenv.Namespace(t)
	testenv.Redis(t, ns)
	url, stderr, stop := startCommand(t, "--read-only")
	status, body := testenv.FetchFromMonitor(t, func() *http.Request {
		req, err := http.NewRequest(http.MethodGet, url+"api/queues", nil)
		if err != nil {
			t.Fatal(err)
		}
		return req
	})
	if status != http.StatusOK || !strings.HasPrefix(string(body), `{"queues":[`) {
		t.Errorf("GET %sapi/queues = %d %.100q, want the queue list", url, status, body)
	}
	if code := stop(); code != cli.ExitOK {
		t.Fatalf("exit %d, want 0\n%s", code, stderr.String())
	}
	if !strings.Contains(stderr.String(), `"read_only":true`) || !strings.Contains(stderr.String(), "monitor stopped") {
		t.Errorf("log lacks the start or stop line:\n%s", stderr.String())
	}
}

// TestRefusesOtherSites runs the real command, read-write, and plays a hostile web page: a cross-site POST that
// would pause the queue, and a DNS-rebinding read with the attacker's host name. Both are refused, the queue stays
// unpaused, and the same requests from the monitor's own origin work.
func TestRefusesOtherSites(t *testing.T) {
	t.Parallel()
	ns := testenv.Namespace(t)
	rdb := testenv.Redis(t, ns)
	// A queue exists in Redis once it has held a task.
	if err := rdb.SAdd(t.Context(), "asynq:queues", ns).Err(); err != nil {
		t.Fatal(err)
	}
	url, _, stop := startCommand(t, "--allow-host", "monitor.example,published.example:9000")
	t.Cleanup(func() { stop() })
	host := strings.TrimSuffix(strings.TrimPrefix(url, "http://"), "/")
	_, port, _ := strings.Cut(host, ":")
	send := func(method, path, hostHeader, origin string) int {
		t.Helper()
		status, _ := testenv.FetchFromMonitor(t, func() *http.Request {
			req, err := http.NewRequest(method, url+path, strings.NewReader("{}"))
			if err != nil {
				t.Fatal(err)
			}
			req.Host = hostHeader
			req.Header.Set("Content-Type", "text/plain")
			if origin != "" {
				req.Header.Set("Origin", origin)
			}
			return req
		})
		return status
	}
	paused := func() bool {
		n, err := rdb.Exists(t.Context(), "asynq:{"+ns+"}:paused").Result() // asynq's base.PausedKey
		if err != nil {
			t.Fatal(err)
		}
		return n == 1
	}
	pause := "api/queues/" + ns + ":pause"
	for _, tc := range []struct {
		name, method, path, host, origin string
		want                             int
	}{
		{"cross-site POST", http.MethodPost, pause, host, "http://evil.example", http.StatusForbidden},
		{"rebinding read", http.MethodGet, "api/queues", "evil.example:" + port, "", http.StatusMisdirectedRequest},
		{"rebinding POST", http.MethodPost, pause, "evil.example:" + port, "http://evil.example:" + port, http.StatusMisdirectedRequest},
		{"a rebinding name on another port", http.MethodGet, "api/queues", "evil.example:1", "", http.StatusMisdirectedRequest},
		{"loopback on another port, as a published port gives it", http.MethodGet, "api/queues", "127.0.0.1:28080", "", http.StatusOK},
		{"own read", http.MethodGet, "api/queues", host, "", http.StatusOK},
		{"own read by localhost", http.MethodGet, "api/queues", "localhost:" + port, "", http.StatusOK},
		{"read through an allowed name", http.MethodGet, "api/queues", "monitor.example:" + port, "", http.StatusOK},
		{"an allowed name without a port, on any port", http.MethodGet, "api/queues", "monitor.example:28080", "", http.StatusOK},
		{"read through an allowed name and port", http.MethodGet, "api/queues", "published.example:9000", "", http.StatusOK},
		{"an allowed name on another port", http.MethodGet, "api/queues", "published.example:" + port, "", http.StatusMisdirectedRequest},
	} {
		if got := send(tc.method, tc.path, tc.host, tc.origin); got != tc.want {
			t.Errorf("%s: %s %s with Host %s, Origin %q = %d, want %d", tc.name, tc.method, tc.path, tc.host, tc.origin, got, tc.want)
		}
	}
	if paused() {
		t.Fatal("a refused request paused the queue")
	}
	if got := send(http.MethodPost, pause, host, "http://"+host); got/100 != 2 || !paused() {
		t.Errorf("the monitor's own POST = %d, paused %v; want success", got, paused())
	}
}
