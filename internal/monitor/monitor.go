// Package monitor serves asynqmon, the asynq web monitor, whose Go module ships its built UI: the queues, their
// tasks by state, the workers and the throughput, read from the run's Redis.
package monitor

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"

	"github.com/hibiken/asynq"
	"github.com/hibiken/asynqmon"
	"github.com/redis/go-redis/v9"

	"hpnorton/tasks"
)

// Handler is the monitor's UI at / and its JSON API under /api/. Close it to release its Redis connections.
type Handler struct {
	*asynqmon.HTTPHandler
}

// New returns the monitor for the Redis that opt describes, as cli.OpenRedis parsed it from the command line.
// With readOnly, the UI shows the queues but cannot pause them or delete tasks.
func New(opt *redis.Options, readOnly bool) *Handler {
	return &Handler{asynqmon.New(asynqmon.Options{
		RedisConnOpt: asynq.RedisClientOpt{
			Network: opt.Network, Addr: opt.Addr, Username: opt.Username, Password: opt.Password,
			DB: opt.DB, TLSConfig: opt.TLSConfig,
		},
		ReadOnly:         readOnly,
		PayloadFormatter: asynqmon.PayloadFormatterFunc(FormatPayload),
	})}
}

var _ http.Handler = (*Handler)(nil)

// FormatPayload shows an import task as one line a person reads: its file, first line, rows and run, rather than
// asynqmon's default, the payload's JSON. The monitor's payload column shows about 45 characters: the file, the
// line and the rows come first, and the run, which the task's ID begins with, after.
func FormatPayload(taskType string, payload []byte) string {
	k, err := tasks.KindOf(taskType)
	if err != nil {
		return string(payload)
	}
	p, err := tasks.DecodeImportPayload(k, payload)
	if err != nil {
		return fmt.Sprintf("unreadable payload of %d bytes: %v", len(payload), err)
	}
	return fmt.Sprintf("%s line %d: %d rows, run %s (%d bytes of rows, kept beside the task)", p.File, p.FirstLine, p.Rows, p.RunID, p.Bytes)
}

// Guard returns h behind two checks that keep other web sites away from the monitor, whose API pauses queues and
// deletes tasks:
//   - A request whose Host is not one of the names the monitor is reached by gets 421 Misdirected Request. A page
//     of another site that resolves its own name to this address (DNS rebinding) sends its own name as Host, so
//     it can neither read the API nor write to it.
//   - A state-changing request from a browser on another origin gets 403 Forbidden (http.CrossOriginProtection,
//     by Sec-Fetch-Site or Origin). Requests without those headers come from programs, not from a web page.
//
// The names accepted, on the listening port, are the listening address itself; for a loopback address, localhost;
// for a wildcard address (0.0.0.0 or ::), also this machine's host name and interface addresses. Each of extra
// adds a host name or address, on the listening port, or a host:port, as a proxy or a published port gives it.
func Guard(h http.Handler, listen net.Addr, extra []string) (http.Handler, error) {
	host, port, err := net.SplitHostPort(listen.String())
	if err != nil {
		return nil, fmt.Errorf("monitor: listening address %s: %w", listen, err)
	}
	allowed := map[string]bool{}
	allow := func(name string) {
		h, p, err := net.SplitHostPort(name)
		if err != nil {
			h, p = strings.Trim(name, "[]"), port
		}
		allowed[net.JoinHostPort(strings.ToLower(h), p)] = true
	}
	allow(host)
	ip := net.ParseIP(host)
	if ip != nil && (ip.IsLoopback() || ip.IsUnspecified()) {
		allow("localhost")
	}
	if ip != nil && ip.IsUnspecified() {
		if hn, err := os.Hostname(); err == nil {
			allow(hn)
		}
		addrs, _ := net.InterfaceAddrs() // without them, the other names still serve
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok {
				allow(n.IP.String())
			}
		}
	}
	for _, e := range extra {
		allow(e)
	}
	guarded := http.NewCrossOriginProtection().Handler(h)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rh, rp, err := net.SplitHostPort(r.Host)
		if err != nil { // no port: the scheme's default
			rh, rp = strings.Trim(r.Host, "[]"), "80"
		}
		if !allowed[net.JoinHostPort(strings.ToLower(rh), rp)] {
			http.Error(w, "this monitor does not answer to that host name; see its --allow-host", http.StatusMisdirectedRequest)
			return
		}
		guarded.ServeHTTP(w, r)
	}), nil
}
