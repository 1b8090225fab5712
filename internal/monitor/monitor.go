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
// The names accepted are:
//   - on any port, the loopback names: localhost and the loopback addresses (127.0.0.0/8, ::1). Only a program on
//     the machine the user sits at sends them, and a published container port or an SSH tunnel (127.0.0.1:28080
//     to the monitor's 8080) changes the port, not the name; a rebinding page sends its own name, never these.
//   - on the listening port, the listening address itself and, for a wildcard address (0.0.0.0 or ::), this
//     machine's host name and interface addresses.
//   - each of extra: a host name or address, on any port, or a host:port, on that port only, as a proxy, DNS or a
//     published port gives it.
func Guard(h http.Handler, listen net.Addr, extra []string) (http.Handler, error) {
	host, port, err := net.SplitHostPort(listen.String())
	if err != nil {
		return nil, fmt.Errorf("monitor: listening address %s: %w", listen, err)
	}
	// allowed holds host:port pairs, and anyPort the names allowed on every port.
	allowed, anyPort := map[string]bool{}, map[string]bool{}
	allow := func(name, onPort string) {
		h, p, err := net.SplitHostPort(name)
		if err != nil {
			h, p = strings.Trim(name, "[]"), onPort
		}
		if p == "" {
			anyPort[strings.ToLower(h)] = true
			return
		}
		allowed[net.JoinHostPort(strings.ToLower(h), p)] = true
	}
	allow(host, port)
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		if hn, err := os.Hostname(); err == nil {
			allow(hn, port)
		}
		addrs, _ := net.InterfaceAddrs() // without them, the other names still serve
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok && !n.IP.IsLoopback() {
				allow(n.IP.String(), port)
			}
		}
	}
	for _, e := range extra {
		allow(e, "")
	}
	guarded := http.NewCrossOriginProtection().Handler(h)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rh, rp, err := net.SplitHostPort(r.Host)
		if err != nil { // no port: the scheme's default
			rh, rp = strings.Trim(r.Host, "[]"), "80"
		}
		rh = strings.ToLower(rh)
		if !loopbackName(rh) && !anyPort[rh] && !allowed[net.JoinHostPort(rh, rp)] {
			http.Error(w, "this monitor does not answer to that host name; see its --allow-host", http.StatusMisdirectedRequest)
			return
		}
		guarded.ServeHTTP(w, r)
	}), nil
}

// loopbackName reports whether a request's host name (lower case, without its port) is one that only this machine
// answers to: localhost, or a loopback address. An address is taken only in its plain form: 127.1 or 0x7f.0.0.1
// are names a resolver could be asked about, so they are not trusted.
func loopbackName(h string) bool {
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback() && ip.String() == h
}
