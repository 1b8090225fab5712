package repo

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"hpnorton/internal/record"
)

// otherWriter opens the test database as another program would: a plain connection, without the session variable
// that hpnorton's connections set.
func otherWriter(t *testing.T, dsn string) *sql.DB {
	t.Helper()
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// snapshotCounts reads COUNT(*) and Count's sum in one consistent snapshot, as of one instant.
func snapshotCounts(ctx context.Context, db *sql.DB, table string) (scanned, summed int64, err error) {
	tx, err := db.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true})
	if err != nil {
		return 0, 0, err
	}
	defer tx.Rollback()
	if err := tx.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+quoteIdent(table)).Scan(&scanned); err != nil {
		return 0, 0, err
	}
	if err := tx.QueryRowContext(ctx, "SELECT COALESCE(SUM(n), 0) FROM import_counts WHERE tbl = ?", table).Scan(&summed); err != nil {
		return 0, 0, err
	}
	return scanned, summed, nil
}

// TestCountStaysExactWithOtherWriters loads tasks while another program inserts, deletes, replaces and rolls back
// rows of the same table, some of them the tasks' own. At every instant a consistent snapshot reads, the count
// equals COUNT(*), and so it does at the end.
func TestCountStaysExactWithOtherWriters(t *testing.T) {
	forEachMethod(t, func(t *testing.T, b *testBundle) {
		if err := b.db.KeepCounts(b.ctx); err != nil {
			t.Fatal(err)
		}
		other := otherWriter(t, b.dsn)
		ctx, stop := context.WithCancel(b.ctx)
		defer stop()
		var wg sync.WaitGroup
		var otherOps, checks atomic.Int64
		errs := make(chan error, 3)
		wg.Go(func() { // the other program
			for i := 0; ctx.Err() == nil; i++ {
				stmts := []string{
					fmt.Sprintf("INSERT INTO products VALUES ('O%d', 'theirs', 'x', 1), ('O%d', 'theirs', 'x', 2)", i, i+1_000_000),
					fmt.Sprintf("DELETE FROM products WHERE product_id IN ('O%d', 'T%d')", i-3, i%400),
					fmt.Sprintf("REPLACE INTO products VALUES ('O%d', 'replaced', 'x', 3)", i-1),
					fmt.Sprintf("INSERT IGNORE INTO products VALUES ('O%d', 'ignored', 'x', 4)", i),
				}
				rollback := i%5 == 0
				err := func() error {
					tx, err := other.BeginTx(ctx, nil)
					if err != nil {
						return err
					}
					defer tx.Rollback()
					for _, s := range stmts {
						if _, err := tx.ExecContext(ctx, s); err != nil {
							return err
						}
					}
					if rollback {
						return tx.Rollback()
					}
					return tx.Commit()
				}()
				var merr *mysql.MySQLError
				switch {
				case err == nil:
					otherOps.Add(1)
				case ctx.Err() != nil:
					return
				case errors.As(err, &merr) && (merr.Number == errDeadlock || merr.Number == errLockWait):
					// a deadlock with a task: the transaction rolled back whole, which the count must see too
				default:
					errs <- fmt.Errorf("the other writer: %w", err)
					return
				}
			}
		})
		wg.Go(func() { // snapshots while both write
			for ctx.Err() == nil {
				scanned, summed, err := snapshotCounts(ctx, other, "products")
				if ctx.Err() != nil {
					return
				}
				if err != nil {
					errs <- fmt.Errorf("snapshot: %w", err)
					return
				}
				if scanned != summed {
					errs <- fmt.Errorf("in one snapshot COUNT(*) = %d and the count = %d", scanned, summed)
					return
				}
				checks.Add(1)
			}
		})
		// The tasks: 40 of 50 rows, each key once, and some keys the other writer deletes meanwhile.
		for i := range 40 {
			keys := make([]string, 50)
			for j := range keys {
				keys[j] = fmt.Sprintf("T%d", i*50+j)
			}
			if _, err := b.db.ImportTask(b.ctx, withRows(b.task(t, "r", record.Products, 2+50*i), products(keys...))); err != nil {
				t.Fatal(err)
			}
		}
		// Both go on until each has done some of its work after the loads too.
		for deadline := time.Now().Add(2 * time.Minute); otherOps.Load() < 20 || checks.Load() < 20; time.Sleep(time.Millisecond) {
			select {
			case err := <-errs:
				t.Fatal(err)
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("in 2 minutes the other writer committed %d transactions and %d snapshots were read", otherOps.Load(), checks.Load())
			}
		}
		stop()
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		scanned, summed, err := snapshotCounts(b.ctx, other, "products")
		if err != nil {
			t.Fatal(err)
		}
		if summed != scanned {
			t.Errorf("at the end, the count = %d, COUNT(*) = %d", summed, scanned)
		}
		t.Logf("%d snapshots agreed while the other writer committed %d transactions", checks.Load(), otherOps.Load())
	})
}

// TestCountKeptOnceLarge: a small table is counted by reading it, and makes no trigger; once it holds more than
// keepCountsFrom rows, by InnoDB's estimate, its count is kept from then on, starting from the rows it held, and the
// triggers count another program's rows. With its count rows deleted by hand, as after a TRUNCATE, the next count is
// right again.
func TestCountKeptOnceLarge(t *testing.T) {
	t.Parallel()
	b := setup(t)
	other := otherWriter(t, b.dsn)
	kept := func() bool {
		_, err := b.db.sumCounts(b.ctx, record.Customers)
		if err != nil && !errors.Is(err, errNotKept) {
			t.Fatal(err)
		}
		return err == nil
	}
	exec := func(qs ...string) {
		t.Helper()
		for _, q := range qs {
			if _, err := other.ExecContext(b.ctx, q); err != nil {
				t.Fatal(err)
			}
		}
	}
	exec("INSERT INTO customers VALUES ('C1', 'a', 'b', 'c', 'd', 'e'), ('C2', 'a', 'b', 'c', 'd', 'e'), ('C3', 'a', 'b', 'c', 'd', 'e')", "ANALYZE TABLE customers")
	b.db.keepCountsFrom = 10
	if n := b.count(t, record.Customers); n != 3 || kept() {
		t.Fatalf("Count of 3 rows = %d, kept %v; want 3, read from the table", n, kept())
	}
	for i := range 10 {
		exec(fmt.Sprintf("INSERT INTO customers VALUES ('D%d', 'a', 'b', 'c', 'd', 'e')", i))
	}
	exec("ANALYZE TABLE customers")
	if n := b.count(t, record.Customers); n != 13 || !kept() {
		t.Fatalf("Count of 13 rows = %d, kept %v; want 13, kept from now on", n, kept())
	}
	exec("DELETE FROM customers WHERE user_id = 'C1'")
	if n, err := b.db.sumCounts(b.ctx, record.Customers); err != nil || n != 12 {
		t.Errorf("kept count after another program deleted one of 13 = %d, %v; want 12", n, err)
	}
	exec("DELETE FROM import_counts WHERE tbl = 'customers' AND shard = 0")
	if n := b.count(t, record.Customers); n != 12 {
		t.Errorf("Count with its count rows gone = %d, want 12", n)
	}
}

// TestCountTakenAfreshWhileAnotherWrites takes a table's count afresh again and again while another program
// inserts rows one at a time: the table is locked meanwhile, so no row falls between the count and the triggers.
func TestCountTakenAfreshWhileAnotherWrites(t *testing.T) {
	t.Parallel()
	b := setup(t)
	other := otherWriter(t, b.dsn)
	ctx, stop := context.WithCancel(b.ctx)
	defer stop()
	var inserted atomic.Int64
	errs := make(chan error, 1)
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; ctx.Err() == nil; i++ {
			if _, err := other.ExecContext(ctx, fmt.Sprintf("INSERT INTO customers VALUES ('O%d', 'a', 'b', 'c', 'd', 'e')", i)); err != nil {
				if ctx.Err() == nil {
					errs <- err
				}
				return
			}
			inserted.Add(1)
		}
	})
	for range 100 {
		if _, err := other.ExecContext(b.ctx, "DELETE FROM import_counts WHERE tbl = 'customers'"); err != nil {
			t.Fatal(err)
		}
		for start := inserted.Load(); inserted.Load() < start+5; time.Sleep(100 * time.Microsecond) {
			// rows land while the table has no count
		}
		if err := b.db.KeepCounts(b.ctx); err != nil {
			t.Fatal(err)
		}
	}
	stop()
	wg.Wait()
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}
	// One snapshot for both: a statement the writer's cancelled context left running may commit in between.
	scanned, summed, err := snapshotCounts(b.ctx, other, "customers")
	if err != nil {
		t.Fatal(err)
	}
	if summed != scanned {
		t.Errorf("after 100 counts taken afresh while another program inserted %d rows: the count = %d, COUNT(*) = %d", inserted.Load(), summed, scanned)
	}
}
