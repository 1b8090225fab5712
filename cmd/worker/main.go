// Command worker consumes hpnorton import tasks from Redis and writes them to MySQL. Run as many as you like, on as
// many machines as share the Redis and MySQL; --concurrency 1 on a single worker is linear mode.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/hibiken/asynq"

	"hpnorton/internal/cli"
	"hpnorton/internal/ops"
	"hpnorton/internal/worker"
	"hpnorton/repo"
)

// defaultConcurrency is the parallel mode's default number of tasks in flight per worker process.
const defaultConcurrency = 4

const synopsis = "worker [--concurrency N] [--poll D] [--ops ADDR] [--redis URL] [--mysql DSN] [--queue NAME] [--log-format text|json]"

func main() {
	cli.RouteDriverLogs()
	ctx, stop := cli.SignalContext(context.Background())
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run serves until ctx is cancelled and returns the exit status: 0 when stopped by SIGINT or SIGTERM, which is a
// worker's normal end, after it has finished or returned its running tasks; 130 or 143 when the signal came
// before it served.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("worker", flag.ContinueOnError)
	err := cli.Guard(func() error { return serve(ctx, fs, args, stderr) })
	return cli.Exit(ctx, stdout, stderr, fs, synopsis, err)
}

func serve(ctx context.Context, fs *flag.FlagSet, args []string, stderr io.Writer) error {
	var conn cli.Conn
	conn.AddFlags(fs)
	concurrency := fs.Int("concurrency", defaultConcurrency, "`tasks` processed at once, 1 to 64; 1 is linear mode (env HPNORTON_CONCURRENCY)")
	poll := fs.Duration("poll", worker.DefaultPollInterval, "the longest an idle worker waits between looks for tasks, a `duration` of 1ms or more; announced tasks wake it at once (env HPNORTON_POLL)")
	opsAddr := fs.String("ops", "", "serve Prometheus metrics at /metrics and net/http/pprof at /debug/pprof/ on this `address`, such as 127.0.0.1:9090; off when empty (env HPNORTON_OPS)")
	if err := cli.Parse(fs, args); err != nil {
		return err
	}
	switch {
	case fs.NArg() > 0:
		return &cli.UsageError{Msg: fmt.Sprintf("unexpected argument %q; the worker takes flags only", fs.Arg(0))}
	case *concurrency < 1 || *concurrency > worker.MaxConcurrency:
		return cli.Invalid(fs, "concurrency", fmt.Sprintf("must be 1 to %d, got %d", worker.MaxConcurrency, *concurrency))
	case *poll < time.Millisecond: // shorter only spins (12% of a core at 1ns), as announced tasks wake it at once
		return cli.Invalid(fs, "poll", fmt.Sprintf("must be at least 1ms, got %s", *poll))
	}
	if err := conn.Check(fs); err != nil {
		return err
	}
	if err := cli.CheckAddr(fs, "ops", *opsAddr); *opsAddr != "" && err != nil { // empty: off
		return err
	}
	log, err := cli.NewLogger(stderr, conn.LogFormat)
	if err != nil {
		return err
	}
	rdb, err := cli.OpenRedis(ctx, conn.RedisURL)
	if err != nil {
		return err
	}
	defer rdb.Close()
	db, err := repo.Open(ctx, conn.MySQLDSN)
	if err != nil {
		return err
	}
	defer db.Close()

	cfg := worker.Config{Concurrency: *concurrency, Queue: conn.Queue, PollInterval: *poll, Logger: log}
	if *opsAddr != "" {
		inspector := asynq.NewInspectorFromRedisClient(rdb) // shares rdb; closing it leaves rdb open
		defer inspector.Close()
		cfg.Metrics = worker.NewMetrics(inspector)
		addr, err := ops.Serve(ctx, *opsAddr, ops.Endpoints(cfg.Metrics.Handler()), log)
		if err != nil {
			return fmt.Errorf("operations address: %w", err)
		}
		log.Info("operations endpoints", "metrics", ops.URL(addr, "/metrics"), "pprof", ops.URL(addr, "/debug/pprof/"))
	}
	w, err := worker.Start(rdb, db, cfg)
	if err != nil {
		return err
	}
	<-ctx.Done()
	log.Info("shutting down: finishing running tasks, returning the rest to the queue")
	w.Shutdown()
	log.Info("worker stopped")
	return nil
}
