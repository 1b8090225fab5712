// Package coordinator runs one import from the enqueuer's side. It counts rows before, cuts both files into chunk
// tasks and enqueues them, waits until every task has recorded its outcome, counts rows after, and writes the run's
// results.
//
// Only the coordinator counts rows before and after. A worker that counted for itself would see other workers'
// rows land between its two counts; see lab/contention.
package coordinator

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hibiken/asynq"

	"hpnorton/internal/csvread"
	"hpnorton/internal/ledger"
	"hpnorton/internal/record"
	"hpnorton/repo"
	"hpnorton/tasks"
)

// Defaults for Config's zero values.
const (
	DefaultChunkRows  = 20000
	DefaultChunkBytes = 4 << 20
	DefaultMaxQueued  = 64
	DefaultTimeout    = time.Hour
	// DefaultKeepResults is how long a run's results key lasts in Redis. It holds the first rejected rows' values,
	// cut short, which may be personal data.
	DefaultKeepResults = 30 * 24 * time.Hour
	// DefaultKeepRuns is how long MySQL keeps a run's registration and its tasks' records, which only make a late
	// redelivery harmless; then a run starting, or a worker's hourly look, prunes them.
	DefaultKeepRuns = repo.DefaultKeepRuns
	// retryCountsFor bounds how long the before and after counts are retried while MySQL is unreachable.
	retryCountsFor = 2 * time.Minute
	// maxListedProblems bounds the problems a report lists; ProblemCount still counts every one.
	maxListedProblems = 100
	// stallAfter is how long the coordinator waits without progress before it looks for a reason.
	stallAfter = 5 * time.Second
)

// Config describes one run. Zero values take the defaults named on each field.
type Config struct {
	// Dir holds customers.csv and products.csv.
	Dir string
	// RunID names the run; empty means a new ID from the clock and random bits.
	RunID string
	// Queue is the operator's base queue name; the tasks go to tasks.QueueFor(Queue, the database's ID), which the
	// workers of the same database serve.
	Queue string
	// ChunkRows and ChunkBytes bound one task's chunk; zero means DefaultChunkRows and DefaultChunkBytes.
	ChunkRows, ChunkBytes int
	// MaxQueued bounds the run's tasks that are enqueued but not finished; zero means DefaultMaxQueued. Reading
	// pauses at the bound, so Redis holds a window of the files rather than all of them. It must exceed the
	// workers' total concurrency, or workers wait for tasks.
	MaxQueued int
	// Timeout bounds the wait for workers to finish; zero means DefaultTimeout.
	Timeout time.Duration
	// KeepResults is how long the results key lasts; zero means DefaultKeepResults.
	KeepResults time.Duration
	// KeepRuns is how long MySQL keeps the records of runs, which must outlast any run's Timeout; zero means
	// DefaultKeepRuns.
	KeepRuns time.Duration
	// Progress, when set, is called from the waiting goroutine each time tasks finish, and at least every second.
	Progress func([]FileProgress)
	// Rejects, when set, is given every problem of the run once it has finished: each file's problem, if it has
	// one, then its rejected records in line order, customers first. The report lists only the first ones.
	Rejects func(record.Problem) error
	// Logger receives progress and diagnostics; nil discards them.
	Logger *slog.Logger
	// Update is update mode: a row whose key is present takes the file's values where they differ (repo.Task).
	Update bool
	// Resume carries on the run RunID where it stopped (resume.go): Dir, when empty, and the chunking and mode
	// come from the run's record.
	Resume bool
	// ResumeCommand, when set, is the command line that resumes this run, passwords masked; a run that stops
	// early gives it, and says that --cancel in its place ends the run.
	ResumeCommand string
	// WorkerCommand, when set, is the command line that starts a worker for this run's database, passwords
	// masked; the hint when no worker serves it gives it whole, so that a copied command finds the same servers.
	WorkerCommand string

	// falsePositives, when set, replaces seenFalsePositives, so that tests can make the filter flag most keys.
	falsePositives float64
	// atCount, when set, is called just before the run counts the tables, before its first task or after its last,
	// and what it returns just after, so that tests can pin the instant of each count.
	atCount func(after bool) (done func())
}

// Deps are the connections a run uses; the caller owns and closes them.
type Deps struct {
	Repo      *repo.DB
	Ledger    *ledger.Ledger
	Client    *asynq.Client
	Inspector *asynq.Inspector
}

// ErrStalled means the run could not finish: no worker serves the queue, a task failed for good, or the timeout
// passed.
var ErrStalled = errors.New("run did not finish")

// ErrTimedOut means the run did not finish within Config.Timeout. It is an ErrStalled.
var ErrTimedOut = fmt.Errorf("%w", ErrStalled)

// ErrCancelled means the run was cancelled while it waited (Cancel).
var ErrCancelled = errors.New("the run was cancelled (enqueue --cancel); its queued tasks were removed, and what was stored stays")

// ErrRunIDUsed means the run ID given in Config was used by an earlier run.
var ErrRunIDUsed = errors.New("the run ID was used by an earlier run; choose another or leave it empty")

// errTimeout is the cause of the context a run waits under when Config.Timeout passes, which tells it apart from
// the caller's own cancellation.
var errTimeout = errors.New("timeout")

// NewRunID returns a sortable, unique run ID such as 20261127T034500Z_9f3a1c2e. It holds no "-": the asynq
// monitor shows a task ID only up to its first "-", as it shortens UUIDs, and a task ID starts with its run's, so
// two runs of the same second looked alike there.
func NewRunID() string {
	var b [4]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	return time.Now().UTC().Format("20060102T150405Z") + "_" + hex.EncodeToString(b[:])
}

// FileProgress is how far one file of a run has got.
type FileProgress struct {
	Kind record.Kind
	// Rows counts the records that finished tasks have read, and the records rejected; Enqueued the records read so
	// far.
	Rows, Enqueued int64
	// Loading counts the rows that tasks under way have written and not yet committed: known only where the MySQL
	// account has the PROCESS privilege and the workers load with LOAD DATA, and 0 elsewhere. Rows + Loading never
	// goes back from one report to the next (loading.progress).
	Loading int64
	// Total is the file's record count when Exact, once the whole file has been read; until then it estimates the
	// count from the bytes read so far and the file's size.
	Total int64
	Exact bool
	// Done is true once every task of the file has finished.
	Done bool
}

// feed follows the reading of one file, for progress reports. The reading goroutine writes it and the waiter
// reads it.
type feed struct {
	// rows counts the records read, rejected those rejected; bytes the bytes read of size.
	rows, rejected, bytes, size atomic.Int64
	read                        atomic.Bool // the whole file has been read
}

// enqueued is what the reading of one file reports when it ends.
type enqueued struct {
	read    *fileRead
	fileErr error // a problem with the whole file; the run goes on without it
	err     error // an infrastructure failure; the run stops
}

// Run imports both files of cfg.Dir and returns the finished run's report, which it has also stored under the
// results key. Rejected records and unreadable files are in the report, not in the error; an error means the run
// could not be carried out.
func Run(ctx context.Context, d Deps, cfg Config) (*Report, error) {
	cfg.RunID = cmp.Or(cfg.RunID, NewRunID())
	cfg.ChunkRows = cmp.Or(cfg.ChunkRows, DefaultChunkRows)
	cfg.ChunkBytes = cmp.Or(cfg.ChunkBytes, DefaultChunkBytes)
	cfg.MaxQueued = cmp.Or(cfg.MaxQueued, DefaultMaxQueued)
	cfg.Timeout = cmp.Or(cfg.Timeout, DefaultTimeout)
	cfg.KeepResults = cmp.Or(cfg.KeepResults, DefaultKeepResults)
	cfg.KeepRuns = cmp.Or(cfg.KeepRuns, DefaultKeepRuns)
	var runNo uint64
	var before []int64
	var committed map[string]repo.Written
	if cfg.Resume {
		var err error
		if cfg, runNo, before, committed, err = resume(ctx, d, cfg); err != nil {
			return nil, err
		}
	}
	if err := cfg.check(); err != nil {
		return nil, err
	}
	if err := checkDir(cfg.Dir); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("run", cfg.RunID)
	queue := tasks.QueueFor(cfg.Queue, d.Repo.ID)
	// Pruning needs no process of its own: each run as it starts, and each worker every hour, prunes the runs
	// whose time has passed.
	if n, err := d.Repo.Prune(ctx); err != nil {
		log.Warn("cannot prune old runs' records; the next run tries again", "err", err)
	} else if n > 0 {
		log.Info("pruned the records of old runs", "runs", n)
	}
	if !cfg.Resume {
		var err error
		if runNo, err = startRun(ctx, d, cfg.RunID, cfg.KeepRuns); err != nil {
			return nil, err
		}
		if before, err = countAt(ctx, d.Repo, cfg, log, false); err != nil {
			return nil, err
		}
		if err := saveParams(ctx, d, cfg, before); err != nil {
			return nil, err
		}
	}

	start := time.Now()
	if cfg.Resume {
		log.Info("run resumed", "dir", cfg.Dir, "queue", queue, "database", d.Repo.ID, "committed_tasks", len(committed))
	} else {
		log.Info("run started", "dir", cfg.Dir, "queue", queue, "database", d.Repo.ID)
	}
	ctx, cancel := context.WithTimeoutCause(ctx, cfg.Timeout, errTimeout)

	// Both files are read and enqueued at once, and workers start on the first chunks while later ones are read.
	// The waiter follows finished tasks from the start, so a file's time is taken when its last task finishes,
	// even while the other file is still being enqueued.
	enq := make(chan enqueued, len(record.Kinds))
	feeds := map[record.Kind]*feed{}
	queued := newSlots(cfg.MaxQueued)
	sent := &taskIDs{ids: map[string]record.Kind{}}
	var wg sync.WaitGroup
	for _, k := range record.Kinds {
		fd := &feed{}
		feeds[k] = fd
		wg.Go(func() {
			r, fileErr, err := readFile(ctx, cfg, k, fd, sender(d, cfg, queue, runNo, queued, sent, committed))
			enq <- enqueued{read: r, fileErr: fileErr, err: err}
			// Wake the waiter, which may be blocked on the ledger, to take in the file's task count.
			if err := d.Ledger.Wake(ctx, cfg.RunID); err != nil && ctx.Err() == nil {
				log.Warn("cannot wake the waiter; it looks again within a second", "err", err)
			}
		})
	}
	w := waiter{d: d, cfg: cfg, queue: queue, log: log, start: start, enqueued: enq, feeds: feeds, queued: queued, sent: sent,
		total: map[record.Kind]enqueued{}, done: map[record.Kind]time.Duration{}, loading: &loading{repo: d.Repo, runNo: runNo, log: log}}
	// Cancelling first stops a reading still under way when the run ends early, so the wait is short; then what
	// the readings kept on disk goes.
	defer func() {
		cancel()
		wg.Wait()
		close(enq)
		for e := range enq {
			w.total[e.read.kind] = e
		}
		for _, e := range w.total {
			e.read.problems.close()
			e.read.dups.close()
		}
		// Nothing of this enqueuer sends any more: a cancel waiting for it can go on, and a list shows the run
		// as it is left.
		_ = d.Ledger.EndHeartbeat(context.WithoutCancel(ctx), cfg.RunID)
	}()
	if err := w.wait(ctx); err != nil {
		if errors.Is(err, ErrStalled) || errors.Is(err, ErrCancelled) || ctx.Err() != nil { // said already
			return nil, err
		}
		// Redis or MySQL went away under the wait. Workers retry their tasks until it is back, but this run's
		// own state may be gone with it, so the run ends here and says what is safe.
		return nil, fmt.Errorf("run %s stopped waiting: %w; the rows stored so far stay%s", cfg.RunID, err, resumeHint(cfg))
	}

	rep, err := report(ctx, d, cfg, queue, log, start, before, w.done, w.total)
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(rep)
	if err != nil {
		return nil, fmt.Errorf("coordinator: encode results: %w", err)
	}
	if err := d.Ledger.Finish(ctx, cfg.RunID, b, cfg.KeepResults); err != nil {
		return nil, err
	}
	if err := d.Repo.FinishRun(ctx, cfg.RunID); err != nil {
		return nil, err
	}
	// No "run finished" line: the report, which the command prints, says it, and says it once.
	return rep, nil
}

// check refuses settings that no run can work with.
func (cfg Config) check() error {
	switch {
	case cfg.ChunkRows < 1 || cfg.ChunkRows > tasks.MaxChunkRecords:
		return fmt.Errorf("coordinator: chunk rows must be 1 to %d, got %d", tasks.MaxChunkRecords, cfg.ChunkRows)
	case cfg.ChunkBytes < csvread.MaxRecordBytes || cfg.ChunkBytes > tasks.MaxChunkBytes:
		return fmt.Errorf("coordinator: chunk bytes must be %d to %d, got %d", csvread.MaxRecordBytes, tasks.MaxChunkBytes, cfg.ChunkBytes)
	case cfg.KeepRuns < cfg.Timeout:
		// A run's registration is what lets its tasks write; pruned mid-run, the rest of its tasks would fail.
		return fmt.Errorf("coordinator: runs must be kept at least as long as the timeout (%s), got %s", cfg.Timeout, cfg.KeepRuns)
	}
	return nil
}

// counts counts each table's rows, in record.Kinds order, the tables at once: a COUNT(*) reads the whole table,
// and the after counts are the last thing a run waits for. One table after the other, they made most of the 43 ms
// between a run's last task and its results at 2 × 300,000 rows; at once, that is 31 ms. Each retries while MySQL
// is unreachable, as the workers' tasks do, for up to retryCountsFor: all the rows may have landed, and only the
// count is missing.
func counts(ctx context.Context, db *repo.DB, log *slog.Logger) ([]int64, error) {
	n := make([]int64, len(record.Kinds))
	errs := make([]error, len(record.Kinds))
	var wg sync.WaitGroup
	for i, k := range record.Kinds {
		wg.Go(func() { n[i], errs[i] = count(ctx, db, k, log) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err // the first: when MySQL is down, both say the same
		}
	}
	return n, nil
}

// countAt is counts between the hooks of cfg.atCount.
func countAt(ctx context.Context, db *repo.DB, cfg Config, log *slog.Logger, after bool) ([]int64, error) {
	if cfg.atCount != nil {
		defer cfg.atCount(after)()
	}
	return counts(ctx, db, log)
}

// count counts kind k's rows, retrying while MySQL is unreachable (counts).
func count(ctx context.Context, db *repo.DB, k record.Kind, log *slog.Logger) (int64, error) {
	deadline := time.Now().Add(retryCountsFor)
	delay := 500 * time.Millisecond
	for {
		c, err := db.Count(ctx, k)
		if err == nil {
			return c, nil
		}
		if !repo.Transient(err) || time.Now().Add(delay).After(deadline) {
			return 0, err
		}
		log.Warn("cannot count the rows; trying again", "table", k.Table(), "in", delay, "err", err)
		select {
		case <-ctx.Done():
			return 0, err
		case <-time.After(delay):
		}
		delay = min(2*delay, 10*time.Second)
	}
}

// taskIDs holds the IDs of the tasks a run has enqueued, with their kinds, so that a stalled run can look each one
// up.
type taskIDs struct {
	mu  sync.Mutex
	ids map[string]record.Kind
}

func (t *taskIDs) add(id string, k record.Kind) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.ids[id] = k
}

func (t *taskIDs) kind(id string) record.Kind {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.ids[id]
}

func (t *taskIDs) list() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return slices.Sorted(maps.Keys(t.ids))
}

func (t *taskIDs) remove(id string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.ids, id)
}

// startRun registers the run in MySQL and returns its number, refusing a run ID that an earlier run used. That
// run's task IDs would be found done already, in MySQL or in the ledger, and this run would report the earlier
// one's counts as its own.
func startRun(ctx context.Context, d Deps, runID string, keep time.Duration) (uint64, error) {
	used, err := d.Ledger.Used(ctx, runID)
	if err != nil {
		return 0, err
	}
	if used {
		return 0, fmt.Errorf("%w: %s", ErrRunIDUsed, runID)
	}
	no, err := d.Repo.StartRun(ctx, runID, keep)
	if errors.Is(err, repo.ErrRunExists) {
		return 0, fmt.Errorf("%w: %s", ErrRunIDUsed, runID)
	}
	return no, err
}

// sender returns the function that sends a chunk of rows as one task of the run, waiting first for a free slot
// among the MaxQueued tasks that may be queued at once.
//
// A resumed run does not send the tasks that committed already (committed): it takes their slot and records their
// outcome from MySQL, as the worker that committed them may not have, or Redis may have lost it.
func sender(d Deps, cfg Config, queue string, runNo uint64, queued *slots, sent *taskIDs, committed map[string]repo.Written) sendFunc {
	return func(ctx context.Context, k record.Kind, firstLine, rows int, data []byte, apart bool) error {
		p := tasks.ImportPayload{DB: d.Repo.ID, RunID: cfg.RunID, RunNo: runNo, File: k.FileName(), FirstLine: firstLine, Rows: rows, Bytes: len(data), Update: cfg.Update, Apart: apart}
		t, err := tasks.NewImportTask(k, p)
		if err != nil {
			return err
		}
		if err := queued.take(ctx, k, len(data)); err != nil {
			return err
		}
		if w, ok := committed[p.TaskID(k)]; ok {
			return d.Ledger.Record(ctx, cfg.RunID, k, ledger.Outcome{TaskID: p.TaskID(k), FirstLine: firstLine, Counts: w.Counts})
		}
		// The rows go first, so that a worker finds them once it has the task.
		if err := d.Ledger.PutRows(ctx, cfg.RunID, p.TaskID(k), data); err != nil {
			return err
		}
		_, err = d.Client.EnqueueContext(ctx, t, asynq.Queue(queue))
		if errors.Is(err, asynq.ErrTaskIDConflict) && cfg.Resume {
			// A task of the interrupted run that failed for good, as one does whose rows Redis lost before it
			// was queued, runs again now that its rows are back.
			if info, ierr := d.Inspector.GetTaskInfo(queue, p.TaskID(k)); ierr == nil && info.State == asynq.TaskStateArchived {
				if ierr := d.Inspector.DeleteTask(queue, p.TaskID(k)); ierr == nil {
					_, err = d.Client.EnqueueContext(ctx, t, asynq.Queue(queue))
				}
			}
		}
		if err != nil && !errors.Is(err, asynq.ErrTaskIDConflict) {
			// A conflict means this chunk of this run is queued already, which is what we want.
			return fmt.Errorf("coordinator: enqueue %s: %w", p.TaskID(k), err)
		}
		sent.add(p.TaskID(k), k)
		// An idle worker looks at once. The task is queued either way, and a worker that misses the announcement
		// finds it at its next poll, so a failed announcement is no reason to stop the run.
		_ = d.Ledger.Announce(ctx, queue)
		return nil
	}
}

// fileType names a file's type for a person.
func fileType(m os.FileMode) string {
	switch {
	case m.IsDir():
		return "folder"
	case m&os.ModeNamedPipe != 0:
		return "named pipe (FIFO)"
	case m&os.ModeSocket != 0:
		return "socket"
	case m&os.ModeDevice != 0:
		return "device"
	}
	return "special file"
}

// fileError turns an open error into a one-line reason. The report names the file; the reason names its folder.
func fileError(dir string, err error) error {
	var perr *os.PathError
	switch {
	case errors.Is(err, os.ErrNotExist):
		if abs, err := filepath.Abs(dir); err == nil {
			dir = abs
		}
		return fmt.Errorf("file does not exist in %s", dir)
	case errors.As(err, &perr):
		return fmt.Errorf("cannot open the file: %w", perr.Err)
	}
	return err
}

// waiter follows a run's progress in the ledger until every enqueued task has recorded its outcome.
type waiter struct {
	d        Deps
	cfg      Config
	queue    string // the queue the tasks travel on
	sent     *taskIDs
	log      *slog.Logger
	start    time.Time
	enqueued <-chan enqueued               // one report per file when its enqueueing ends
	feeds    map[record.Kind]*feed         // each file's enqueueing so far
	queued   *slots                        // tasks sent and not finished; the waiter counts them finished
	total    map[record.Kind]enqueued      // each kind's reading, once it has ended
	done     map[record.Kind]time.Duration // when each kind's last task finished, from start
	loading  *loading                      // the rows of tasks under way, for progress reports
}

func (w *waiter) wait(ctx context.Context) error {
	lastProgress, lastFinished := time.Now(), -1
	lastTouch, lastBeat := time.Now(), time.Time{}
	for {
		// The heartbeat tells enqueue --list that the run is running, and carries enqueue --cancel's request.
		if time.Since(lastBeat) > 500*time.Millisecond {
			cancelled, err := w.d.Ledger.Heartbeat(ctx, w.cfg.RunID)
			if err != nil {
				return w.stopped(ctx, err)
			}
			if cancelled {
				return fmt.Errorf("%w: %s", ErrCancelled, w.cfg.RunID)
			}
			lastBeat = time.Now()
		}
		if time.Since(lastTouch) > time.Minute {
			if err := w.d.Ledger.Touch(ctx, w.cfg.RunID); err != nil {
				return w.stopped(ctx, err)
			}
			lastTouch = time.Now()
		}
		if err := w.takeEnqueued(); err != nil {
			return err
		}
		finished, err := w.d.Ledger.Finished(ctx, w.cfg.RunID)
		if err != nil {
			return w.stopped(ctx, err)
		}
		sum := 0
		for i, k := range record.Kinds {
			sum += finished[i].Tasks
			e, known := w.total[k]
			if _, ok := w.done[k]; !ok && known && finished[i].Tasks >= e.read.tasks {
				w.done[k] = time.Since(w.start)
			}
		}
		// Each finished task frees its slot, so reading goes on.
		w.queued.finish(sum)
		w.report(ctx, finished)
		if len(w.done) == len(record.Kinds) {
			return nil
		}
		if sum != lastFinished {
			lastFinished, lastProgress = sum, time.Now()
		} else if time.Since(lastProgress) > stallAfter {
			if err := w.diagnose(ctx); err != nil {
				return err
			}
			lastProgress = time.Now()
		}
		if _, err := w.d.Ledger.Wait(ctx, w.cfg.RunID, w.every()); err != nil {
			return w.stopped(ctx, err)
		}
	}
}

// every is how long the waiter waits for an outcome before it looks again: progress, when reported, moves on
// between outcomes too.
func (w *waiter) every() time.Duration {
	if w.cfg.Progress == nil {
		return time.Second
	}
	return w.loading.every()
}

// report passes the run's progress to Config.Progress.
func (w *waiter) report(ctx context.Context, finished []ledger.Done) {
	if w.cfg.Progress == nil {
		return
	}
	under := w.loading.underWay(ctx)
	files := make([]FileProgress, len(record.Kinds))
	for i, k := range record.Kinds {
		fd := w.feeds[k]
		_, done := w.done[k]
		// A rejected record is done as soon as it is read; a row once its task has loaded it.
		p := FileProgress{Kind: k, Rows: finished[i].Rows + fd.rejected.Load(), Enqueued: fd.rows.Load(), Exact: fd.read.Load(), Done: done}
		p.Total = p.Enqueued
		if read, size := fd.bytes.Load(), fd.size.Load(); !p.Exact && read > 0 && size > read {
			p.Total = int64(float64(p.Enqueued) * float64(size) / float64(read))
		}
		w.loading.progress(&p, under)
		files[i] = p
	}
	w.cfg.Progress(files)
}

// takeEnqueued takes in the files whose enqueueing has ended, without blocking. An enqueueing that failed, for
// instance because Redis went away, ends the run.
func (w *waiter) takeEnqueued() error {
	for {
		select {
		case e := <-w.enqueued:
			w.total[e.read.kind] = e
			if e.err != nil {
				return e.err
			}
			// A rejected file is not logged: the report's problems name it.
		default:
			return nil
		}
	}
}

// Plural counts things in English, for messages: "1 task", "2 tasks".
func Plural(n int, thing string) string {
	if n == 1 {
		return "1 " + thing
	}
	return fmt.Sprintf("%d %ss", n, thing)
}

// report gathers the outcomes and counts of a finished run.
func report(ctx context.Context, d Deps, cfg Config, queue string, log *slog.Logger, start time.Time, before []int64, done map[record.Kind]time.Duration,
	enq map[record.Kind]enqueued) (*Report, error) {
	rep := &Report{
		RunID:      cfg.RunID,
		ResultsKey: ledger.ResultsKey(cfg.RunID),
		Queue:      queue,
		Database:   d.Repo.ID,
		StartedAt:  start.UTC(),
	}
	after, err := countAt(ctx, d.Repo, cfg, log, true)
	if err != nil {
		return nil, err
	}
	workers := map[string]*WorkerUse{}
	for i, k := range record.Kinds {
		outcomes, err := d.Ledger.Outcomes(ctx, cfg.RunID, k)
		if err != nil {
			return nil, err
		}
		r := enq[k].read
		f := File{Kind: k.String(), File: k.FileName(), Tasks: len(outcomes), Lines: int64(r.lines), Blank: int64(r.blank),
			Counts: r.counts, Before: before[i], After: after[i], Seconds: seconds(done[k])}
		for _, o := range outcomes {
			f.Counts = f.Counts.Plus(o.Counts)
			if o.Redelivered {
				f.Redelivered++
			}
			if o.Worker == "" {
				continue // recorded from MySQL by a resume: its worker is not known
			}
			u := workers[o.Worker]
			if u == nil {
				u = &WorkerUse{Worker: o.Worker, Concurrency: o.Concurrency}
				workers[o.Worker] = u
			}
			u.Tasks++
		}
		if !f.Balanced() {
			// The enqueuer sends each row it does not reject exactly once, and each task's counts sum to its rows:
			// an imbalance means a task's outcome is missing or foreign.
			return nil, fmt.Errorf("coordinator: %s: read %d, but added %d, present %d and rejected %d", k.FileName(), f.Read, f.Added, f.Present, f.Rejected)
		}
		if err := enq[k].fileErr; err != nil {
			f.Error = err.Error()
		}
		if err := rep.addProblems(k, enq[k].fileErr, r, cfg.Rejects); err != nil {
			return nil, err
		}
		rep.Files = append(rep.Files, f)
		rep.Results = append(rep.Results, Tuple{Processed: f.Added, Before: f.Before, After: f.After, Seconds: f.Seconds})
	}
	for _, u := range workers {
		rep.Workers = append(rep.Workers, *u)
	}
	slices.SortFunc(rep.Workers, func(a, b WorkerUse) int { return strings.Compare(a.Worker, b.Worker) })
	rep.Mode = "parallel"
	if len(rep.Workers) <= 1 && (len(rep.Workers) == 0 || rep.Workers[0].Concurrency == 1) {
		rep.Mode = "linear"
	}
	rep.Update = cfg.Update
	rep.Seconds = seconds(time.Since(start))
	return rep, nil
}

// addProblems adds a file's problems to the report and passes each to rejects: first the problem with the whole
// file, if any, then the rejected records in line order. The report lists the first maxListedProblems of the run
// and counts them all.
func (rep *Report) addProblems(k record.Kind, fileErr error, r *fileRead, rejects func(record.Problem) error) error {
	add := func(p record.Problem) error {
		rep.ProblemCount++
		if len(rep.Problems) < maxListedProblems {
			rep.Problems = append(rep.Problems, p)
		}
		if rejects != nil {
			return rejects(p)
		}
		return nil
	}
	if fileErr != nil {
		if err := add(record.Problem{File: k.FileName(), Reason: fileErr.Error()}); err != nil {
			return err
		}
	}
	return merge(&r.problems, &r.dups, add)
}

// seconds rounds a duration to microseconds, as seconds. A run always takes some time, so the result is positive.
func seconds(d time.Duration) float64 {
	// Rounding the float, not the Duration, keeps JSON from printing 3.5709429999999998 for 3.570943.
	return math.Round(max(d, time.Microsecond).Seconds()*1e6) / 1e6
}
