package tasks

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/hibiken/asynq"

	"hpnorton/internal/csvchunk"
	"hpnorton/internal/ledger"
	"hpnorton/internal/record"
	"hpnorton/repo"
)

// Handler runs import tasks: it validates a chunk, writes its good rows through repo, and records the outcome in
// the run's ledger. Every field but Finished must be set.
type Handler struct {
	Repo   *repo.DB
	Ledger *ledger.Ledger
	Logger *slog.Logger
	// Worker names this process in outcomes, as host:pid; Concurrency is its asynq concurrency.
	Worker      string
	Concurrency int
	// Finished, when not nil, is told of every task's outcome once the ledger holds it, for metrics.
	Finished func(record.Kind, ledger.Outcome)
}

// NewMux routes both import task types to h.
func NewMux(h *Handler) *asynq.ServeMux {
	mux := asynq.NewServeMux()
	mux.Handle(TypeCustomerImport, h)
	mux.Handle(TypeProductImport, h)
	return mux
}

// ProcessTask implements asynq.Handler. An error makes asynq retry the task later, which is safe: the write is
// idempotent and the outcome is recorded under the task's ID.
func (h *Handler) ProcessTask(ctx context.Context, t *asynq.Task) error {
	start := time.Now()
	k, err := KindOf(t.Type())
	if err != nil {
		return fmt.Errorf("%w: %w", err, asynq.SkipRetry)
	}
	p, err := DecodeImportPayload(k, t.Payload())
	if err != nil {
		// A payload that cannot be read now never will be; retrying would only delay the report.
		return fmt.Errorf("%w: %w", err, asynq.SkipRetry)
	}
	if p.DB != h.Repo.ID {
		// Tasks travel on a queue per database, so this one was put on the wrong queue by hand. Its own database's
		// workers will never see it here; failing it for good tells its enqueuer at once.
		return fmt.Errorf("tasks: task is for database %s, and this worker writes to %s: %w", p.DB, h.Repo.ID, asynq.SkipRetry)
	}
	rows, problems, err := Validate(k, p)
	if err != nil {
		return fmt.Errorf("%w: %w", err, asynq.SkipRetry)
	}
	id := p.TaskID(k)
	w, err := h.Repo.ImportTask(ctx, repo.Task{ID: id, RunID: p.RunID, RunNo: p.RunNo, Kind: k}, rows)
	if errors.Is(err, repo.ErrUnknownRun) {
		return fmt.Errorf("%w: %w", err, asynq.SkipRetry)
	}
	if err != nil {
		return err
	}
	read := len(rows) + len(problems)
	for _, d := range w.Duplicates {
		problems = append(problems, k.Duplicate(p.File, d.Line, d.LastLine, d.Key, d.FirstLine))
	}
	slices.SortStableFunc(problems, func(a, b record.Problem) int { return a.Line - b.Line })
	var spans [][2]int
	for _, r := range rows {
		if r.LastLine > r.Line {
			spans = append(spans, [2]int{r.Line, r.LastLine})
		}
	}
	o := ledger.Outcome{
		Spans:            spans,
		TaskID:           id,
		FirstLine:        p.FirstLine,
		Read:             read,
		Added:            w.Added,
		Present:          w.Present,
		Rejected:         len(problems),
		Displaced:        w.Displaced,
		DisplacedPresent: w.DisplacedPresent,
		Problems:         problems,
		Worker:           h.Worker,
		Concurrency:      h.Concurrency,
		Redelivered:      w.Redelivered,
	}
	if err := h.Ledger.Record(ctx, p.RunID, k, o); err != nil {
		return err
	}
	if h.Finished != nil {
		h.Finished(k, o)
	}
	h.Logger.Info("task finished", "task", id, "file", p.File, "first_line", p.FirstLine,
		"read", o.Read, "added", o.Added, "present", o.Present, "rejected", o.Rejected,
		"redelivered", o.Redelivered, "duration", time.Since(start).Round(time.Microsecond))
	return nil
}

// Validate reads a chunk's records and splits them into rows fit to store and problems, one per rejected record.
// It depends only on the payload, so every delivery of a task finds the same rows and problems. An error means
// the payload does not hold the records it claims, so it was not written by the enqueuer.
func Validate(k record.Kind, p ImportPayload) ([]record.Row, []record.Problem, error) {
	// The capacity comes from the data, not from the payload's claim: each record takes at least two bytes.
	rows := make([]record.Row, 0, min(p.Records, len(p.Data)/2+1))
	problems := make([]record.Problem, 0, len(p.Bad))
	for _, b := range p.Bad {
		problems = append(problems, record.Problem{File: p.File, Line: b.Line, LastLine: b.Line, Reason: b.Reason})
	}
	for r := range csvchunk.Records(p.Data, p.FirstLine, len(k.Columns())) {
		if r.Err != nil {
			problems = append(problems, record.Problem{File: p.File, Line: r.Line, LastLine: r.LastLine, Reason: r.Err.Error()})
			continue
		}
		row, prob := k.Validate(p.File, r.Line, r.LastLine, r.Fields)
		if prob != nil {
			problems = append(problems, *prob)
			continue
		}
		rows = append(rows, row)
	}
	if n := len(rows) + len(problems); n != p.Records {
		return nil, nil, fmt.Errorf("tasks: payload holds %d records, and claims %d", n, p.Records)
	}
	return rows, problems, nil
}
