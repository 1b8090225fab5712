// Package labdb holds the SQL that only the lab needs around an import's database: emptying its tables between
// timed runs, waiting for InnoDB to go quiet, and dropping a database a benchmark made. The product's SQL stays in
// repo; none of this belongs in a running import.
package labdb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
)

// Tables are every table an import writes, which Reset empties. import_seen is gone from the schema, but a
// database that an older version made may still hold it.
var Tables = []string{"customers", "products", "import_tasks", "import_runs", "import_seen"}

// Open opens the database the DSN names, which repo.Open has created.
func Open(dsn string) (*sql.DB, error) {
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return nil, fmt.Errorf("labdb: the MySQL DSN cannot be parsed")
	}
	c, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, fmt.Errorf("labdb: %w", err)
	}
	return sql.OpenDB(c), nil
}

// Reset empties the imported tables of every row but Prefill's, and the run and task records, for benchmarks that
// import the same files repeatedly. The tables' counts (repo's import_counts) are set to the rows left.
func Reset(ctx context.Context, db *sql.DB) error {
	conn, err := db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("labdb: reset: %w", err)
	}
	defer conn.Close()
	// The counting triggers leave this connection's deletes alone: the counts are set below.
	if _, err := conn.ExecContext(ctx, "SET @hpnorton_counted = 1"); err != nil {
		return fmt.Errorf("labdb: reset: %w", err)
	}
	for _, table := range Tables {
		var n int
		err := conn.QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = ?", table).Scan(&n)
		if err != nil {
			return fmt.Errorf("labdb: reset %s: %w", table, err)
		}
		if n == 0 {
			continue
		}
		if err := resetTable(ctx, conn, table); err != nil {
			return fmt.Errorf("labdb: reset %s: %w", table, err)
		}
	}
	return nil
}

func resetTable(ctx context.Context, conn *sql.Conn, table string) error {
	key, imported := firstColumn[table]
	if !imported {
		_, err := conn.ExecContext(ctx, "TRUNCATE TABLE "+quoteIdent(table))
		return err
	}
	filler, err := fillerRows(ctx, conn, table)
	if err != nil {
		return err
	}
	// TRUNCATE is quicker, and fires no trigger; with filler rows, the others go by their keys' range.
	q := "TRUNCATE TABLE " + quoteIdent(table)
	if filler > 0 {
		q = "DELETE FROM " + quoteIdent(table) + " WHERE " + key + " < 'F' OR " + key + " >= 'G'"
	}
	if _, err := conn.ExecContext(ctx, q); err != nil {
		return err
	}
	_, err = conn.ExecContext(ctx, "UPDATE import_counts SET n = IF(shard = 0, ?, 0) WHERE tbl = ?", filler, table)
	var merr *mysql.MySQLError
	if errors.As(err, &merr) && merr.Number == 1146 { // ER_NO_SUCH_TABLE: a database no import has opened
		return nil
	}
	return err
}

// fillerRows is how many rows Prefill put in table: their keys run from F000000001 on, so the last one tells.
func fillerRows(ctx context.Context, conn *sql.Conn, table string) (int, error) {
	key := firstColumn[table]
	var last string
	if err := conn.QueryRowContext(ctx, "SELECT COALESCE(MAX("+key+"), 'F0') FROM "+quoteIdent(table)+" WHERE "+key+" >= 'F' AND "+key+" < 'G'").Scan(&last); err != nil {
		return 0, err
	}
	n, err := strconv.Atoi(last[1:])
	if err != nil {
		return 0, fmt.Errorf("the last filler key %q: %w", last, err)
	}
	return n, nil
}

// DropCountTriggers removes repo's counting triggers from the database db is connected to, for benchmarks of what
// ran without them: mysqlimport, or an earlier version. Its counts are then not kept, and must be taken by reading
// the tables.
func DropCountTriggers(ctx context.Context, db *sql.DB) error {
	rows, err := db.QueryContext(ctx, `SELECT trigger_name FROM information_schema.triggers WHERE trigger_schema = DATABASE() AND trigger_name LIKE 'hpnorton\_%\_count\_%'`)
	if err != nil {
		return fmt.Errorf("labdb: drop the counting triggers: %w", err)
	}
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			rows.Close()
			return fmt.Errorf("labdb: drop the counting triggers: %w", err)
		}
		names = append(names, n)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("labdb: drop the counting triggers: %w", err)
	}
	for _, n := range names {
		if _, err := db.ExecContext(ctx, "DROP TRIGGER "+quoteIdent(n)); err != nil {
			return fmt.Errorf("labdb: drop the counting triggers: %w", err)
		}
	}
	return nil
}

// Drop drops the database db is connected to, for benchmarks that made a database of their own.
func Drop(ctx context.Context, db *sql.DB) error {
	var name string
	if err := db.QueryRowContext(ctx, "SELECT DATABASE()").Scan(&name); err != nil {
		return fmt.Errorf("labdb: drop: %w", err)
	}
	if _, err := db.ExecContext(ctx, "DROP DATABASE "+quoteIdent(name)); err != nil {
		return fmt.Errorf("labdb: drop %s: %w", name, err)
	}
	return nil
}

// Settle brings InnoDB to rest before a timed run, so that the run pays for its own writes and for no earlier
// run's. It writes every dirty page of the tables of the databases whose names start with prefix (FLUSH TABLES …
// FOR EXPORT), and waits until InnoDB's checkpoint has caught up with its log, or until the timeout. It reports
// how long it took.
//
// InnoDB writes a run's pages in the background at innodb_io_capacity, about 300 pages a second here, in batches
// a second apart: a run of 2 × 300,000 rows leaves some 4,600 dirty pages and 79 MB of its 96 MB log to
// checkpoint. Waiting for a pause in the page writes, as this did before, ended between two batches. The next
// run then started with the log nearly full, and InnoDB had to write the earlier run's pages at once, inside that
// run's time: MariaDB's CPU for the same load varied from 1.2 to 2.0 CPU-seconds with the mode that ran before.
func Settle(ctx context.Context, db *sql.DB, prefix string, timeout time.Duration) (time.Duration, error) {
	start := time.Now()
	if err := flushTables(ctx, db, prefix); err != nil {
		return 0, err
	}
	// The checkpoint follows within a second or two once no page is dirty. A server that others write to may
	// never get there: a checkpoint age that stops falling ends the wait as well.
	const caughtUp, still = 1 << 20, 2 * time.Second
	low, lowAt := int64(-1), time.Now()
	for time.Since(start) < timeout {
		var name string
		var age int64
		err := db.QueryRowContext(ctx, "SHOW GLOBAL STATUS LIKE 'Innodb_checkpoint_age'").Scan(&name, &age)
		if errors.Is(err, sql.ErrNoRows) {
			break // MySQL does not show it; the pages are written, which is most of it
		}
		if err != nil {
			return 0, fmt.Errorf("labdb: settle: %w", err)
		}
		if age < caughtUp || (low >= 0 && age >= low && time.Since(lowAt) > still) {
			break
		}
		if low < 0 || age < low {
			low, lowAt = age, time.Now()
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return time.Since(start), nil
}

// flushTables writes the dirty pages of every InnoDB table in the databases whose names start with prefix.
// FLUSH TABLES … FOR EXPORT takes the tables' locks in its session, so it runs on a connection of its own, which
// then unlocks them.
func flushTables(ctx context.Context, db *sql.DB, prefix string) error {
	rows, err := db.QueryContext(ctx, "SELECT table_schema, table_name FROM information_schema.tables WHERE engine = 'InnoDB' AND LEFT(table_schema, CHAR_LENGTH(?)) = ?", prefix, prefix)
	if err != nil {
		return fmt.Errorf("labdb: settle: %w", err)
	}
	var names []string
	for rows.Next() {
		var schema, table string
		if err := rows.Scan(&schema, &table); err != nil {
			rows.Close()
			return fmt.Errorf("labdb: settle: %w", err)
		}
		names = append(names, quoteIdent(schema)+"."+quoteIdent(table))
	}
	rows.Close()
	if err := rows.Err(); err != nil || len(names) == 0 {
		return err
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("labdb: settle: %w", err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "FLUSH TABLES "+strings.Join(names, ", ")+" FOR EXPORT"); err != nil {
		return fmt.Errorf("labdb: settle: write the tables' pages: %w", err)
	}
	if _, err := conn.ExecContext(ctx, "UNLOCK TABLES"); err != nil {
		return fmt.Errorf("labdb: settle: %w", err)
	}
	return nil
}

func quoteIdent(s string) string { return "`" + strings.ReplaceAll(s, "`", "``") + "`" }

// prefillBatch is the rows one statement of Prefill inserts: small enough that no transaction's undo grows large.
const prefillBatch = 250_000

// prefillRows are the SELECTs that make rows of each table from MariaDB's sequence engine, shaped like gen's (a
// customer about 120 bytes), with keys that start with F, which no generated file holds.
var prefillRows = map[string]string{
	"customers": `SELECT CONCAT('F', LPAD(seq, 9, '0')), CONCAT('Filler Customer ', seq), CONCAT(seq, ' Filler Street, Springfield, IL'),
		LPAD(seq % 100000, 5, '0'), CONCAT('(555) ', LPAD(seq % 1000, 3, '0'), '-', LPAD(seq % 10000, 4, '0')), CONCAT('filler', seq, '@example.com')`,
	"products": `SELECT CONCAT('F', LPAD(seq, 9, '0')), CONCAT('Filler product number ', seq), ELT(1 + seq % 3, 'livingroom', 'kitchen', 'office'), seq % 1000`,
}

// Prefill adds n rows to table, an imported table of a database that repo.Open made, so that benchmarks can import
// into tables of the size users have. The rows go in on a connection that counts its own rows, as hpnorton's do
// (repo's @hpnorton_counted), and a kept count of the table is raised by n in the same transaction; the counting
// triggers would otherwise double a fill's time.
func Prefill(ctx context.Context, db *sql.DB, table string, n int) error {
	q, ok := prefillRows[table]
	if !ok {
		return fmt.Errorf("labdb: prefill: no rows for table %q", table)
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("labdb: prefill %s: %w", table, err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "SET @hpnorton_counted = 1"); err != nil {
		return fmt.Errorf("labdb: prefill %s: %w", table, err)
	}
	// A second fill carries on from the last filler key.
	from, err := fillerRows(ctx, conn, table)
	if err != nil {
		return fmt.Errorf("labdb: prefill %s: %w", table, err)
	}
	for lo := from + 1; lo <= from+n; lo += prefillBatch {
		hi := min(lo+prefillBatch-1, from+n)
		tx, err := conn.BeginTx(ctx, nil)
		if err != nil {
			return fmt.Errorf("labdb: prefill %s: %w", table, err)
		}
		if _, err := tx.ExecContext(ctx, fmt.Sprintf("INSERT INTO %s %s FROM seq_%d_to_%d", quoteIdent(table), q, lo, hi)); err != nil {
			tx.Rollback()
			return fmt.Errorf("labdb: prefill %s: %w", table, err)
		}
		if _, err := tx.ExecContext(ctx, "UPDATE import_counts SET n = n + ? WHERE tbl = ? AND shard = 0", hi-lo+1, table); err != nil {
			tx.Rollback()
			return fmt.Errorf("labdb: prefill %s: %w", table, err)
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("labdb: prefill %s: %w", table, err)
		}
	}
	// InnoDB's estimate of the table's rows, which tells repo whether to keep its count, follows at once.
	if _, err := conn.ExecContext(ctx, "ANALYZE TABLE "+quoteIdent(table)); err != nil {
		return fmt.Errorf("labdb: prefill %s: %w", table, err)
	}
	return nil
}

// firstColumn is each table's key column.
var firstColumn = map[string]string{"customers": "user_id", "products": "product_id"}

// CountChanged counts the rows of table whose second column, the name or description that gen.Options.ChangeEvery
// changes, ends with suffix.
func CountChanged(ctx context.Context, db *sql.DB, table, suffix string) (int64, error) {
	var col string
	err := db.QueryRowContext(ctx, "SELECT column_name FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name = ? AND ordinal_position = 2", table).Scan(&col)
	if err != nil {
		return 0, fmt.Errorf("labdb: count changed %s: %w", table, err)
	}
	var n int64
	err = db.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+quoteIdent(table)+" WHERE RIGHT("+quoteIdent(col)+", CHAR_LENGTH(?)) = ?", suffix, suffix).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("labdb: count changed %s: %w", table, err)
	}
	return n, nil
}
