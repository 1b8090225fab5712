package repo

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"hpnorton/internal/record"
)

// A table's row count, kept exact without reading the table. InnoDB keeps no exact count of its own, and COUNT(*)
// reads the whole clustered index: 0.5 s for 1,000,000 customers, four times a run. So import_counts keeps the
// count, split over countShards rows per table, and a count is the sum of one table's rows.
//
// Every row that enters or leaves a table changes the sum in the same transaction, so any consistent read sees the
// sum equal to COUNT(*):
//   - hpnorton's tasks add their rows' number to their connection's shard, just before they commit;
//   - every other writer's rows are counted by the triggers countTriggers makes, one shard row per connection, so
//     that concurrent writers seldom wait on one row. hpnorton's connections set @hpnorton_counted, which the
//     triggers test first: its loads pay that test, not the update.
//
// TRUNCATE TABLE fires no trigger: after one, delete the table's rows of import_counts, and the next count takes
// the table's count afresh (README, "Row counts").
const countShards = 64

// countedVar is the session variable that tells the triggers a connection counts its own rows. Open sets it on
// every connection (ParseDSN).
const countedVar = "@hpnorton_counted"

// triggerName is one of the counting triggers of a table. The version is part of the name, so that a later body
// is a new name, which ensureCounters finds missing and makes.
func triggerName(table, event string) string { return "hpnorton_" + table + "_count_" + event + "_v1" }

// countTriggers are the statements that make table's two triggers.
func countTriggers(table string) []string {
	body := func(event, delta string) string {
		return "CREATE TRIGGER " + quoteIdent(triggerName(table, strings.ToLower(event))) + " AFTER " + event + " ON " + quoteIdent(table) +
			" FOR EACH ROW BEGIN IF " + countedVar + " IS NULL THEN UPDATE import_counts SET n = n " + delta +
			" WHERE tbl = '" + table + "' AND shard = CONNECTION_ID() % " + fmt.Sprint(countShards) + "; END IF; END"
	}
	return []string{body("INSERT", "+ 1"), body("DELETE", "- 1")}
}

// ensureCounters gives each table that lacks them its triggers and a count taken afresh. It runs at every Open,
// so it first looks, in one query, whether anything is missing.
func (d *DB) ensureCounters(ctx context.Context) error {
	missing, err := d.uncounted(ctx)
	if err != nil || len(missing) == 0 {
		return err
	}
	// Workers and enqueuers starting together would make the same triggers: one at a time, and each looks again.
	conn, err := d.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("repo: set up row counts: %w", err)
	}
	defer conn.Close()
	var got sql.NullInt64
	if err := conn.QueryRowContext(ctx, "SELECT GET_LOCK(CONCAT('hpnorton:counts:', DATABASE()), 300)").Scan(&got); err != nil {
		return fmt.Errorf("repo: set up row counts: %w", err)
	}
	if got.Int64 != 1 {
		return errors.New("repo: set up row counts: another process has been setting them up for 5 minutes")
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), "DO RELEASE_LOCK(CONCAT('hpnorton:counts:', DATABASE()))")
	if missing, err = d.uncounted(ctx); err != nil {
		return err
	}
	for _, k := range missing {
		if err := recount(ctx, conn, k.Table()); err != nil {
			return err
		}
	}
	return nil
}

// uncounted returns the kinds whose triggers or shard rows are missing.
func (d *DB) uncounted(ctx context.Context) ([]record.Kind, error) {
	var missing []record.Kind
	for _, k := range record.Kinds {
		t := k.Table()
		var triggers, shards int
		err := d.db.QueryRowContext(ctx, `SELECT
			(SELECT COUNT(*) FROM information_schema.triggers WHERE trigger_schema = DATABASE() AND event_object_table = ? AND trigger_name IN (?, ?)),
			(SELECT COUNT(*) FROM import_counts WHERE tbl = ?)`,
			t, triggerName(t, "insert"), triggerName(t, "delete"), t).Scan(&triggers, &shards)
		if err != nil {
			return nil, fmt.Errorf("repo: look up the row counts of %s: %w", t, err)
		}
		if triggers != 2 || shards != countShards {
			missing = append(missing, k)
		}
	}
	return missing, nil
}

// recount makes table's triggers anew and takes its count afresh, with the table locked against writers so that
// no row lands between the count and the triggers. This is the one COUNT(*) the table ever costs: it takes about
// 0.5 s per 1,000,000 rows, and writers wait for it.
func recount(ctx context.Context, conn *sql.Conn, table string) (err error) {
	if _, err := conn.ExecContext(ctx, "LOCK TABLES "+quoteIdent(table)+" WRITE, import_counts WRITE"); err != nil {
		return fmt.Errorf("repo: count %s afresh: %w", table, err)
	}
	defer func() {
		if _, uerr := conn.ExecContext(context.WithoutCancel(ctx), "UNLOCK TABLES"); uerr != nil && err == nil {
			err = fmt.Errorf("repo: count %s afresh: %w", table, uerr)
		}
	}()
	stmts := []string{
		"DROP TRIGGER IF EXISTS " + quoteIdent(triggerName(table, "insert")),
		"DROP TRIGGER IF EXISTS " + quoteIdent(triggerName(table, "delete")),
	}
	stmts = append(stmts, countTriggers(table)...)
	stmts = append(stmts, "DELETE FROM import_counts WHERE tbl = '"+table+"'")
	for _, s := range stmts {
		if _, err := conn.ExecContext(ctx, s); err != nil {
			return fmt.Errorf("repo: count %s afresh: %w", table, err)
		}
	}
	var n int64
	if err := conn.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+quoteIdent(table)).Scan(&n); err != nil {
		return fmt.Errorf("repo: count %s afresh: %w", table, err)
	}
	var b strings.Builder
	b.WriteString("INSERT INTO import_counts (tbl, shard, n) VALUES ")
	for s := range countShards {
		if s > 0 {
			b.WriteByte(',')
		}
		v := int64(0)
		if s == 0 {
			v = n
		}
		fmt.Fprintf(&b, "('%s', %d, %d)", table, s, v)
	}
	if _, err := conn.ExecContext(ctx, b.String()); err != nil {
		return fmt.Errorf("repo: count %s afresh: %w", table, err)
	}
	return nil
}

// errCountsGone means a table's shard rows went while a count read them; Count takes the count afresh.
var errCountsGone = errors.New("repo: the table's row count is incomplete")

// Count returns how many rows the kind's table holds, exactly, at the instant its query starts: the sum of the
// table's shard rows. Should those have gone (deleted by hand), it takes the count afresh, once.
func (d *DB) Count(ctx context.Context, k record.Kind) (int64, error) {
	n, err := d.sumCounts(ctx, k)
	if errors.Is(err, errCountsGone) {
		if err := d.ensureCounters(ctx); err != nil {
			return 0, err
		}
		n, err = d.sumCounts(ctx, k)
	}
	return n, err
}

func (d *DB) sumCounts(ctx context.Context, k record.Kind) (int64, error) {
	var shards, n int64
	if err := d.db.QueryRowContext(ctx, "SELECT COUNT(*), COALESCE(SUM(n), 0) FROM import_counts WHERE tbl = ?", k.Table()).Scan(&shards, &n); err != nil {
		return 0, fmt.Errorf("repo: count %s: %w", k, err)
	}
	if shards != countShards {
		return 0, fmt.Errorf("%w: %s has %d of its %d shard rows", errCountsGone, k.Table(), shards, countShards)
	}
	return n, nil
}

// ScanCount counts the kind's table by reading it, COUNT(*): what Count avoids, for tests and benchmarks that
// check it.
func (d *DB) ScanCount(ctx context.Context, k record.Kind) (int64, error) {
	var n int64
	if err := d.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+quoteIdent(k.Table())).Scan(&n); err != nil {
		return 0, fmt.Errorf("repo: count %s: %w", k, err)
	}
	return n, nil
}

// execer is a transaction, where the task's writes belong (or, in make mutants, the pool, where they do not).
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// recordTask writes what the task did into its transaction: its counts in its record, and its added rows in the
// table's count.
func recordTask(ctx context.Context, tx execer, t Task, w Written) error {
	_, err := tx.ExecContext(ctx, "UPDATE import_tasks SET added = ?, present = ?, updated = ?, unchanged = ?, finished_at = NOW(6) WHERE task_id = ?",
		w.Added, w.Present, w.Updated, w.Unchanged, t.ID)
	if err != nil {
		return fmt.Errorf("repo: record task %s: %w", t.ID, err)
	}
	return addToCount(ctx, tx, t.Kind.Table(), int(w.Added))
}

// addToCount adds a task's added rows to its connection's shard, inside the task's transaction, so that the count
// and the rows commit together. With the shard rows gone, there is nothing to add to: the count taken afresh
// will include these rows.
func addToCount(ctx context.Context, tx execer, table string, added int) error {
	if added == 0 {
		return nil
	}
	_, err := tx.ExecContext(ctx, "UPDATE import_counts SET n = n + ? WHERE tbl = ? AND shard = CONNECTION_ID() % ?", added, table, countShards)
	if err != nil {
		return fmt.Errorf("repo: count the rows of %s: %w", table, err)
	}
	return nil
}
