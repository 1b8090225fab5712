// Package worker is the worker side of an import, whole: an asynq server that takes import tasks from the
// database's queue (worker.go), checks each one, loads its rows through repo and records its outcome in the run's
// ledger (handler.go), and counts what it did in Prometheus metrics (metrics.go). The worker command is a thin
// shell around it, and tests run it in-process.
package worker

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"strconv"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"hpnorton/internal/ledger"
	"hpnorton/repo"
	"hpnorton/tasks"
)

// Config describes one worker process.
type Config struct {
	// Concurrency is how many tasks run at once, from 1 to MaxConcurrency; 1 is linear mode. asynq itself would
	// turn 0 into the number of CPUs, so Start refuses it instead.
	Concurrency int
	// Queue is the operator's base queue name; the worker serves tasks.QueueFor(Queue, the database's ID), which
	// carries the tasks meant for its database and no others.
	Queue string
	// PollInterval is how long an idle worker waits for the enqueuer's announcement of a task before it looks
	// anyway (waker); zero means DefaultPollInterval. An announced task is taken at once; one that nobody announces,
	// such as a retry, waits for the next look.
	PollInterval time.Duration
	// Name identifies the worker in outcomes; empty means host:pid.
	Name string
	// ShutdownTimeout bounds how long Shutdown waits for running tasks before returning them to the queue; zero
	// means asynq's default of 8 seconds.
	ShutdownTimeout time.Duration
	// Metrics, when not nil, counts the worker's rows and times its tasks.
	Metrics *Metrics
	// Logger receives one line per finished task and asynq's own messages; nil discards them.
	Logger *slog.Logger
	// PruneEvery is how often the worker deletes the records of runs kept past their time (repo.DB.Prune), so
	// that they go even when no run starts; zero means DefaultPruneEvery.
	PruneEvery time.Duration
}

// DefaultPruneEvery is how often a worker prunes expired runs' records.
const DefaultPruneEvery = time.Hour

// MaxConcurrency caps a worker's concurrency. Each running task holds one MySQL connection, and past the
// database's cores more tasks at once only wait on each other; workers' connections add up against the server's
// max_connections (151 by default).
const MaxConcurrency = 64

// DefaultPollInterval is the longest an idle worker waits between looks at its queue. Announced tasks do not
// wait for it; a retry already waits up to 5 s for asynq to queue it again.
const DefaultPollInterval = 500 * time.Millisecond

// Worker is a started asynq server, and its pruning.
type Worker struct {
	srv         *asynq.Server
	asynqClient *redis.Client // the server's own, closed after it
	wake        *waker
	stopPrune   context.CancelFunc
	pruned      chan struct{} // closed when pruning has stopped
}

// Start starts serving cfg.Queue. The caller owns rdb and db and must call Shutdown before closing them.
func Start(rdb *redis.Client, db *repo.DB, cfg Config) (*Worker, error) {
	if cfg.Concurrency < 1 || cfg.Concurrency > MaxConcurrency {
		return nil, fmt.Errorf("worker: concurrency must be 1 to %d, got %d", MaxConcurrency, cfg.Concurrency)
	}
	if cfg.Queue == "" {
		return nil, fmt.Errorf("worker: no queue to serve")
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	host, _ := os.Hostname() // an empty host still leaves the pid to tell workers apart
	name := cmp.Or(cfg.Name, host+":"+strconv.Itoa(os.Getpid()))
	log = log.With("worker", name)

	poll := cmp.Or(cfg.PollInterval, DefaultPollInterval)
	queue := tasks.QueueFor(cfg.Queue, db.ID)
	// One connection per running task, and one to spare for a redelivery's look-up of its earlier counts.
	db.SetMaxConns(cfg.Concurrency + 1)
	wake, err := newWaker(context.Background(), ledger.New(rdb), queue, poll)
	if err != nil {
		return nil, fmt.Errorf("worker: listen for announced tasks: %w", err)
	}
	// asynq gets a client of its own, on rdb's options, for the waker's hook: so the hook sees this worker's looks
	// only, even where several workers share rdb, and rdb carries no hook once the worker stops.
	opt := *rdb.Options()
	asynqClient := redis.NewClient(&opt)
	asynqClient.AddHook(wake)
	srv := newServer(asynqClient, cfg, queue, log)
	h := &handler{db: db, ledger: ledger.New(rdb), metrics: cfg.Metrics, log: log, worker: name, concurrency: cfg.Concurrency}
	mux := asynq.NewServeMux()
	mux.Handle(tasks.TypeCustomerImport, h)
	mux.Handle(tasks.TypeProductImport, h)
	if cfg.Metrics != nil {
		mux.Use(cfg.Metrics.Middleware)
	}
	if err := srv.Start(mux); err != nil {
		wake.stop()
		asynqClient.Close()
		return nil, fmt.Errorf("worker: %w", err)
	}
	log.Info("worker started", "queue", queue, "database", db.ID, "concurrency", cfg.Concurrency, "write", db.Method, "poll", poll)
	ctx, stop := context.WithCancel(context.Background())
	w := &Worker{srv: srv, asynqClient: asynqClient, wake: wake, stopPrune: stop, pruned: make(chan struct{})}
	go w.prune(ctx, db, cmp.Or(cfg.PruneEvery, DefaultPruneEvery), log)
	return w, nil
}

// newServer is the asynq server of a worker on queue, on its own client.
func newServer(client *redis.Client, cfg Config, queue string, log *slog.Logger) *asynq.Server {
	return asynq.NewServerFromRedisClient(client, asynq.Config{
		Concurrency: cfg.Concurrency,
		Queues:      map[string]int{queue: 1},
		// asynq sleeps this long after a look that found no task; the waker does the waiting.
		TaskCheckInterval: time.Millisecond,
		ShutdownTimeout:   cfg.ShutdownTimeout,
		Logger:            asynqLogger{log},
		LogLevel:          asynq.WarnLevel,
		RetryDelayFunc:    retryDelay,
		ErrorHandler: asynq.ErrorHandlerFunc(func(ctx context.Context, t *asynq.Task, err error) {
			id, _ := asynq.GetTaskID(ctx)
			retried, _ := asynq.GetRetryCount(ctx)
			maxRetry, _ := asynq.GetMaxRetry(ctx)
			log.Error("task failed", "task", id, "type", t.Type(), "retried", retried, "max_retry", maxRetry, "err", err)
		}),
	})
}

// prune deletes expired runs' records now and then every interval until ctx ends. Every worker of a database does
// it; the deletes are idempotent, so many workers cost only their queries.
func (w *Worker) prune(ctx context.Context, db *repo.DB, every time.Duration, log *slog.Logger) {
	defer close(w.pruned)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if n, err := db.Prune(ctx); err != nil && ctx.Err() == nil {
			log.Warn("cannot prune old runs' records; trying again later", "in", every, "err", err)
		} else if n > 0 {
			log.Info("pruned the records of old runs", "runs", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// retryDelay is the wait before a failed task runs again: 1 s after a worker died holding the task, since the task
// is not at fault and asynq noticed the death only after the lease had been expired for 30 s; otherwise 1 s
// doubling to a minute, with a tenth of jitter. A task fails when MySQL or Redis is unreachable, and the run
// waits for it, so asynq's default of 15 s growing as the fourth power of the retries would leave a run idle for
// minutes after a short outage. With asynq's 25 retries, a task keeps trying for about 20 minutes.
func retryDelay(n int, err error, _ *asynq.Task) time.Duration {
	if errors.Is(err, asynq.ErrLeaseExpired) {
		return time.Second
	}
	d := min(time.Second<<min(n, 6), time.Minute)
	return d + rand.N(d/10+1)
}

// Shutdown stops taking tasks, waits for running ones up to the shutdown timeout, and returns the rest to the queue.
func (w *Worker) Shutdown() {
	w.stopPrune()
	<-w.pruned
	// A look that waits for an announcement holds one of asynq's slots, which its shutdown waits for.
	w.wake.stop()
	w.srv.Shutdown()
	w.asynqClient.Close()
}

// asynqLogger routes asynq's own messages to slog.
type asynqLogger struct{ l *slog.Logger }

func (a asynqLogger) Debug(args ...any) { a.l.Debug(fmt.Sprint(args...)) }
func (a asynqLogger) Info(args ...any)  { a.l.Info(fmt.Sprint(args...)) }
func (a asynqLogger) Warn(args ...any)  { a.l.Warn(fmt.Sprint(args...)) }
func (a asynqLogger) Error(args ...any) { a.l.Error(fmt.Sprint(args...)) }

// Fatal is asynq's last word before it gives up; its contract is to end the process.
func (a asynqLogger) Fatal(args ...any) {
	a.l.Error(fmt.Sprint(args...))
	os.Exit(1)
}
