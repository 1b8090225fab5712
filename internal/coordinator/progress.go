package coordinator

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"hpnorton/internal/eta"
	"hpnorton/internal/record"
	"hpnorton/repo"
)

// progressEvery is how often the waiter reports progress while it can see the rows of tasks under way: rows then
// move on between tasks' commits, and the bars and their time left follow them.
const progressEvery = 250 * time.Millisecond

// loadingWait bounds the query for the rows under way. The waiter also keeps the run's heartbeat, which enqueue
// --list and --cancel take for dead after 2 s, and a slow server must not stop it for the sake of a bar.
const loadingWait = 500 * time.Millisecond

// loading follows the rows that a run's tasks under way have written and not yet committed (repo.DB.Loading), so
// that progress moves row by row rather than a task at a time. It serves progress reports alone: no count or
// result rests on it.
type loading struct {
	repo  *repo.DB
	runNo uint64
	log   *slog.Logger
	// off is set once the account proves unable to see other connections' transactions; progress then goes by
	// committed tasks alone.
	off bool
	// shown is each file's rows as last reported, committed and under way. A task's rows leave the transactions
	// under way when it commits, a moment before its outcome reaches the ledger, and a report then would go
	// back; it holds at shown instead.
	shown map[record.Kind]int64
	// asked is when the rows under way were last asked for, and under the answer. The waiter reports at every
	// outcome, many a second, and is answered from here until progressEvery has passed: InnoDB does not refresh
	// INNODB_TRX while it is read more often than every 100 ms, and the server need not be asked so often.
	asked time.Time
	under map[record.Kind]int64
}

// every is how long the waiter may wait for an outcome before it reports progress again.
func (l *loading) every() time.Duration {
	if l == nil || l.off {
		return time.Second
	}
	return progressEvery
}

// underWay returns the rows of each kind that the run's tasks under way have written, or nil when they cannot be
// seen. A failure other than a missing privilege passes (the next report looks again), logged at debug level.
func (l *loading) underWay(ctx context.Context) map[record.Kind]int64 {
	if l == nil || l.off {
		return nil
	}
	if time.Since(l.asked) < progressEvery {
		return l.under
	}
	l.asked, l.under = time.Now(), nil
	qctx, cancel := context.WithTimeout(ctx, loadingWait)
	defer cancel()
	m, err := l.repo.Loading(qctx, l.runNo)
	if errors.Is(err, repo.ErrNoProcessPrivilege) {
		l.off = true
		l.log.Info("progress counts each task's rows when it commits: the MySQL account lacks the PROCESS privilege, which shows rows under way")
		return nil
	}
	if err != nil {
		if ctx.Err() == nil {
			l.log.Debug("cannot see the rows of tasks under way", "err", err)
		}
		return nil
	}
	l.under = m
	return m
}

// progress sets p.Loading from the rows under way of p's file, never letting the rows reported, committed and
// under way, fall below the last report's, nor rise above the records read. Rows that a task wrote and then
// rolled back (a warning, a crash, a retry) stay shown until commits catch up with them.
func (l *loading) progress(p *FileProgress, under map[record.Kind]int64) {
	if l == nil {
		return
	}
	if l.shown == nil {
		l.shown = map[record.Kind]int64{}
	}
	if p.Done {
		l.shown[p.Kind] = p.Rows
		return
	}
	shown := min(max(l.shown[p.Kind], p.Rows+under[p.Kind]), max(p.Enqueued, p.Rows))
	l.shown[p.Kind] = shown
	p.Loading = max(shown-p.Rows, 0)
}

// ETA is the file's progress as the time left's estimator takes it: rows as the bars show them, committed and
// under way.
func (p FileProgress) ETA() eta.File {
	rows := p.Rows + p.Loading
	return eta.File{Rows: rows, Total: max(p.Total, rows), Done: p.Done}
}
