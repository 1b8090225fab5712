package coordinator

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"

	"hpnorton/internal/record"
	"hpnorton/tasks"
)

// Check reads both files of cfg.Dir as a run would and returns every problem the run would reject, in file and
// line order, without enqueueing anything: the first pass of enqueue --strict. It validates each record exactly
// as the workers do, and finds keys a file repeats with a set of the file's keys, so its memory grows with the
// file, unlike a run's.
func Check(ctx context.Context, cfg Config) ([]record.Problem, error) {
	cfg.ChunkRows = cmp.Or(cfg.ChunkRows, DefaultChunkRows)
	cfg.ChunkBytes = cmp.Or(cfg.ChunkBytes, DefaultChunkBytes)
	var problems []record.Problem
	for _, k := range record.Kinds {
		p, err := checkFile(ctx, cfg, k)
		if err != nil {
			return nil, err
		}
		problems = append(problems, p...)
	}
	return problems, nil
}

// ProblemReport is the report of a run refused for its problems: it lists them as a run's report would, and
// counts nothing else.
func ProblemReport(problems []record.Problem) *Report {
	return &Report{Problems: slices.Clip(problems[:min(len(problems), maxListedProblems)]), ProblemCount: len(problems), AllProblems: problems}
}

func checkFile(ctx context.Context, cfg Config, k record.Kind) ([]record.Problem, error) {
	f, s, err := openFile(cfg, k)
	if err != nil {
		return []record.Problem{{File: k.FileName(), Reason: err.Error()}}, nil
	}
	defer f.Close()
	var problems []record.Problem
	first := map[string]int{} // key → the line it first occurs on
	for {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("interrupted while checking %s: %w", k.FileName(), err)
		}
		c, err := s.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			problems = append(problems, record.Problem{File: k.FileName(), Reason: fmt.Sprintf("read error: %v", err)})
			break
		}
		rows, bad, err := tasks.Validate(k, tasks.ImportPayload{File: k.FileName(), FirstLine: c.FirstLine, Records: c.Records, Bad: c.Bad, Data: c.Data})
		if err != nil {
			return nil, err
		}
		problems = append(problems, bad...)
		for _, r := range rows {
			key := r.Key(k)
			if line, ok := first[key]; ok {
				problems = append(problems, k.Duplicate(k.FileName(), r.Line, r.LastLine, key, line))
				continue
			}
			first[key] = r.Line
		}
	}
	slices.SortStableFunc(problems, func(a, b record.Problem) int { return a.Line - b.Line })
	return problems, nil
}
