package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"regexp"
	"strings"
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
		{[]string{"extra"}, `usage error: unexpected argument "extra"`},
		{[]string{"--read-only=maybe"}, "usage error: invalid boolean value"},
		{[]string{"--redis", "http://nowhere"}, "the Redis URL cannot be parsed"},
		{[]string{"--redis", "redis://:hunter2@127.0.0.1:1/0"}, "cannot reach Redis at 127.0.0.1:1"},
		{[]string{"--addr", "256.0.0.1:80"}, "monitor address"},
	} {
		var stderr bytes.Buffer
		code := run(context.Background(), tc.args, &stderr)
		if code != cli.ExitError || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", tc.args, code, stderr.String(), tc.want)
		}
		if strings.Contains(stderr.String(), "hunter2") {
			t.Errorf("%v: stderr shows the password: %q", tc.args, stderr.String())
		}
	}
}

// TestServesUntilCancelled starts the real command, reads the queue list from its API, and stops it the way SIGTERM
// does, through its context.
func TestServesUntilCancelled(t *testing.T) {
	t.Parallel()
	ns := testenv.Namespace(t)
	testenv.Redis(t, ns)
	ctx, cancel := context.WithCancel(context.Background())
	var stderr testenv.Buffer
	done := make(chan int)
	go func() {
		done <- run(ctx, []string{"--redis", testenv.RedisURL(), "--addr", "127.0.0.1:0", "--read-only", "--log-format", "json"}, &stderr)
	}()
	var url string
	for deadline := time.Now().Add(30 * time.Second); url == ""; {
		if m := regexp.MustCompile(`"url":"(http://[^"]+)"`).FindStringSubmatch(stderr.String()); m != nil {
			url = m[1]
		} else if time.Now().After(deadline) {
			t.Fatalf("monitor did not start within 30 s:\n%s", stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	resp, err := http.Get(url + "api/queues")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(string(body), `{"queues":[`) {
		t.Errorf("GET %sapi/queues = %d %.100q, want the queue list", url, resp.StatusCode, body)
	}
	cancel()
	select {
	case code := <-done:
		if code != cli.ExitOK {
			t.Fatalf("exit %d, want 0\n%s", code, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("monitor did not stop within 30 s of cancellation")
	}
	if !strings.Contains(stderr.String(), `"read_only":true`) || !strings.Contains(stderr.String(), "monitor stopped") {
		t.Errorf("log lacks the start or stop line:\n%s", stderr.String())
	}
}
