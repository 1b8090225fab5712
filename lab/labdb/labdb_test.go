package labdb

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"hpnorton/internal/testenv"
)

// TestSettleWritesTheTablesPages: right after a load, the table's pages are dirty in InnoDB's buffer pool; Settle
// writes them at once, rather than waiting for InnoDB to write them in the background over seconds. Its timeout
// here is too short for the background to do it.
func TestSettleWritesTheTablesPages(t *testing.T) {
	ns := testenv.Namespace(t)
	db, err := Open(testenv.MySQL(t, ns))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := t.Context()
	if _, err := db.ExecContext(ctx, "CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(255) NOT NULL) ENGINE = InnoDB"); err != nil {
		t.Fatal(err)
	}
	const rows, batch = 40_000, 2_000
	v := strings.Repeat("x", 200)
	for i := 0; i < rows; i += batch {
		var b strings.Builder
		b.WriteString("INSERT INTO t VALUES ")
		for j := i; j < i+batch; j++ {
			if j > i {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, "(%d,'%s')", j, v)
		}
		if _, err := db.ExecContext(ctx, b.String()); err != nil {
			t.Fatal(err)
		}
	}
	// A page is dirty while its oldest_modification is an LSN. MariaDB marks a page it has written, but not yet
	// taken off the flush list, with 1 (and a temporary table's dirty page with 2): both are clean on disk, and
	// the page cleaner takes them off in its own time. Counting them made this test wait on the cleaner.
	dirty := func() int {
		var n int
		err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.innodb_buffer_page WHERE table_name LIKE ? AND oldest_modification > 2",
			"%"+ns+"%").Scan(&n)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	before := dirty()
	if before < 100 {
		t.Fatalf("%d dirty pages of %d rows just loaded; the test needs more to tell", before, rows)
	}
	if _, err := Settle(ctx, db, ns, 500*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if after := dirty(); after != 0 {
		t.Errorf("%d of the table's %d dirty pages are still dirty after Settle", after, before)
	}
}
