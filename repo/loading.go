package repo

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/go-sql-driver/mysql"

	"hpnorton/internal/record"
)

// A task's rows commit all at once, so the rows committed so far move in steps of a task (20,000 rows by default),
// and a progress bar or a time left built on them alone jumps and guesses. While a task's LOAD DATA runs, InnoDB
// counts the rows its transaction has written (information_schema.INNODB_TRX, trx_rows_modified), and the
// statement's text names the task's run and kind (loadTag): together they tell how far the tasks under way have
// got, row by row.
//
// InnoDB serves INNODB_TRX from a cache that it refreshes only when no one has read it for 100 ms (trx0i_s.cc,
// CACHE_MIN_IDLE_TIME), so that the tables of one query agree. A caller that asks more often than that, or many
// callers together, read the same answer again: ask every few hundred milliseconds.

// loadTag is the comment a task's LOAD DATA statement starts with, which PROCESSLIST shows: the run's number and
// the kind, never the run ID, which is the user's text and has no place in SQL.
func loadTag(runNo uint64, k record.Kind) string { return runTag(runNo) + k.String() + " */ " }

// runTag is the start of every loadTag of run runNo.
func runTag(runNo uint64) string { return "/* hpnorton run " + strconv.FormatUint(runNo, 10) + " " }

// ErrNoProcessPrivilege means the account may not see other connections' transactions (MySQL's PROCESS
// privilege), so Loading cannot tell how far tasks under way have got.
var ErrNoProcessPrivilege = errors.New("repo: the MySQL account lacks the PROCESS privilege, which shows the rows of tasks under way")

// errSpecificAccessDenied is ER_SPECIFIC_ACCESS_DENIED_ERROR, "you need (at least one of) the PROCESS privilege".
const errSpecificAccessDenied = 1227

// Loading returns, for each kind, the rows that run runNo's tasks under way have written and not yet committed,
// in this database. A task's transaction writes its claim (import_tasks) before its rows, and Loading leaves it
// out. A row a task skips as present writes nothing, so it counts only once its task commits, as do the rows of
// the INSERT method, which is not LOAD DATA.
func (d *DB) Loading(ctx context.Context, runNo uint64) (map[record.Kind]int64, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT p.INFO, t.trx_rows_modified
		FROM information_schema.INNODB_TRX t JOIN information_schema.PROCESSLIST p ON p.ID = t.trx_mysql_thread_id
		WHERE p.DB = DATABASE() AND p.INFO LIKE ?`, runTag(runNo)+"%")
	var merr *mysql.MySQLError
	if errors.As(err, &merr) && merr.Number == errSpecificAccessDenied {
		return nil, fmt.Errorf("%w: %w", ErrNoProcessPrivilege, err)
	}
	if err != nil {
		return nil, fmt.Errorf("repo: rows under way: %w", err)
	}
	defer rows.Close()
	out := map[record.Kind]int64{}
	for rows.Next() {
		var info string
		var n int64
		if err := rows.Scan(&info, &n); err != nil {
			return nil, fmt.Errorf("repo: rows under way: %w", err)
		}
		for _, k := range record.Kinds {
			if strings.HasPrefix(info, loadTag(runNo, k)) {
				out[k] += max(n-1, 0) // the claim is written before the rows
			}
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("repo: rows under way: %w", err)
	}
	return out, nil
}
