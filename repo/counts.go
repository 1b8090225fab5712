package repo

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"hpnorton/internal/record"
)

// A table's row count, exact at an instant. COUNT(*) reads the whole clustered index: 1.4 s for 5,000,000
// customers here, and a run counts each table twice. InnoDB keeps no exact count of its own, so once a table is
// large (keepCountsFrom), repo keeps its count in import_counts, split over countShards rows, and a count is the
// sum of the table's rows. Every row that enters or leaves the table changes the sum in the same transaction, so
// any consistent read sees the sum equal to COUNT(*):
//   - hpnorton's tasks add their rows' number to their connection's shard, just before they commit;
//   - every other writer's rows are counted by the triggers countTriggers makes, one shard row per connection, so
//     that concurrent writers seldom wait on one row. hpnorton's connections set @hpnorton_counted, which the
//     triggers test first.
//
// A trigger costs every row loaded, hpnorton's too: a trigger that does nothing made a 300,000-row LOAD DATA 27%
// slower here, and one that counts, 205% (docs/counts.md). So a small table is counted by reading it, which costs
// less than the triggers would; the count is kept from the first count that finds the table large.
//
// TRUNCATE TABLE fires no trigger: after one, delete the table's rows of import_counts, and the next count reads
// the table (README, "Row counts").
const countShards = 64

// keepCountsFrom is the size, by InnoDB's estimate, from which a table's count is kept rather than read: there, a
// run's four COUNT(*)s cost MariaDB about as much as the triggers cost a load of as many rows.
const keepCountsFrom = 1_000_000

// countedVar is the session variable that tells the triggers a connection counts its own rows. Open sets it on
// every connection (ParseDSN).
const countedVar = "@hpnorton_counted"

// triggerName is one of the counting triggers of a table. The version is part of the name, so that a later body
// is a new name, which sumCounts finds missing, so that the count is kept anew.
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

// KeepCounts keeps the counts of both tables from now on, whatever their size: it makes the triggers of a table
// that lacks them and counts it once (recount). Count calls it for a table that has grown large.
func (d *DB) KeepCounts(ctx context.Context) error {
	for _, k := range record.Kinds {
		if err := d.keepCount(ctx, k); err != nil {
			return err
		}
	}
	return nil
}

func (d *DB) keepCount(ctx context.Context, k record.Kind) error {
	// Processes counting at once would make the same triggers: one at a time, and each looks again.
	conn, err := d.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("repo: keep the count of %s: %w", k.Table(), err)
	}
	defer conn.Close()
	var got sql.NullInt64
	if err := conn.QueryRowContext(ctx, "SELECT GET_LOCK(CONCAT('hpnorton:counts:', DATABASE()), 300)").Scan(&got); err != nil {
		return fmt.Errorf("repo: keep the count of %s: %w", k.Table(), err)
	}
	if got.Int64 != 1 {
		return fmt.Errorf("repo: keep the count of %s: another process has been setting it up for 5 minutes", k.Table())
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), "DO RELEASE_LOCK(CONCAT('hpnorton:counts:', DATABASE()))")
	if _, err := d.sumCounts(ctx, k); !errors.Is(err, errNotKept) {
		return err // kept already, or MySQL failed
	}
	return recount(ctx, conn, k.Table())
}

// recount makes table's triggers anew and takes its count afresh, with the table locked against writers so that
// no row lands between the count and the triggers. This is the one COUNT(*) a kept count costs: 1.4 s for
// 5,000,000 customers here, and writers wait for it.
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

// errNotKept means a table's count is not kept: its triggers or some of its shard rows are missing.
var errNotKept = errors.New("repo: the table's count is not kept")

// Count returns how many rows the kind's table holds, exactly, at the instant its query starts. A kept count is
// the sum of the table's shard rows. A table whose count is not kept is read (ScanCount), unless it has grown
// large: then its count is kept from now on.
func (d *DB) Count(ctx context.Context, k record.Kind) (int64, error) {
	n, err := d.sumCounts(ctx, k)
	if !errors.Is(err, errNotKept) {
		return n, err
	}
	var estimate int64
	err = d.db.QueryRowContext(ctx, "SELECT COALESCE(MAX(table_rows), 0) FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = ?", k.Table()).Scan(&estimate)
	if err != nil {
		return 0, fmt.Errorf("repo: count %s: %w", k, err)
	}
	if estimate < d.keepCountsFrom {
		return d.ScanCount(ctx, k)
	}
	if err := d.keepCount(ctx, k); err != nil {
		return 0, err
	}
	return d.sumCounts(ctx, k)
}

// sumCounts is the table's kept count, or errNotKept. The triggers are looked up in the same query: without them,
// the shard rows would miss other programs' rows.
func (d *DB) sumCounts(ctx context.Context, k record.Kind) (int64, error) {
	t := k.Table()
	var triggers, shards, n int64
	err := d.db.QueryRowContext(ctx, `SELECT
		(SELECT COUNT(*) FROM information_schema.triggers WHERE trigger_schema = DATABASE() AND event_object_table = ? AND trigger_name IN (?, ?)),
		COUNT(*), COALESCE(SUM(n), 0) FROM import_counts WHERE tbl = ?`,
		t, triggerName(t, "insert"), triggerName(t, "delete"), t).Scan(&triggers, &shards, &n)
	if err != nil {
		return 0, fmt.Errorf("repo: count %s: %w", k, err)
	}
	if triggers != 2 || shards != countShards {
		return 0, fmt.Errorf("%w: %s has %d of its 2 triggers and %d of its %d shard rows", errNotKept, t, triggers, shards, countShards)
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
// and the rows commit together. Where the count is not kept, there is no shard row to add to, and the count that
// starts keeping it, or reads the table, includes these rows.
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
