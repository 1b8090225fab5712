// Package ledger keeps a run's book in Redis: the rows of each task until a worker has loaded them, the outcome of
// each finished task, a wake-up list the coordinator blocks on, and the run's final results. It also announces new
// tasks to idle workers. Every Redis key and channel is built by a function here.
//
// A task's outcome is stored under its task ID in a hash, so a task that asynq delivers twice overwrites its own
// entry instead of adding one; the counts in it come from MySQL's record of the task, so both deliveries store the
// same numbers.
package ledger

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"hpnorton/internal/record"
)

// keyTTL bounds how long a run's working keys outlive a coordinator that died before cleaning them up. Every
// recorded outcome renews it, and so does the waiting
// coordinator (Touch).
const keyTTL = 48 * time.Hour

// ResultsKey is where a run's results JSON is stored: hpnorton:results:<run id>. It expires after the retention
// Finish is given.
func ResultsKey(runID string) string { return "hpnorton:results:" + runID }

// outcomesKey is the hash of task ID to outcome JSON for one kind of a run.
func outcomesKey(runID string, k record.Kind) string {
	return "hpnorton:run:" + runID + ":outcomes:" + k.String()
}

// progressKey is the hash of kind to rows loaded by the run's finished tasks.
func progressKey(runID string) string { return "hpnorton:run:" + runID + ":progress" }

// announceChannel is the Pub/Sub channel on which the enqueuer announces new tasks to the workers of a queue.
func announceChannel(queue string) string { return "hpnorton:announce:" + queue }

// AsynqQueueKeys are asynq's pending and paused keys of queue (asynq v0.26, internal/base), the first two keys of
// the script by which its workers take a task: how a worker knows that script among asynq's commands.
func AsynqQueueKeys(queue string) (pending, paused string) {
	prefix := "asynq:{" + queue + "}:"
	return prefix + "pending", prefix + "paused"
}

// rowsKey is the string holding one task's rows until its outcome is recorded. The rows travel beside the asynq
// task, not in its payload: asynq's scripts copy a payload several times inside Redis, which cost Redis 0.30
// CPU-seconds for 60 MB of payloads against 0.04 for the same bytes through SET, GET and DEL. The key is made
// from the run and the task, so a payload cannot point a worker at any other key.
func rowsKey(runID, taskID string) string { return "hpnorton:run:" + runID + ":rows:" + taskID }

// ErrNoRows means a task's rows are not in Redis: they were loaded and dropped, they expired, or they were
// deleted.
var ErrNoRows = errors.New("ledger: the task's rows are not in Redis")

// PutRows stores a task's rows until its outcome is recorded, or for keyTTL at most.
func (l *Ledger) PutRows(ctx context.Context, runID, taskID string, rows []byte) error {
	if err := l.rdb.Set(ctx, rowsKey(runID, taskID), rows, keyTTL).Err(); err != nil {
		return fmt.Errorf("ledger: store the rows of %s: %w", taskID, err)
	}
	return nil
}

// Rows reads a task's rows, or returns ErrNoRows.
func (l *Ledger) Rows(ctx context.Context, runID, taskID string) ([]byte, error) {
	b, err := l.rdb.Get(ctx, rowsKey(runID, taskID)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("%w: %s", ErrNoRows, taskID)
	}
	if err != nil {
		return nil, fmt.Errorf("ledger: read the rows of %s: %w", taskID, err)
	}
	return b, nil
}

// wakeKey is the list a worker pushes to after recording an outcome, so the coordinator wakes at once.
func wakeKey(runID string) string { return "hpnorton:run:" + runID + ":wake" }

// Outcome is what one task did with its rows. Its counts hold Added and Present, which sum to the task's rows;
// Read and Rejected belong to the enqueuer's reading of the file.
type Outcome struct {
	TaskID    string `json:"task_id"`
	FirstLine int    `json:"first_line"`
	record.Counts
	// Worker names the process that ran the task (host:pid) and Concurrency its asynq concurrency.
	Worker      string `json:"worker"`
	Concurrency int    `json:"concurrency"`
	// Redelivered is true when an earlier delivery had already committed the rows.
	Redelivered bool `json:"redelivered,omitempty"`
}

// Ledger reads and writes run state in one Redis database.
type Ledger struct {
	rdb redis.UniversalClient
}

// New returns a Ledger on the given client; the caller keeps ownership of the client.
func New(rdb redis.UniversalClient) *Ledger { return &Ledger{rdb: rdb} }

// recordScript stores a task's outcome, adds its rows to the run's progress the first time only, drops the task's
// rows and wakes the coordinator, all at once: a redelivered task overwrites its outcome with the same counts and
// adds nothing, and rows are gone only once their outcome is recorded.
//
// KEYS: outcomes hash, progress hash, wake list, rows. ARGV: task ID, outcome JSON, kind, rows loaded, TTL in
// seconds.
var recordScript = redis.NewScript(`
if redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) == 1 then
	redis.call('HINCRBY', KEYS[2], ARGV[3], ARGV[4])
end
redis.call('DEL', KEYS[4])
redis.call('RPUSH', KEYS[3], '')
for i = 1, 3 do redis.call('EXPIRE', KEYS[i], ARGV[5]) end
return 0
`)

// Record stores a task's outcome, drops its rows and wakes the run's coordinator. It is safe to call again for the
// same task.
func (l *Ledger) Record(ctx context.Context, runID string, k record.Kind, o Outcome) error {
	b, err := json.Marshal(o)
	if err != nil {
		return fmt.Errorf("ledger: encode outcome: %w", err)
	}
	keys := []string{outcomesKey(runID, k), progressKey(runID), wakeKey(runID), rowsKey(runID, o.TaskID)}
	err = recordScript.Run(ctx, l.rdb, keys, o.TaskID, b, k.String(), o.Added+o.Present, int(keyTTL.Seconds())).Err()
	if err != nil {
		return fmt.Errorf("ledger: record outcome of %s: %w", o.TaskID, err)
	}
	return nil
}

// Announce tells the workers of queue that a task waits there, so that an idle one looks at once rather than at
// its next poll. Nothing is stored: a worker that is not listening finds the task at its next poll.
func (l *Ledger) Announce(ctx context.Context, queue string) error {
	if err := l.rdb.Publish(ctx, announceChannel(queue), "").Err(); err != nil {
		return fmt.Errorf("ledger: announce a task: %w", err)
	}
	return nil
}

// Announcements listens for Announce's messages on queue. The caller closes it; go-redis subscribes again after a
// lost connection, and what was announced meanwhile is missed.
func (l *Ledger) Announcements(ctx context.Context, queue string) *redis.PubSub {
	return l.rdb.Subscribe(ctx, announceChannel(queue))
}

// Wake wakes the run's coordinator without recording anything, so that it looks at the run's state again.
func (l *Ledger) Wake(ctx context.Context, runID string) error {
	_, err := l.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		wake(ctx, p, runID)
		return nil
	})
	if err != nil {
		return fmt.Errorf("ledger: wake: %w", err)
	}
	return nil
}

// wake queues a wake-up for the run's coordinator; Wait pops it.
func wake(ctx context.Context, p redis.Pipeliner, runID string) {
	p.RPush(ctx, wakeKey(runID), "")
	p.Expire(ctx, wakeKey(runID), keyTTL)
}

// Done is how far one kind of a run has got: its tasks that recorded an outcome, and the rows they loaded.
type Done struct {
	Tasks int
	Rows  int64
}

// Finished returns how far each kind of the run has got, in record.Kinds order.
func (l *Ledger) Finished(ctx context.Context, runID string) ([]Done, error) {
	tasks := make([]*redis.IntCmd, len(record.Kinds))
	var rows *redis.SliceCmd
	_, err := l.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		fields := make([]string, len(record.Kinds))
		for i, k := range record.Kinds {
			tasks[i] = p.HLen(ctx, outcomesKey(runID, k))
			fields[i] = k.String()
		}
		rows = p.HMGet(ctx, progressKey(runID), fields...)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("ledger: count finished tasks: %w", err)
	}
	done := make([]Done, len(tasks))
	for i, c := range tasks {
		done[i].Tasks = int(c.Val())
		if v, ok := rows.Val()[i].(string); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("ledger: progress of %s: %w", record.Kinds[i], err)
			}
			done[i].Rows = n
		}
	}
	return done, nil
}

// Wait blocks until a worker records an outcome for the run or the timeout passes. It returns false on timeout.
// A wake-up may be stale, so the caller counts finished tasks after every return.
func (l *Ledger) Wait(ctx context.Context, runID string, timeout time.Duration) (bool, error) {
	var err error
	if timeout < time.Second {
		// go-redis rounds BLPOP's timeout up to a whole second. Redis takes a decimal one (from 6.0), and the
		// connection's read timeout, 3 s unless the URL sets it, outlasts this one. A timeout of 0 would block
		// for ever: the wait is a millisecond at least.
		secs := max(timeout, time.Millisecond).Seconds()
		err = l.rdb.Do(ctx, "blpop", wakeKey(runID), strconv.FormatFloat(secs, 'f', 3, 64)).Err()
	} else {
		err = l.rdb.BLPop(ctx, timeout, wakeKey(runID)).Err()
	}
	switch {
	case errors.Is(err, redis.Nil):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("ledger: wait for tasks: %w", err)
	}
	return true, nil
}

// Recorded reports whether a task of the run has recorded its outcome.
func (l *Ledger) Recorded(ctx context.Context, runID string, k record.Kind, taskID string) (bool, error) {
	ok, err := l.rdb.HExists(ctx, outcomesKey(runID, k), taskID).Result()
	if err != nil {
		return false, fmt.Errorf("ledger: look up the outcome of %s: %w", taskID, err)
	}
	return ok, nil
}

// Outcomes returns every recorded outcome of one kind of a run, in no particular order.
func (l *Ledger) Outcomes(ctx context.Context, runID string, k record.Kind) ([]Outcome, error) {
	m, err := l.rdb.HGetAll(ctx, outcomesKey(runID, k)).Result()
	if err != nil {
		return nil, fmt.Errorf("ledger: read outcomes: %w", err)
	}
	out := make([]Outcome, 0, len(m))
	for id, v := range m {
		var o Outcome
		if err := json.Unmarshal([]byte(v), &o); err != nil {
			return nil, fmt.Errorf("ledger: outcome of %s: %w", id, err)
		}
		out = append(out, o)
	}
	return out, nil
}

// Finish stores the run's results JSON under ResultsKey for keep, and deletes the run's working keys: the results
// hold everything worth keeping.
func (l *Ledger) Finish(ctx context.Context, runID string, results []byte, keep time.Duration) error {
	if keep <= 0 {
		return fmt.Errorf("ledger: results must be kept for a positive time, got %s", keep)
	}
	_, err := l.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, ResultsKey(runID), results, keep)
		p.Del(ctx, append(workingKeys(runID), aliveKey(runID))...)
		return nil
	})
	if err != nil {
		return fmt.Errorf("ledger: store results: %w", err)
	}
	return nil
}

// workingKeys are the keys a run writes while it runs.
// aliveKey exists while the run's enqueuer waits for it (Heartbeat); cancelKey asks that enqueuer to stop.
func aliveKey(runID string) string  { return "hpnorton:run:" + runID + ":alive" }
func cancelKey(runID string) string { return "hpnorton:run:" + runID + ":cancel" }

// aliveFor is how long a heartbeat lasts; the enqueuer beats about every half second.
const aliveFor = 2 * time.Second

// Heartbeat says that the run's enqueuer is alive, and reports whether the run was cancelled.
func (l *Ledger) Heartbeat(ctx context.Context, runID string) (cancelled bool, err error) {
	var exists *redis.IntCmd
	_, err = l.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, aliveKey(runID), 1, aliveFor)
		exists = p.Exists(ctx, cancelKey(runID))
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("ledger: heartbeat: %w", err)
	}
	return exists.Val() > 0, nil
}

// EndHeartbeat says at once that the run's enqueuer no longer waits for it.
func (l *Ledger) EndHeartbeat(ctx context.Context, runID string) error {
	return l.rdb.Del(ctx, aliveKey(runID)).Err()
}

// Alive reports whether the run's enqueuer has beaten within aliveFor.
func (l *Ledger) Alive(ctx context.Context, runID string) (bool, error) {
	n, err := l.rdb.Exists(ctx, aliveKey(runID)).Result()
	if err != nil {
		return false, fmt.Errorf("ledger: look for the run's enqueuer: %w", err)
	}
	return n > 0, nil
}

// Cancel asks the run's enqueuer, if one waits for it, to stop at its next heartbeat. The request outlasts any
// heartbeat, and then expires.
func (l *Ledger) Cancel(ctx context.Context, runID string) error {
	if err := l.rdb.Set(ctx, cancelKey(runID), 1, time.Minute).Err(); err != nil {
		return fmt.Errorf("ledger: cancel: %w", err)
	}
	return nil
}

// Drop deletes everything the ledger keeps of a run but its results and a cancel request: its working keys, its
// heartbeat and the rows of tasks not loaded.
func (l *Ledger) Drop(ctx context.Context, runID string) error {
	keys := append(workingKeys(runID), aliveKey(runID))
	iter := l.rdb.Scan(ctx, 0, rowsKey(runID, "*"), 1000).Iterator()
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	if err := iter.Err(); err != nil {
		return fmt.Errorf("ledger: find the run's rows: %w", err)
	}
	if err := l.rdb.Del(ctx, keys...).Err(); err != nil {
		return fmt.Errorf("ledger: drop the run's keys: %w", err)
	}
	return nil
}

func workingKeys(runID string) []string {
	keys := []string{wakeKey(runID), progressKey(runID)}
	for _, k := range record.Kinds {
		keys = append(keys, outcomesKey(runID, k))
	}
	return keys
}

// Touch renews the expiry of the run's working keys, so that a run still waiting keeps them however long its
// tasks take.
func (l *Ledger) Touch(ctx context.Context, runID string) error {
	_, err := l.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, key := range workingKeys(runID) {
			p.Expire(ctx, key, keyTTL)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("ledger: renew the run's keys: %w", err)
	}
	return nil
}

// Used reports whether Redis holds anything of the run: its results, outcomes or wake-ups.
func (l *Ledger) Used(ctx context.Context, runID string) (bool, error) {
	n, err := l.rdb.Exists(ctx, append(workingKeys(runID), ResultsKey(runID))...).Result()
	if err != nil {
		return false, fmt.Errorf("ledger: look up run %s: %w", runID, err)
	}
	return n > 0, nil
}

// Results reads a run's stored results JSON.
func (l *Ledger) Results(ctx context.Context, runID string) ([]byte, error) {
	b, err := l.rdb.Get(ctx, ResultsKey(runID)).Bytes()
	if err != nil {
		return nil, fmt.Errorf("ledger: read results of %s: %w", runID, err)
	}
	return b, nil
}
