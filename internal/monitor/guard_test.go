package monitor

import (
	"errors"
	"net"
	"net/http"
	"os"
	"testing"

	"hpnorton/internal/testenv"
)

// serveGuarded serves the monitor behind Guard on a real listener at listen (an address with port 0), as
// cmd/monitor does, and returns a function that sends GET / to it with the given Host header. The page is the
// monitor's own, served by asynqmon behind the guard; /api/queues would also list the queues that the package's
// other tests make and remove meanwhile, and fail when one goes between the list and its read.
func serveGuarded(t *testing.T, listen string, extra ...string) (port string, get func(host string) int) {
	t.Helper()
	ns := testenv.Namespace(t)
	rdb := testenv.Redis(t, ns)
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		t.Fatal(err)
	}
	h := New(rdb.Options(), true)
	g, err := Guard(h, ln.Addr(), extra)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: g}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Error(err)
		}
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			t.Error(err)
		}
		h.Close()
	})
	_, port, err = net.SplitHostPort(ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	url := "http://127.0.0.1:" + port + "/"
	return port, func(host string) int {
		t.Helper()
		status, _ := testenv.FetchFromMonitor(t, func() *http.Request {
			req, err := http.NewRequest(http.MethodGet, url, nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Host = host
			return req
		})
		return status
	}
}

// TestGuardAnswersLoopbackOnAnyPort is the published port: compose maps 127.0.0.1:28080 on the host to the
// monitor's 8080 in its container (an SSH tunnel does the same), so the browser's Host names a port the monitor
// does not listen on. Loopback names answer on every port; other names only as configured, so a DNS-rebinding
// page, which sends its own name, is still refused.
func TestGuardAnswersLoopbackOnAnyPort(t *testing.T) {
	t.Parallel()
	port, get := serveGuarded(t, "127.0.0.1:0", "monitor.example", "published.example:9000")
	for _, tc := range []struct {
		host string
		want int
	}{
		{"127.0.0.1:" + port, http.StatusOK},
		{"127.0.0.1:28080", http.StatusOK},
		{"localhost:28080", http.StatusOK},
		{"LocalHost:1", http.StatusOK},
		{"[::1]:28080", http.StatusOK},
		{"127.0.0.2:28080", http.StatusOK},
		{"127.0.0.1", http.StatusOK}, // no port: 80
		{"monitor.example:28080", http.StatusOK},
		{"monitor.example", http.StatusOK},
		{"published.example:9000", http.StatusOK},
		// Refused: the rebinding page's own name on any port, names that merely resolve to loopback, and a name
		// configured with a port on another port.
		{"evil.example:" + port, http.StatusMisdirectedRequest},
		{"evil.example:28080", http.StatusMisdirectedRequest},
		{"127.0.0.1.nip.example:28080", http.StatusMisdirectedRequest},
		{"localhost.evil.example:28080", http.StatusMisdirectedRequest},
		{"127.1:28080", http.StatusMisdirectedRequest},
		{"published.example:" + port, http.StatusMisdirectedRequest},
	} {
		if got := get(tc.host); got != tc.want {
			t.Errorf("GET / with Host %s = %d, want %d", tc.host, got, tc.want)
		}
	}
}

// TestGuardWildcardInContainer is the monitor in its container: it listens on 0.0.0.0:8080, and the user reaches it
// through a published port on the host's loopback. This machine's own host name answers on the listening port
// only; loopback names on any.
func TestGuardWildcardInContainer(t *testing.T) {
	t.Parallel()
	hn, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	port, get := serveGuarded(t, "0.0.0.0:0")
	for _, tc := range []struct {
		host string
		want int
	}{
		{"127.0.0.1:28080", http.StatusOK},
		{"localhost:28080", http.StatusOK},
		{hn + ":" + port, http.StatusOK},
		{hn + ":28080", http.StatusMisdirectedRequest},
		{"evil.example:" + port, http.StatusMisdirectedRequest},
		{"evil.example:28080", http.StatusMisdirectedRequest},
	} {
		if got := get(tc.host); got != tc.want {
			t.Errorf("GET / with Host %s = %d, want %d", tc.host, got, tc.want)
		}
	}
}
