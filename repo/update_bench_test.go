package repo

import (
	"fmt"
	"testing"

	"hpnorton/internal/record"
	"hpnorton/internal/testenv"
)

// BenchmarkUpdateTask is one update-mode task of 20,000 products, all present and a tenth of them changed, against
// the fresh import of the same rows into an empty table: the database's time and this process's, per task.
func BenchmarkUpdateTask(b *testing.B) {
	const rows = 20_000
	keys := make([]string, rows)
	for i := range keys {
		keys[i] = fmt.Sprintf("P%08d", i+1)
	}
	for _, mode := range []string{"fresh", "update"} {
		b.Run("mode="+mode, func(b *testing.B) {
			ns := testenv.Namespace(b)
			db, err := Open(b.Context(), testenv.MySQL(b, ns))
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			run := 0
			task := func(round int, update bool) Task {
				run++
				id := fmt.Sprintf("%s_%d", ns, run)
				no, err := db.StartRun(b.Context(), id, DefaultKeepRuns)
				if err != nil {
					b.Fatal(err)
				}
				t := Task{ID: id + ":products:2", RunID: id, RunNo: no, Kind: record.Products, Rows: rows, Update: update}
				for i, k := range keys {
					desc := "desk " + k
					if i%10 == 0 && round%2 == 1 { // a tenth differ from the last round's
						desc = "changed desk " + k
					}
					t.Data = AppendRow(t.Data, bytesOf([]string{k, desc, "office", fmt.Sprint(i % 500)}))
				}
				return t
			}
			if _, err := db.ImportTask(b.Context(), task(0, false)); err != nil {
				b.Fatal(err)
			}
			round := 0
			for b.Loop() {
				round++
				b.StopTimer()
				t := task(round, mode == "update")
				if mode == "fresh" {
					if _, err := db.db.ExecContext(b.Context(), "TRUNCATE TABLE products"); err != nil {
						b.Fatal(err)
					}
				}
				b.StartTimer()
				w, err := db.ImportTask(b.Context(), t)
				if err != nil {
					b.Fatal(err)
				}
				if mode == "update" && (w.Updated != rows/10 || w.Added != 0) {
					b.Fatalf("round %d: %+v, want %d updated and none added", round, w, rows/10)
				}
			}
		})
	}
}
