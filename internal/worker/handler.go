package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/hibiken/asynq"

	"hpnorton/internal/ledger"
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
	w, err := h.db.ImportTask(ctx, repo.Task{ID: id, RunID: p.RunID, RunNo: p.RunNo, Kind: k, Rows: p.Rows, Data: p.Data})
	if errors.Is(err, repo.ErrUnknownRun) {
		return fmt.Errorf("%w: %w", err, asynq.SkipRetry)
	}
	if err != nil {
		return err
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
