// Package labdb holds the SQL that only the lab needs around an import's database: emptying its tables between
// timed runs, waiting for InnoDB to go quiet, and dropping a database a benchmark made. The product's SQL stays in
// repo; none of this belongs in a running import.
package labdb

import (
	"context"
	"database/sql"
	"fmt"
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

// Reset empties the imported tables and the run and task records, for benchmarks that import the same files
// repeatedly.
func Reset(ctx context.Context, db *sql.DB) error {
	for _, table := range Tables {
		var n int
		err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = ?", table).Scan(&n)
		if err != nil {
			return fmt.Errorf("labdb: reset %s: %w", table, err)
		}
		if n == 0 {
			continue
		}
		if _, err := db.ExecContext(ctx, "TRUNCATE TABLE "+quoteIdent(table)); err != nil {
			return fmt.Errorf("labdb: reset %s: %w", table, err)
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

// Settle waits until InnoDB has stopped writing pages in the background, or until the timeout, so that a
// benchmark run does not pay for the writes of the run before it. It reports how long it waited.
func Settle(ctx context.Context, db *sql.DB, timeout time.Duration) (time.Duration, error) {
	const quiet = 300 * time.Millisecond // no page written for this long counts as settled
	start := time.Now()
	last := int64(-1)
	for time.Since(start) < timeout {
		var name string
		var flushed int64
		if err := db.QueryRowContext(ctx, "SHOW GLOBAL STATUS LIKE 'Innodb_buffer_pool_pages_flushed'").Scan(&name, &flushed); err != nil {
			return 0, fmt.Errorf("labdb: settle: %w", err)
		}
		if flushed == last {
			break
		}
		last = flushed
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(quiet):
		}
	}
	return time.Since(start), nil
}

func quoteIdent(s string) string { return "`" + strings.ReplaceAll(s, "`", "``") + "`" }
