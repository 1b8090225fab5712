package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/go-sql-driver/mysql"
	"github.com/redis/go-redis/v9"

	"hpnorton/internal/ledger"
	"hpnorton/internal/record"
	"hpnorton/repo"
)

// errDeadlock is MySQL's ER_LOCK_DEADLOCK.
const errDeadlock = 1213

// stage holds what the demonstrations work on. runPrefix starts every run ID and keyPrefix every Redis key they
// write, so that tests can give each run a namespace of its own.
type stage struct {
	db        *repo.DB
	raw       *sql.DB // the unsafe sides' own SQL, outside repo
	rdb       *redis.Client
	ledger    *ledger.Ledger
	runPrefix string
	keyPrefix string
	runs      int
}

// outcome is one demonstration: what went wrong, and what the system's way gave on the same work.
type outcome struct {
	Unsafe, Safe string
}

// newRun registers a run for the safe sides' repo.ImportTask calls.
func (s *stage) newRun(ctx context.Context) (string, uint64, error) {
	s.runs++
	id := fmt.Sprintf("%s-%d", s.runPrefix, s.runs)
	no, err := s.db.StartRun(ctx, id, repo.DefaultKeepRuns)
	return id, no, err
}

func (s *stage) empty(ctx context.Context, tables ...string) error {
	for _, t := range tables {
		if _, err := s.raw.ExecContext(ctx, "DELETE FROM "+t); err != nil {
			return err
		}
	}
	return nil
}

// task returns the import task of product rows for keys, in LOAD DATA's format as the enqueuer sends them.
func task(id, runID string, runNo uint64, keys []string) repo.Task {
	t := repo.Task{ID: id, RunID: runID, RunNo: runNo, Kind: record.Products, Rows: len(keys)}
	for _, k := range keys {
		t.Data = repo.AppendRow(t.Data, [][]byte{[]byte(k), []byte("desk " + k), []byte("office"), []byte("1")})
	}
	return t
}

type deadlockOutcome struct {
	outcome
	// Deadlocked is true when MySQL killed one of the opposite-order transactions with error 1213.
	Deadlocked bool
	// SortedErr is what the same two transactions returned with their keys sorted: nil.
	SortedErr error
	// Stored is how many rows two runs' tasks left for 200 distinct keys.
	Stored int64
}

// deadlock: worker A inserts P1 then P2 in a transaction, worker B inserts P2 then P1. Each holds the lock on its
// first key and waits for the other's: a cycle, which InnoDB breaks by rolling one transaction back with error
// 1213. Chunks of a real file overlap in keys whenever the file repeats one, so this can happen in any parallel
// import that inserts in file order.
//
// The system avoids it three ways. The enqueuer sends each key of a file in one task at most, so the tasks of one
// run never share a row. It sends a chunk's rows in key order (internal/coordinator, chunk.take), so tasks of two
// runs at once that do share keys take their locks in the same order, and the later one waits instead of closing
// a cycle. And a deadlock or lock wait timeout that still happens retries the whole transaction.
func (s *stage) deadlock(ctx context.Context) (deadlockOutcome, error) {
	var out deadlockOutcome
	if err := s.empty(ctx, "products"); err != nil {
		return out, err
	}
	orders := [2][]string{{"P1", "P2"}, {"P2", "P1"}}
	errs := s.twoTransactions(ctx, orders, true)
	var merr *mysql.MySQLError
	for w, err := range errs {
		switch {
		case errors.As(err, &merr) && merr.Number == errDeadlock:
			out.Deadlocked = true
			out.Unsafe = fmt.Sprintf("worker %c (keys %v) was killed: %v", 'A'+w, orders[w], err)
		case err != nil:
			return out, fmt.Errorf("worker %c: %w", 'A'+w, err)
		}
	}
	if !out.Deadlocked {
		out.Unsafe = "no deadlock (unexpected: both transactions committed)"
	}

	// The same two transactions with their keys sorted: B waits on P1 until A commits, then skips it.
	if err := s.empty(ctx, "products"); err != nil {
		return out, err
	}
	sorted := [2][]string{{"P1", "P2"}, {"P1", "P2"}}
	if err := errors.Join(s.twoTransactions(ctx, sorted, false)...); err != nil {
		out.SortedErr = err
	}

	// The safe side: two runs at once, whose files hold the same 200 keys in opposite orders. The enqueuer sends
	// each chunk in key order.
	if err := s.empty(ctx, "products"); err != nil {
		return out, err
	}
	keys := make([]string, 200)
	for i := range keys {
		keys[i] = fmt.Sprintf("P%03d", i)
	}
	reversed := slices.Clone(keys)
	slices.Reverse(reversed)
	var added [2]int64
	var wg sync.WaitGroup
	for w, ks := range [][]string{keys, reversed} {
		runID, runNo, err := s.newRun(ctx)
		if err != nil {
			return out, err
		}
		wg.Go(func() {
			var written repo.Written
			written, errs[w] = s.db.ImportTask(ctx, task(runID+":products:2", runID, runNo, slices.Sorted(slices.Values(ks))))
			added[w] = written.Added
		})
	}
	wg.Wait()
	if err := errors.Join(errs[:]...); err != nil {
		return out, err
	}
	stored, err := s.db.Count(ctx, record.Products)
	if err != nil {
		return out, err
	}
	out.Stored = stored
	sortedSays := "both committed, since a transaction that reaches a key the other holds waits and can close no cycle"
	if out.SortedErr != nil {
		sortedSays = fmt.Sprintf("failed (unexpected): %v", out.SortedErr)
	}
	out.Safe = fmt.Sprintf("the same two transactions with their keys sorted: %s. Two runs' tasks, sorted by the "+
		"enqueuer, loaded two files of 200 keys in opposite orders at once: %d rows stored, %d + %d added",
		sortedSays, out.Stored, added[0], added[1])
	return out, nil
}

// twoTransactions runs two transactions at once, each inserting its keys in order with INSERT IGNORE, and returns
// their errors. With cross, each waits until both hold their first key before asking for the second, which is the
// interleaving that deadlocks opposite orders; without, they simply run together.
func (s *stage) twoTransactions(ctx context.Context, orders [2][]string, cross bool) []error {
	insert := "INSERT IGNORE INTO products (product_id, description, product_type, quantity_available) VALUES (?, 'desk', 'office', 1)"
	firstDone := [2]chan struct{}{make(chan struct{}), make(chan struct{})}
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for w := range 2 {
		wg.Go(func() {
			errs[w] = func() error {
				tx, err := s.raw.BeginTx(ctx, nil)
				if err != nil {
					return err
				}
				defer tx.Rollback() // after a commit, a no-op
				for i, key := range orders[w] {
					if _, err := tx.ExecContext(ctx, insert, key); err != nil {
						return err
					}
					if i == 0 && cross {
						close(firstDone[w])
						<-firstDone[1-w]
					}
				}
				return tx.Commit()
			}()
		})
	}
	wg.Wait()
	return errs
}

type countsOutcome struct {
	outcome
	// Before, Processed and After are worker A's own view, which does not add up.
	Before, Processed, After int64
	// RunBefore, RunProcessed and RunAfter are the coordinator's, which does.
	RunBefore, RunProcessed, RunAfter int64
}

// counts: worker A counts the table, imports its 1,000 rows and counts again, while worker B imports 1,000 rows
// of its own between A's two counts. A's after - before includes B's rows, so A's tuple says
// before + processed != after. No locking fixes this short of serializing the workers, which is linear mode.
//
// The system avoids it by counting in one place. Workers report only what they processed; the coordinator counts
// once before it enqueues the first task and once after the last task finished, so nothing of the run's falls
// outside the two counts. (Another program writing meanwhile would still show; the README says so.)
func (s *stage) counts(ctx context.Context) (countsOutcome, error) {
	var out countsOutcome
	if err := s.empty(ctx, "products"); err != nil {
		return out, err
	}
	runID, runNo, err := s.newRun(ctx)
	if err != nil {
		return out, err
	}
	chunk := func(w int) repo.Task {
		keys := make([]string, 1000)
		for i := range keys {
			keys[i] = fmt.Sprintf("W%d-%04d", w, i)
		}
		return task(fmt.Sprintf("%s:products:%d", runID, w), runID, runNo, keys)
	}
	if out.Before, err = s.db.Count(ctx, record.Products); err != nil {
		return out, err
	}
	if _, err := s.db.ImportTask(ctx, chunk(1)); err != nil { // worker B writes between A's counts
		return out, err
	}
	w, err := s.db.ImportTask(ctx, chunk(0))
	if err != nil {
		return out, err
	}
	out.Processed = w.Added
	if out.After, err = s.db.Count(ctx, record.Products); err != nil {
		return out, err
	}
	out.Unsafe = fmt.Sprintf("worker A counted before=%d, processed=%d, after=%d: before + processed != after",
		out.Before, out.Processed, out.After)

	// The safe side: the same two chunks at once, counted around the run, as the coordinator does.
	if err := s.empty(ctx, "products"); err != nil {
		return out, err
	}
	if runID, runNo, err = s.newRun(ctx); err != nil {
		return out, err
	}
	if out.RunBefore, err = s.db.Count(ctx, record.Products); err != nil {
		return out, err
	}
	var processed [2]int64
	var errs [2]error
	var wg sync.WaitGroup
	for w := range 2 {
		wg.Go(func() {
			var written repo.Written
			written, errs[w] = s.db.ImportTask(ctx, chunk(w))
			processed[w] = written.Added
		})
	}
	wg.Wait()
	if err := errors.Join(errs[:]...); err != nil {
		return out, err
	}
	out.RunProcessed = processed[0] + processed[1]
	if out.RunAfter, err = s.db.Count(ctx, record.Products); err != nil {
		return out, err
	}
	out.Safe = fmt.Sprintf("the coordinator counted before=%d, the tasks processed %d + %d, after=%d: before + processed == after",
		out.RunBefore, processed[0], processed[1], out.RunAfter)
	return out, nil
}

type lostUpdateOutcome struct {
	outcome
	// UnsafeTotal and SafeTotal are the rows the shared results show after both workers added 1,000.
	UnsafeTotal, SafeTotal int64
}

// lostUpdate: two workers each read the run's results from Redis, add the 1,000 rows they processed, and write
// the results back. Both read before either writes, so the second write overwrites the first with a total that
// never saw it: 1,000 rows where 2,000 were processed. Redis runs each command atomically, but not a GET and a
// SET that a client sends one after the other.
//
// The system avoids it by never reading and writing back. The ledger's Lua script adds a task's rows with HINCRBY
// inside Redis, where nothing runs between the read and the write, and only when the task's outcome is new (HSET
// returned 1), so a redelivered task adds nothing. The results key itself is written once, by the coordinator.
func (s *stage) lostUpdate(ctx context.Context) (lostUpdateOutcome, error) {
	var out lostUpdateOutcome
	key := s.keyPrefix + "results"
	type results struct {
		Rows int64 `json:"rows"`
	}
	start, _ := json.Marshal(results{})
	if err := s.rdb.Set(ctx, key, start, 0).Err(); err != nil {
		return out, err
	}
	defer s.rdb.Del(context.WithoutCancel(ctx), key)
	var read sync.WaitGroup
	read.Add(2)
	var errs [2]error
	var wg sync.WaitGroup
	for w := range 2 {
		wg.Go(func() {
			errs[w] = func() error {
				b, err := s.rdb.Get(ctx, key).Bytes()
				read.Done()
				if err != nil {
					return err
				}
				var r results
				if err := json.Unmarshal(b, &r); err != nil {
					return err
				}
				read.Wait() // both have read before either writes
				r.Rows += 1000
				b, _ = json.Marshal(r)
				return s.rdb.Set(ctx, key, b, 0).Err()
			}()
		})
	}
	wg.Wait()
	if err := errors.Join(errs[:]...); err != nil {
		return out, err
	}
	var r results
	b, err := s.rdb.Get(ctx, key).Bytes()
	if err != nil {
		return out, err
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return out, err
	}
	out.UnsafeTotal = r.Rows
	out.Unsafe = fmt.Sprintf("two workers each added 1000 rows to the results read-modify-write: the results say %d", r.Rows)

	// The safe side: the same two workers record their tasks' outcomes through the ledger, at once, and one of
	// them is delivered twice.
	runID := s.runPrefix + "-ledger"
	thousand := record.Counts{Added: 1000}
	outcomes := []ledger.Outcome{{TaskID: runID + ":customers:2", Counts: thousand}, {TaskID: runID + ":customers:1002", Counts: thousand}, {TaskID: runID + ":customers:2", Counts: thousand}}
	var recErrs [3]error
	for i, o := range outcomes {
		wg.Go(func() { recErrs[i] = s.ledger.Record(ctx, runID, record.Customers, o) })
	}
	wg.Wait()
	if err := errors.Join(recErrs[:]...); err != nil {
		return out, err
	}
	done, err := s.ledger.Finished(ctx, runID)
	if err != nil {
		return out, err
	}
	out.SafeTotal = done[0].Rows
	out.Safe = fmt.Sprintf("the same two workers, one delivered twice, recorded through the ledger's script: %d rows", out.SafeTotal)
	return out, nil
}
