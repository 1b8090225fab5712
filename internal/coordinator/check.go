package coordinator

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"hpnorton/internal/record"
)

// Check reads both files of cfg.Dir as a run reads them and reports every problem the run would reject, without
// enqueueing anything: the first pass of enqueue --strict. It is the run's own reading with nothing sent, so it
// validates each record and settles repeated keys exactly as the run does, in the same memory. Config.Rejects is
// given every problem; the report lists the first ones and counts them all. Its Files hold each file's lines and
// the records read and rejected.
func Check(ctx context.Context, cfg Config) (*Report, error) {
	cfg.ChunkRows = cmp.Or(cfg.ChunkRows, DefaultChunkRows)
	cfg.ChunkBytes = cmp.Or(cfg.ChunkBytes, DefaultChunkBytes)
	if err := checkDir(cfg.Dir); err != nil {
		return nil, err
	}
	rep := &Report{}
	for _, k := range record.Kinds {
		r, fileErr, err := readFile(ctx, cfg, k, &feed{}, nil)
		if ctx.Err() != nil {
			err = fmt.Errorf("interrupted while checking %s: %w", k.FileName(), ctx.Err())
		}
		if err == nil {
			err = rep.addProblems(k, fileErr, r, cfg.Rejects)
			f := File{Kind: k.String(), File: k.FileName(), Lines: int64(r.lines), Blank: int64(r.blank), Counts: r.counts}
			if fileErr != nil {
				f.Error = fileErr.Error()
			}
			rep.Files = append(rep.Files, f)
		}
		r.problems.close()
		r.dups.close()
		if err != nil {
			return nil, err
		}
	}
	return rep, nil
}

// checkDir refuses a folder that is missing, or holds neither file: that is a wrong path rather than a run with
// problems, so no run starts. A folder holding one of the files runs, and reports the other as a file problem.
func checkDir(dir string) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		abs = dir
	}
	st, err := os.Stat(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("folder %s does not exist", abs)
	case err != nil:
		return fmt.Errorf("cannot read folder %s: %w", abs, errors.Unwrap(err))
	case !st.IsDir():
		return fmt.Errorf("%s is not a folder; give the folder that holds %s", abs, fileNames(" and "))
	}
	for _, k := range record.Kinds {
		if _, err := os.Lstat(filepath.Join(dir, k.FileName())); !errors.Is(err, os.ErrNotExist) {
			return nil
		}
	}
	return fmt.Errorf("folder %s holds neither %s", abs, fileNames(" nor "))
}

// fileNames names the files a folder holds, joined by sep.
func fileNames(sep string) string {
	names := make([]string, len(record.Kinds))
	for i, k := range record.Kinds {
		names[i] = k.FileName()
	}
	return strings.Join(names, sep)
}
