package coordinator

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"hpnorton/internal/gen"
	"hpnorton/internal/record"
)

// TestCountsWhileAnotherProgramWrites runs an import while another program inserts and deletes rows of both tables,
// before, during and after the run. The test pins the instant of each of the run's counts: the other program waits
// between two of its transactions while the run counts, and the test counts the tables itself, by reading them, in
// the same pause. Both tuples must hold those counts, and after - before must be what the run added plus what the
// other program added, less what it deleted, in between.
//
// It runs twice: with the tables read at each count, as small tables are, and with their counts kept, as large
// tables' are (repo.DB.Count).
func TestCountsWhileAnotherProgramWrites(t *testing.T) {
	for _, kept := range []bool{false, true} {
		t.Run(map[bool]string{false: "read", true: "kept"}[kept], func(t *testing.T) {
			t.Parallel()
			countsWhileAnotherProgramWrites(t, kept)
		})
	}
}

func countsWhileAnotherProgramWrites(t *testing.T, kept bool) {
	b := setup(t, 2)
	if kept {
		if err := b.deps.Repo.KeepCounts(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	if err := gen.WriteDir(dir, 1000, gen.Options{}); err != nil {
		t.Fatal(err)
	}
	cfg, err := mysql.ParseDSN(b.dsn)
	if err != nil {
		t.Fatal(err)
	}
	other, err := sql.Open("mysql", cfg.FormatDSN()) // a plain connection, as another program has
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()

	// The other program: each transaction adds two rows to each table and deletes one it added before. pause
	// holds it between transactions; net counts what it did to each table.
	var pause sync.Mutex
	var net [2]int64
	var commits int
	ctx, stop := context.WithCancel(t.Context())
	defer stop()
	writerErr := make(chan error, 1)
	var wg sync.WaitGroup
	wg.Go(func() {
		writerErr <- func() error {
			for i := 0; ; i++ {
				pause.Lock()
				err := func() error {
					defer pause.Unlock()
					if ctx.Err() != nil {
						return ctx.Err()
					}
					tx, err := other.BeginTx(ctx, nil)
					if err != nil {
						return err
					}
					defer tx.Rollback()
					var changed [2]int64
					for j, q := range []string{
						fmt.Sprintf("INSERT INTO customers VALUES ('X%d', 'a', 'b', 'c', 'd', 'e'), ('Y%d', 'a', 'b', 'c', 'd', 'e')", i, i),
						fmt.Sprintf("INSERT INTO products VALUES ('X%d', 'a', 'b', 1), ('Y%d', 'a', 'b', 1)", i, i),
						fmt.Sprintf("DELETE FROM customers WHERE user_id = 'X%d'", i-2),
						fmt.Sprintf("DELETE FROM products WHERE product_id = 'Y%d'", i-3),
					} {
						res, err := tx.ExecContext(ctx, q)
						if err != nil {
							return err
						}
						n, _ := res.RowsAffected()
						if j >= 2 {
							n = -n
						}
						changed[j%2] += n
					}
					if err := tx.Commit(); err != nil {
						return err
					}
					net[0], net[1] = net[0]+changed[0], net[1]+changed[1]
					commits++
					return nil
				}()
				if err != nil {
					if ctx.Err() != nil {
						// Stopped inside a transaction: database/sql rolls it back, and the statement under way may
						// report that (sql.ErrTxDone) instead of the cancellation.
						return ctx.Err()
					}
					return err
				}
			}
		}()
	})

	// At each count: the other program paused, the tables counted by reading them, and what it had done so far.
	type instant struct {
		scanned [2]int64
		net     [2]int64
		commits int
	}
	var at [2]instant
	atCount := func(after bool) func() {
		pause.Lock()
		var in instant
		for i, k := range record.Kinds {
			if err := other.QueryRow("SELECT COUNT(*) FROM " + k.Table()).Scan(&in.scanned[i]); err != nil {
				t.Error(err)
			}
		}
		in.net, in.commits = net, commits
		i := 0
		if after {
			i = 1
		}
		at[i] = in
		return func() {
			pause.Unlock()
			if after {
				return
			}
			// The run goes on once the other program has written again, so that it writes during the run.
			for deadline := time.Now().Add(time.Minute); ; time.Sleep(time.Millisecond) {
				pause.Lock()
				n := commits
				pause.Unlock()
				if n >= in.commits+3 || time.Now().After(deadline) {
					return
				}
			}
		}
	}
	rep, err := Run(t.Context(), b.deps, Config{Dir: dir, Queue: b.ns, RunID: b.ns, ChunkRows: 50, atCount: atCount})
	stop()
	wg.Wait()
	if err := <-writerErr; err != context.Canceled {
		t.Fatalf("the other program: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	if at[1].commits-at[0].commits < 3 {
		t.Fatalf("the other program committed %d transactions during the run, want at least 3", at[1].commits-at[0].commits)
	}
	for i, k := range record.Kinds {
		tu := rep.Results[i]
		if tu.Before != at[0].scanned[i] || tu.After != at[1].scanned[i] {
			t.Errorf("%v: tuple before %d, after %d; the tables held %d and %d at those instants", k, tu.Before, tu.After, at[0].scanned[i], at[1].scanned[i])
		}
		if theirs := at[1].net[i] - at[0].net[i]; tu.After-tu.Before != tu.Processed+theirs {
			t.Errorf("%v: after - before = %d, want %d processed + %d by the other program", k, tu.After-tu.Before, tu.Processed, theirs)
		}
		if tu.Processed != 1000 {
			t.Errorf("%v: processed %d, want 1000", k, tu.Processed)
		}
	}
	t.Logf("the other program committed %d transactions during the run; tuples %v", at[1].commits-at[0].commits, rep.Results)
}
