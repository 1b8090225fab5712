package coordinator

// Why a run stops before its end, and what it says then: a stall diagnosed (a task failed for good or vanished, no
// worker), the timeout, an interruption, and what becomes of the queued tasks.

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/hibiken/asynq"

	"hpnorton/internal/record"
	"hpnorton/tasks"
)

// stopped explains a wait that ended with an error, naming the timeout or the interruption when that is what
// ended it, and what becomes of the tasks queued.
func (w *waiter) stopped(ctx context.Context, err error) error {
	switch {
	case errors.Is(context.Cause(ctx), errTimeout):
		return fmt.Errorf("%w within %s: %s; %s%s", ErrTimedOut, w.cfg.Timeout, w.progress(), w.fate(), resumeHint(w.cfg))
	case ctx.Err() != nil:
		return fmt.Errorf("interrupted (%s); %s%s", w.progress(), w.fate(), resumeHint(w.cfg))
	}
	return err
}

// fate says what becomes of the run's queued tasks once its enqueuer stops waiting: the workers import them, or,
// with none serving the database, they wait for one.
func (w *waiter) fate() string {
	const unrecorded = ", but this run's results are not recorded"
	if serving, _, err := w.workers(); err == nil && serving == 0 {
		return fmt.Sprintf("no worker serves database %s, so its tasks stay queued until one does%s", w.d.Repo.ID, unrecorded)
	}
	return "its tasks stay queued, and the workers still import them" + unrecorded
}

// workers counts the worker processes serving the run's queue, and those serving other databases on the same
// base queue.
func (w *waiter) workers() (serving, others int, err error) {
	servers, err := w.d.Inspector.Servers()
	if err != nil {
		return 0, 0, fmt.Errorf("coordinator: list workers: %w", err)
	}
	for _, s := range servers {
		if _, ok := s.Queues[w.queue]; ok {
			serving++
		} else if slices.ContainsFunc(slices.Collect(maps.Keys(s.Queues)), func(q string) bool { return strings.HasPrefix(q, w.cfg.Queue+".") }) {
			others++
		}
	}
	return serving, others, nil
}

func (w *waiter) progress() string {
	var parts []string
	for _, k := range record.Kinds {
		e, known := w.total[k]
		_, done := w.done[k]
		switch {
		case done:
			parts = append(parts, fmt.Sprintf("%s %s done", k, Plural(e.read.tasks, "task")))
		case known:
			parts = append(parts, fmt.Sprintf("%s %s waiting", k, Plural(e.read.tasks, "task")))
		default:
			parts = append(parts, fmt.Sprintf("%s still being enqueued", k))
		}
	}
	return strings.Join(parts, ", ")
}

// resumeHint ends the message of a run that stopped early with the command that finishes it.
func resumeHint(cfg Config) string {
	if cfg.ResumeCommand == "" {
		return ", and a new run of the same files counts them as present"
	}
	return "; finish the run with: " + cfg.ResumeCommand + ", or end it with --cancel in place of --resume"
}

// diagnose looks for why a run makes no progress. A task that failed for good ends the run with its error; no
// worker on the queue is worth a warning, since one may yet start.
func (w *waiter) diagnose(ctx context.Context) error {
	// Each of the run's tasks is looked up by its ID: the queue's lists of failed tasks may hold thousands of
	// other runs' tasks, and asynq keeps them for 90 days.
	var retrying *asynq.TaskInfo
	for _, id := range w.sent.list() {
		info, err := w.d.Inspector.GetTaskInfo(w.queue, id)
		switch {
		case errors.Is(err, asynq.ErrTaskNotFound) || errors.Is(err, asynq.ErrQueueNotFound):
			// asynq deletes a task once it succeeds, and the worker records the outcome before that. A task gone
			// without an outcome was deleted from Redis: flushed, restarted without persistence, or deleted in
			// the monitor. Waiting would last until the timeout for nothing.
			recorded, err := w.d.Ledger.Recorded(ctx, w.cfg.RunID, w.sent.kind(id), id)
			if err != nil {
				return err
			}
			if !recorded {
				return fmt.Errorf("%w: task %s vanished from Redis before it recorded an outcome, as when Redis is flushed or restarts without persistence; the rows stored so far stay%s", ErrStalled, id, resumeHint(w.cfg))
			}
			w.sent.remove(id)
			continue
		case err != nil:
			return fmt.Errorf("coordinator: look up task %s: %w", id, err)
		case info.State == asynq.TaskStateArchived && strings.Contains(info.LastErr, tasks.RowsGone):
			// Redis lost the task's rows, as when it is flushed between the rows' write and the task's delivery:
			// the file still holds them, and a resume sends them again.
			return fmt.Errorf("%w: task %s failed for good: %s; the rows stored so far stay%s", ErrStalled, info.ID, info.LastErr, resumeHint(w.cfg))
		case info.State == asynq.TaskStateArchived:
			return fmt.Errorf("%w: task %s failed for good: %s", ErrStalled, info.ID, info.LastErr)
		case info.State == asynq.TaskStateRetry && retrying == nil:
			retrying = info
		}
	}
	// A task waiting to be retried may yet succeed, once MySQL is back for instance, so it is only reported.
	if retrying != nil {
		w.log.Warn("a task failed and will be retried", "task", retrying.ID, "retried", retrying.Retried, "next", retrying.NextProcessAt.Format(time.RFC3339), "err", retrying.LastErr)
	}
	serving, others, err := w.workers()
	if err != nil {
		return err
	}
	if serving == 0 {
		msg := fmt.Sprintf("no worker serves database %s; start one with the same --mysql and --redis, and --queue %s", w.d.Repo.ID, w.cfg.Queue)
		if w.cfg.WorkerCommand != "" {
			msg = fmt.Sprintf("no worker serves database %s; start one with: %s", w.d.Repo.ID, w.cfg.WorkerCommand)
		}
		if others > 0 {
			msg += fmt.Sprintf("; %s on queue %s serve other databases and never take this run's tasks", Plural(others, "worker"), w.cfg.Queue)
		}
		w.log.Warn(msg, "queue", w.queue, "progress", w.progress())
	} else {
		w.log.Info("waiting for workers", "workers", serving, "progress", w.progress())
	}
	if ctx.Err() != nil {
		return w.stopped(ctx, ctx.Err())
	}
	return nil
}
