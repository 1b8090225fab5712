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
	dirty := func() int {
		var n int
		err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.innodb_buffer_page WHERE table_name LIKE ? AND oldest_modification > 0",
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
	// A page the page cleaner was writing when Settle flushed is clean a moment later; one Settle did not write
	// waits for the background, which writes at most 2,000 pages a second (innodb_io_capacity_max).
	after := dirty()
	for deadline := time.Now().Add(200 * time.Millisecond); after != 0 && time.Now().Before(deadline); after = dirty() {
		time.Sleep(10 * time.Millisecond)
	}
	if after != 0 {
		t.Errorf("%d of the table's %d dirty pages are still dirty 200 ms after Settle", after, before)
	}
}
