package repo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"hpnorton/internal/record"
)

// gatedReader gives its rows, then blocks until gate closes: a LOAD DATA reading it stays under way, its rows
// written and not committed, for as long as the test needs.
type gatedReader struct {
	rows io.Reader
	gate chan struct{}
}

func (g *gatedReader) Read(p []byte) (int, error) {
	if n, err := g.rows.Read(p); err != io.EOF {
		return n, err
	}
	<-g.gate
	return 0, io.EOF
}

// startLoad begins a task's transaction as ImportTask does, its claim then load's statement of rows, on a
// connection of its own, and leaves the load waiting for more rows. The returned func lets it end and commit; the
// test's end does so too, before the database goes.
func startLoad(t *testing.T, b *testBundle, task Task, rows []testRow) (finish func() error) {
	t.Helper()
	var data []byte
	for _, r := range rows {
		data = AppendRow(data, bytesOf(r.Fields))
	}
	gate := make(chan struct{})
	name := "loading-test-" + b.ns + "-" + task.ID
	mysql.RegisterReaderHandler(name, func() io.Reader { return &gatedReader{rows: strings.NewReader(string(data)), gate: gate} })
	tx, err := b.db.db.BeginTx(b.ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	var once bool
	finish = func() error {
		if once {
			return nil
		}
		once = true
		close(gate)
		defer mysql.DeregisterReaderHandler(name)
		if err := <-done; err != nil {
			_ = tx.Rollback()
			return err
		}
		return tx.Commit()
	}
	t.Cleanup(func() { _ = finish() })
	if _, err := tx.ExecContext(b.ctx, "INSERT INTO import_tasks (task_id, run_id, kind) VALUES (?, ?, ?)", task.ID, task.RunID, task.Kind.String()); err != nil {
		t.Fatal(err)
	}
	go func() {
		_, err := tx.ExecContext(b.ctx, loadStatement(task, name, task.Kind.Table()))
		done <- err
	}()
	return finish
}

// waitLoading asks Loading until it reports want for the run, as the server takes in the rows sent so far. The
// server has every row it will get at once, so a wrong answer stays wrong: a generous bound ends the wait then.
// It asks every 150 ms: InnoDB refreshes what INNODB_TRX shows only after 100 ms with no one reading it, so asking
// more often would keep reading the first answer.
func waitLoading(t *testing.T, b *testBundle, runNo uint64, want map[record.Kind]int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	for {
		got, err := b.db.Loading(b.ctx, runNo)
		if err != nil {
			t.Fatalf("Loading: %v", err)
		}
		if fmt.Sprint(got) == fmt.Sprint(want) {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("Loading(%d) = %v, want %v", runNo, got, want)
		case <-time.After(150 * time.Millisecond):
		}
	}
}

// TestLoadingCountsRowsUnderWay: while a task's LOAD DATA has sent 3 of its rows, Loading reports those 3 for its
// run and kind, and leaves out the task's claim. It reports nothing of another run loading at the same time under
// its own number, nor of a run of another database under the same number. Once the task commits, its rows are no
// longer under way.
func TestLoadingCountsRowsUnderWay(t *testing.T) {
	t.Parallel()
	b, elsewhere := setup(t), setup(t)
	mine := b.task(t, "run-a", record.Customers, 2)
	other := b.task(t, "run-b", record.Products, 2)
	same := elsewhere.task(t, "run-a", record.Customers, 2)
	if same.RunNo != mine.RunNo {
		t.Fatalf("the other database's first run is number %d, this one's %d", same.RunNo, mine.RunNo)
	}
	startLoad(t, elsewhere, same, []testRow{{Fields: []string{"x1", "Xe", "9 Road", "12345", "555", "x@example.com"}}})
	waitLoading(t, elsewhere, same.RunNo, map[record.Kind]int64{record.Customers: 1})
	finishMine := startLoad(t, b, mine, []testRow{
		{Fields: []string{"c1", "Ann", "1 Road", "12345", "555", "a@example.com"}},
		{Fields: []string{"c2", "Bob", "2 Road", "12345", "555", "b@example.com"}},
		{Fields: []string{"c3", "Cy", "3 Road", "12345", "555", "c@example.com"}},
	})
	startLoad(t, b, other, products("p1", "p2"))

	waitLoading(t, b, mine.RunNo, map[record.Kind]int64{record.Customers: 3})
	waitLoading(t, b, other.RunNo, map[record.Kind]int64{record.Products: 2})
	if err := finishMine(); err != nil {
		t.Fatal(err)
	}
	waitLoading(t, b, mine.RunNo, map[record.Kind]int64{})
	if got := b.count(t, record.Customers); got != 3 {
		t.Errorf("customers after the commit: %d rows, want 3", got)
	}
}

// TestLoadingWithoutProcessPrivilege: an account that may write the database but not see other connections'
// transactions gets ErrNoProcessPrivilege, which tells the caller to go by commits alone.
func TestLoadingWithoutProcessPrivilege(t *testing.T) {
	t.Parallel()
	b := setup(t)
	user := "u" + b.ns[len(b.ns)-8:]
	for _, q := range []string{
		"CREATE USER '" + user + "'@'%' IDENTIFIED BY 'pw-" + user + "'",
		"GRANT ALL ON `" + b.ns + "`.* TO '" + user + "'@'%'",
	} {
		if _, err := b.db.db.ExecContext(b.ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	t.Cleanup(func() { _, _ = b.db.db.Exec("DROP USER IF EXISTS '" + user + "'@'%'") })
	cfg, err := mysql.ParseDSN(b.dsn)
	if err != nil {
		t.Fatal(err)
	}
	cfg.User, cfg.Passwd = user, "pw-"+user
	db, err := Open(b.ctx, cfg.FormatDSN())
	if err != nil {
		t.Fatalf("Open as %s: %v", user, err)
	}
	defer db.Close()
	if _, err := db.Loading(b.ctx, 1); !errors.Is(err, ErrNoProcessPrivilege) {
		t.Errorf("Loading without PROCESS: %v, want ErrNoProcessPrivilege", err)
	}
}
