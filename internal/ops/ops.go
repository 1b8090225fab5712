// Package ops serves HTTP beside a command's work: a worker's operations endpoints (net/http/pprof and Prometheus
// metrics) and the web monitor. It is a package of its own so that only the commands that serve HTTP link
// net/http.
package ops

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	httppprof "net/http/pprof"
	"time"
)

// Endpoints returns a worker's operations handler: net/http/pprof under /debug/pprof/ and metrics, when not nil,
// at /metrics. pprof's cmdline endpoint is left out: it returns the whole command line, and --mysql and --redis
// may hold passwords. Asked for it, the index answers that no such profile exists.
func Endpoints(metrics http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", httppprof.Index)
	mux.HandleFunc("/debug/pprof/profile", httppprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", httppprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", httppprof.Trace)
	if metrics != nil {
		mux.Handle("/metrics", metrics)
	}
	return mux
}

// Serve serves h on addr until ctx ends and returns the address it listens on. It returns once the listener is
// bound, so a bad or busy address fails the command at start rather than in a log line later.
func Serve(ctx context.Context, addr string, h http.Handler, log *slog.Logger) (net.Addr, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	// No WriteTimeout: a CPU profile or trace streams for as long as the client asked.
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("HTTP server stopped", "addr", ln.Addr().String(), "err", err)
		}
	}()
	return ln.Addr(), nil
}

// URL is the http URL of path on addr.
func URL(addr net.Addr, path string) string { return fmt.Sprintf("http://%s%s", addr, path) }
