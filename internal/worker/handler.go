package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/hibiken/asynq"

	"hpnorton/internal/ledger"
	"hpnorton/internal/record"
	"hpnorton/repo"
	"hpnorton/tasks"
)

// handler runs import tasks, the whole of a task's life on a worker: it checks the payload, loads its rows
// through repo, and records the outcome in the run's ledger and in the metrics.
type handler struct {
	db      *repo.DB
	ledger  *ledger.Ledger
	metrics *Metrics // nil when the worker serves no metrics
	log     *slog.Logger
	// worker names this process in outcomes, as host:pid; concurrency is its asynq concurrency.
	worker      string
	concurrency int
}

// ProcessTask implements asynq.Handler. An error makes asynq retry the task later, which is safe: the load is
// idempotent and the outcome is recorded under the task's ID.
func (h *handler) ProcessTask(ctx context.Context, t *asynq.Task) error {
	start := time.Now()
	k, err := tasks.KindOf(t.Type())
	if err != nil {
		return fmt.Errorf("%w: %w", err, asynq.SkipRetry)
	}
	p, err := tasks.DecodeImportPayload(k, t.Payload())
	if err != nil {
		// A payload that cannot be read now never will be; retrying would only delay the report.
		return fmt.Errorf("%w: %w", err, asynq.SkipRetry)
	}
	if p.DB != h.db.ID {
		// Tasks travel on a queue per database, so this one was put on the wrong queue by hand. Its own database's
		// workers will never see it here; failing it for good tells its enqueuer at once.
		return fmt.Errorf("tasks: task is for database %s, and this worker writes to %s: %w", p.DB, h.db.ID, asynq.SkipRetry)
	}
	id := p.TaskID(k)
	w, err := h.load(ctx, k, id, p)
	// These fail the same way however often they run: failed for good at once, the run ends with the reason
	// instead of waiting out the retries.
	if errors.Is(err, repo.ErrUnknownRun) || errors.Is(err, errRowsGone) || errors.Is(err, repo.ErrAltered) || errors.Is(err, repo.ErrRepeatedKey) {
		return fmt.Errorf("%w: %w", err, asynq.SkipRetry)
	}
	if err != nil {
		return err
	}
	if crashAfterCommit != nil {
		crashAfterCommit()
	}
	o := ledger.Outcome{TaskID: id, FirstLine: p.FirstLine, Counts: w.Counts, Worker: h.worker, Concurrency: h.concurrency, Redelivered: w.Redelivered}
	if err := h.ledger.Record(ctx, p.RunID, k, o); err != nil {
		return err
	}
	if h.metrics != nil {
		h.metrics.Rows(k, o.Counts, o.Redelivered)
	}
	h.log.Info("task finished", "task", id, "file", p.File, "first_line", p.FirstLine, "rows", p.Rows,
		"added", o.Added, "present", o.Present, "redelivered", o.Redelivered, "duration", time.Since(start).Round(time.Microsecond))
	return nil
}

// crashAfterCommit, when set, runs after a task's rows have committed and before its outcome is recorded. Only
// tests set it, through the crashtest build tag (crash.go).
var crashAfterCommit func()

// errRowsGone means a task's rows are not in Redis, and no delivery of it has loaded them.
var errRowsGone = errors.New(tasks.RowsGone + " (expired after two days, or deleted), and no delivery of it loaded them; run the import again")

// load fetches a task's rows from Redis and loads them. Rows that are gone were dropped when an earlier delivery
// recorded its outcome; that delivery's counts, as MySQL recorded them, are the task's.
func (h *handler) load(ctx context.Context, k record.Kind, id string, p tasks.ImportPayload) (repo.Written, error) {
	data, err := h.ledger.Rows(ctx, p.RunID, id)
	if errors.Is(err, ledger.ErrNoRows) {
		w, err := h.db.Committed(ctx, id)
		if errors.Is(err, repo.ErrNoTask) {
			return repo.Written{}, fmt.Errorf("task %s: %w", id, errRowsGone)
		}
		return w, err
	}
	if err != nil {
		return repo.Written{}, err
	}
	if err := p.CheckRows(data); err != nil {
		return repo.Written{}, fmt.Errorf("%w: %w", err, asynq.SkipRetry)
	}
	return h.db.ImportTask(ctx, repo.Task{ID: id, RunID: p.RunID, RunNo: p.RunNo, Kind: k, Rows: p.Rows, Data: data, Update: p.Update, Apart: p.Apart})
}
