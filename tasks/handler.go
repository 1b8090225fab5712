package tasks

import (
	"context"
	"encoding/csv"
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
	p, err := DecodeImportPayload(t.Payload())
	if err != nil {
		// A payload that cannot be read now never will be; retrying would only delay the report.
		return fmt.Errorf("%w: %w", err, asynq.SkipRetry)
	}
	rows, problems := Validate(k, p)
	id := p.TaskID(k)
	w, err := h.Repo.ImportTask(ctx, repo.Task{ID: id, RunID: p.RunID, RunNo: p.RunNo, Kind: k}, rows)
	if err != nil {
		return err
	}
	read := len(rows) + len(problems)
	for _, d := range w.Duplicates {
		problems = append(problems, k.Duplicate(p.File, d.Line, d.Key, d.FirstLine))
	}
	slices.SortStableFunc(problems, func(a, b record.Problem) int { return a.Line - b.Line })
	o := ledger.Outcome{
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
// It depends only on the payload, so every delivery of a task finds the same rows and problems.
func Validate(k record.Kind, p ImportPayload) ([]record.Row, []record.Problem) {
	rows := make([]record.Row, 0, p.Records)
	var problems []record.Problem
	for r := range csvchunk.Records(p.Data, p.FirstLine) {
		if r.Err != nil {
			reason := r.Err.Error()
			var perr *csv.ParseError
			if errors.As(r.Err, &perr) {
				reason = perr.Err.Error()
			}
			problems = append(problems, record.Problem{File: p.File, Line: r.Line, Reason: "cannot be parsed as CSV: " + reason})
			continue
		}
		row, prob := k.Validate(p.File, r.Line, r.Fields)
		if prob != nil {
			problems = append(problems, *prob)
			continue
		}
		rows = append(rows, row)
	}
	return rows, problems
}
