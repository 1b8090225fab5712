package coordinator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"hpnorton/internal/ledger"
	"hpnorton/internal/record"
	"hpnorton/repo"
)

// runParams is what a run keeps in MySQL, in its record, so that it can be finished from any machine after its
// enqueuer died or Redis lost its queue: the files it reads, the settings that cut them into tasks, and the counts
// before it started. The same files cut the same way give the same tasks under the same IDs, repeated keys
// settled alike, so a resume finds which of them committed (import_tasks) and sends the others again.
type runParams struct {
	Dir        string      `json:"dir"`
	Files      []fileStamp `json:"files"`
	ChunkRows  int         `json:"chunk_rows"`
	ChunkBytes int         `json:"chunk_bytes"`
	Update     bool        `json:"update,omitempty"`
	Before     []int64     `json:"before"`
}

// fileStamp tells whether a file is the one a run started with: its size and modification time, as rsync and
// make judge a file unchanged. Size -1 is a file that was missing.
type fileStamp struct {
	Name    string `json:"name"`
	Size    int64  `json:"size"`
	ModTime int64  `json:"mtime_ns"`
}

// stampFiles stamps kind by kind the files of dir.
func stampFiles(dir string) []fileStamp {
	stamps := make([]fileStamp, len(record.Kinds))
	for i, k := range record.Kinds {
		stamps[i] = fileStamp{Name: k.FileName(), Size: -1}
		if st, err := os.Stat(filepath.Join(dir, k.FileName())); err == nil {
			stamps[i].Size, stamps[i].ModTime = st.Size(), st.ModTime().UnixNano()
		}
	}
	return stamps
}

// saveParams keeps a starting run's parameters in its record.
func saveParams(ctx context.Context, d Deps, cfg Config, before []int64) error {
	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		dir = cfg.Dir
	}
	b, err := json.Marshal(runParams{Dir: dir, Files: stampFiles(cfg.Dir), ChunkRows: cfg.ChunkRows, ChunkBytes: cfg.ChunkBytes, Update: cfg.Update, Before: before})
	if err != nil {
		return fmt.Errorf("coordinator: encode the run's parameters: %w", err)
	}
	return d.Repo.SaveRunParams(ctx, cfg.RunID, b)
}

// ErrCannotResume means a run named for a resume cannot be carried on: unknown, finished, or its files changed.
var ErrCannotResume = errors.New("cannot resume the run")

// resume prepares cfg to carry on the run cfg.RunID: its folder (unless cfg.Dir names one), chunking and mode as
// it started, its number, its counts before, and the tasks that committed already.
func resume(ctx context.Context, d Deps, cfg Config) (Config, uint64, []int64, map[string]repo.Written, error) {
	no, raw, finished, err := d.Repo.Run(ctx, cfg.RunID)
	switch {
	case errors.Is(err, repo.ErrNoRun):
		return cfg, 0, nil, nil, fmt.Errorf("%w %s: this database holds no such run (pruned after --keep-runs, or another database)", ErrCannotResume, cfg.RunID)
	case err != nil:
		return cfg, 0, nil, nil, err
	case finished:
		return cfg, 0, nil, nil, fmt.Errorf("%w %s: it finished; its results are under %s while they are kept", ErrCannotResume, cfg.RunID, ledger.ResultsKey(cfg.RunID))
	case raw == nil:
		return cfg, 0, nil, nil, fmt.Errorf("%w %s: it stopped before it had counted the tables; run the import again", ErrCannotResume, cfg.RunID)
	}
	var p runParams
	if err := json.Unmarshal(raw, &p); err != nil {
		return cfg, 0, nil, nil, fmt.Errorf("coordinator: read the parameters of run %s: %w", cfg.RunID, err)
	}
	if len(p.Files) != len(record.Kinds) {
		return cfg, 0, nil, nil, fmt.Errorf("%w %s: its record names %d files, and this version reads %d", ErrCannotResume, cfg.RunID, len(p.Files), len(record.Kinds))
	}
	if cfg.Dir == "" {
		cfg.Dir = p.Dir
	}
	for i, now := range stampFiles(cfg.Dir) {
		if now != p.Files[i] {
			return cfg, 0, nil, nil, fmt.Errorf("%w %s: %s changed since the run started (size or modification time), so its tasks would not be the same; import it as a new run", ErrCannotResume, cfg.RunID, filepath.Join(cfg.Dir, now.Name))
		}
	}
	cfg.ChunkRows, cfg.ChunkBytes, cfg.Update = p.ChunkRows, p.ChunkBytes, p.Update
	committed, err := d.Repo.CommittedTasks(ctx, cfg.RunID)
	if err != nil {
		return cfg, 0, nil, nil, err
	}
	return cfg, no, p.Before, committed, nil
}
