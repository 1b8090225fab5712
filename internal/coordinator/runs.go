package coordinator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hibiken/asynq"

	"hpnorton/internal/record"
	"hpnorton/repo"
	"hpnorton/tasks"
)

// Run states, as List gives them.
const (
	StateRunning     = "running"     // its enqueuer waits for it
	StateInterrupted = "interrupted" // no enqueuer waits for it, and it did not end: enqueue --resume finishes it
	StateFinished    = "finished"
	StateCancelled   = "cancelled"
)

// RunInfo is one run as List and Cancel report it: its counts are its committed tasks', so far.
type RunInfo struct {
	RunID     string    `json:"run_id"`
	State     string    `json:"state"`
	StartedAt time.Time `json:"started_at"`
	Dir       string    `json:"dir,omitempty"`
	Files     []RunFile `json:"files"`
}

// RunFile is what a run's committed tasks did with one file's rows.
type RunFile struct {
	File    string `json:"file"`
	Tasks   int    `json:"tasks"`
	Added   int64  `json:"added"`
	Present int64  `json:"present"`
}

// List returns the newest n runs this database keeps, newest first, with their state and counts so far.
func List(ctx context.Context, d Deps, n int) ([]RunInfo, error) {
	recs, err := d.Repo.Runs(ctx, n, "")
	if err != nil {
		return nil, err
	}
	out := make([]RunInfo, 0, len(recs))
	for _, r := range recs {
		info, err := runInfo(ctx, d, r)
		if err != nil {
			return nil, err
		}
		out = append(out, info)
	}
	return out, nil
}

func runInfo(ctx context.Context, d Deps, r repo.RunRecord) (RunInfo, error) {
	info := RunInfo{RunID: r.RunID, StartedAt: r.StartedAt, State: StateInterrupted}
	switch {
	case r.Cancelled:
		info.State = StateCancelled
	case r.Ended:
		info.State = StateFinished
	default:
		alive, err := d.Ledger.Alive(ctx, r.RunID)
		if err != nil {
			return RunInfo{}, err
		}
		if alive {
			info.State = StateRunning
		}
	}
	var p runParams
	if r.Params != nil && json.Unmarshal(r.Params, &p) == nil {
		info.Dir = p.Dir
	}
	for _, k := range record.Kinds {
		t := r.Tasks[k]
		info.Files = append(info.Files, RunFile{File: k.FileName(), Tasks: t.Tasks, Added: t.Added, Present: t.Present})
	}
	return info, nil
}

// ErrCannotCancel means the run named cannot be cancelled: unknown, or ended already.
var ErrCannotCancel = errors.New("cannot cancel the run")

// Cancel ends a run that has not ended: a live enqueuer of it stops, its tasks that wait in the queue are
// removed, those running finish, and what was stored stays. Nothing of the run stays in Redis but the request
// to stop, which expires within a minute; MySQL keeps the run's record, marked cancelled, for its retention. It
// returns the run with the counts of the tasks that committed.
func Cancel(ctx context.Context, d Deps, queue, runID string) (RunInfo, error) {
	_, _, ended, err := d.Repo.Run(ctx, runID)
	switch {
	case errors.Is(err, repo.ErrNoRun):
		return RunInfo{}, fmt.Errorf("%w %s: this database holds no such run", ErrCannotCancel, runID)
	case err != nil:
		return RunInfo{}, err
	case ended:
		return RunInfo{}, fmt.Errorf("%w %s: it has ended", ErrCannotCancel, runID)
	}
	// The enqueuer first, so that it sends nothing more: it stops at its next heartbeat and ends it, or, dead,
	// its last heartbeat expires. Then the queue, until no task of the run is left in it.
	if err := d.Ledger.Cancel(ctx, runID); err != nil {
		return RunInfo{}, err
	}
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(50 * time.Millisecond) {
		alive, err := d.Ledger.Alive(ctx, runID)
		if err != nil {
			return RunInfo{}, err
		}
		if !alive {
			break
		}
		if time.Now().After(deadline) {
			return RunInfo{}, fmt.Errorf("coordinator: the enqueuer of run %s did not stop within a minute", runID)
		}
	}
	qname := tasks.QueueFor(queue, d.Repo.ID)
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(100 * time.Millisecond) {
		left, err := removeTasks(d.Inspector, qname, runID)
		if err != nil {
			return RunInfo{}, err
		}
		if left == 0 {
			break
		}
		if time.Now().After(deadline) {
			return RunInfo{}, fmt.Errorf("coordinator: %d tasks of run %s still run after 2 minutes; cancel again once they end", left, runID)
		}
	}
	if err := d.Repo.CancelRun(ctx, runID); err != nil {
		return RunInfo{}, err
	}
	if err := d.Ledger.Drop(ctx, runID); err != nil {
		return RunInfo{}, err
	}
	recs, err := d.Repo.Runs(ctx, 1, runID)
	if err != nil {
		return RunInfo{}, err
	}
	if len(recs) == 0 {
		return RunInfo{}, fmt.Errorf("%w %s: its record is gone", ErrCannotCancel, runID)
	}
	return runInfo(ctx, d, recs[0])
}

// removeTasks deletes the run's tasks that wait in the queue, in any state but running, and returns how many of
// its tasks are still there: the running ones, which end on their own.
func removeTasks(in *asynq.Inspector, queue, runID string) (left int, err error) {
	lists := []func(string, ...asynq.ListOption) ([]*asynq.TaskInfo, error){
		in.ListPendingTasks, in.ListScheduledTasks, in.ListRetryTasks, in.ListArchivedTasks, in.ListActiveTasks,
	}
	for i, list := range lists {
		// The IDs first, then the deletes, which would shift the pages under the listing.
		var ids []string
		for page := 1; ; page++ {
			infos, err := list(queue, asynq.PageSize(1000), asynq.Page(page))
			if errors.Is(err, asynq.ErrQueueNotFound) {
				return 0, nil
			}
			if err != nil {
				return 0, fmt.Errorf("coordinator: list the queue's tasks: %w", err)
			}
			for _, t := range infos {
				if strings.HasPrefix(t.ID, runID+":") {
					ids = append(ids, t.ID)
				}
			}
			if len(infos) < 1000 {
				break
			}
		}
		if i == len(lists)-1 { // running
			left += len(ids)
			continue
		}
		for _, id := range ids {
			if err := in.DeleteTask(queue, id); err != nil && !errors.Is(err, asynq.ErrTaskNotFound) {
				left++ // it started meanwhile
			}
		}
	}
	return left, nil
}
