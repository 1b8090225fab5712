// Command monitor serves the asynq web monitor for the import queues: pending, active and finished tasks, the
// running workers and the throughput, read from the Redis the workers share. Open its address in a browser.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync/atomic"

	"hpnorton/internal/cli"
	"hpnorton/internal/monitor"
	"hpnorton/internal/ops"
)

// DefaultAddr is where the monitor listens unless told otherwise: this machine only, since the UI can delete tasks.
const DefaultAddr = "127.0.0.1:8080"

const synopsis = "monitor [--addr ADDR] [--read-only] [--allow-host NAME] [--redis URL] [--log-format text|json]"

func main() {
	cli.RouteDriverLogs()
	ctx, stop := cli.SignalContext(context.Background())
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run serves until ctx is cancelled and returns the exit status: 0 when stopped by SIGINT or SIGTERM, its normal
// end; 130 or 143 when the signal came before it served.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("monitor", flag.ContinueOnError)
	err := cli.Guard(func() error { return serve(ctx, fs, args, stderr) })
	return cli.Exit(ctx, stdout, stderr, fs, synopsis, err)
}

func serve(ctx context.Context, fs *flag.FlagSet, args []string, stderr io.Writer) error {
	var conn cli.Conn
	conn.AddRedisFlags(fs)
	addr := fs.String("addr", DefaultAddr, "serve the monitor on this `address`; 0.0.0.0:8080 opens it to other machines (env HPNORTON_MONITOR_ADDR)")
	readOnly := fs.Bool("read-only", false, "show the queues without the buttons that pause them or delete tasks (env HPNORTON_MONITOR_READ_ONLY)")
	var allowHosts hostList
	fs.Var(&allowHosts, "allow-host", "also answer to this host `name` or address (on any port) or host:port (on that port only), as a proxy, DNS or a published port gives it; loopback names answer on any port without it; repeat, or separate with commas (env HPNORTON_MONITOR_ALLOW_HOSTS)")
	if err := cli.Parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return &cli.UsageError{Msg: fmt.Sprintf("unexpected argument %q; the monitor takes flags only", fs.Arg(0))}
	}
	if err := conn.Check(fs); err != nil {
		return err
	}
	if err := cli.CheckAddr(fs, "addr", *addr); err != nil {
		return err
	}
	log, err := cli.NewLogger(stderr, conn.LogFormat)
	if err != nil {
		return err
	}
	rdb, err := cli.OpenRedis(ctx, conn.RedisURL) // fails now, with a clear message, if Redis does not answer
	if err != nil {
		return err
	}
	defer rdb.Close()
	h := monitor.New(rdb.Options(), *readOnly)
	defer h.Close()
	// The guard needs the bound address, which is known only once listening: the handler is set right after.
	var guarded atomic.Pointer[http.Handler]
	bound, err := ops.Serve(ctx, *addr, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if g := guarded.Load(); g != nil {
			(*g).ServeHTTP(w, r)
			return
		}
		http.Error(w, "starting", http.StatusServiceUnavailable)
	}), log)
	if err != nil {
		return fmt.Errorf("monitor address: %w", err)
	}
	g, err := monitor.Guard(h, bound, allowHosts)
	if err != nil {
		return err
	}
	guarded.Store(&g)
	log.Info("monitor serving", "url", ops.URL(bound, "/"), "read_only", *readOnly)
	<-ctx.Done()
	log.Info("monitor stopped")
	return nil
}

// hostList is a flag that collects host names, from repeated flags or a comma-separated list.
type hostList []string

func (h *hostList) String() string { return strings.Join(*h, ",") }

func (h *hostList) Set(v string) error {
	for n := range strings.SplitSeq(v, ",") {
		if n = strings.TrimSpace(n); n != "" {
			*h = append(*h, n)
		}
	}
	return nil
}
