package coordinator

import (
	"cmp"
	"context"
	"fmt"

	"hpnorton/internal/record"
)

// Check reads both files of cfg.Dir as a run reads them and reports every problem the run would reject, without
// enqueueing anything: the first pass of enqueue --strict. It is the run's own reading with nothing sent, so it
// validates each record and settles repeated keys exactly as the run does, in the same memory. Config.Rejects is
// given every problem; the report lists the first ones and counts them all.
func Check(ctx context.Context, cfg Config) (*Report, error) {
	cfg.ChunkRows = cmp.Or(cfg.ChunkRows, DefaultChunkRows)
	cfg.ChunkBytes = cmp.Or(cfg.ChunkBytes, DefaultChunkBytes)
	rep := &Report{}
	for _, k := range record.Kinds {
		r, fileErr, err := readFile(ctx, cfg, k, &feed{}, nil)
		if ctx.Err() != nil {
			err = fmt.Errorf("interrupted while checking %s: %w", k.FileName(), ctx.Err())
		}
		if err == nil {
			err = rep.addProblems(k, fileErr, r, cfg.Rejects)
		}
		r.problems.close()
		r.dups.close()
		if err != nil {
			return nil, err
		}
	}
	return rep, nil
}
