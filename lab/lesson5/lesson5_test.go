// Package lesson5 measures the "before" of the project: the sample data imported the way the original program did
// it. It is here only to be measured and profiled (`make profile`), never used.
package lesson5

import (
	"context"
	"encoding/csv"
	"os"
	"strings"
	"testing"

	"hpnorton/internal/record"
	"hpnorton/internal/testenv"
	"hpnorton/lab/labdb"
	"hpnorton/repo"
)

// BenchmarkLesson5 imports the sample data one file after the other, one INSERT per row with autocommit, each row
// its own transaction and its own wait for the redo log.
func BenchmarkLesson5(b *testing.B) {
	ns := testenv.Namespace(b)
	dsn := testenv.MySQL(b, ns)
	schema, err := repo.Open(context.Background(), dsn) // creates the tables, as the commands do
	if err != nil {
		b.Fatal(err)
	}
	schema.Close()
	db, err := labdb.Open(dsn)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	files := map[record.Kind][][]string{}
	for _, k := range record.Kinds {
		f, err := os.Open("../../testdata/" + k.FileName())
		if err != nil {
			b.Fatal(err)
		}
		recs, err := csv.NewReader(f).ReadAll()
		f.Close()
		if err != nil {
			b.Fatal(err)
		}
		files[k] = recs[1:] // less the header
	}
	rows := 0
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		if err := labdb.Reset(b.Context(), db); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		for _, k := range record.Kinds {
			q := "INSERT INTO " + k.Table() + " (" + strings.Join(k.Header(), ", ") + ") VALUES (" + strings.Repeat("?, ", len(k.Columns())-1) + "?)"
			for _, rec := range files[k] {
				args := make([]any, len(rec))
				for i, f := range rec {
					args[i] = f
				}
				if _, err := db.ExecContext(b.Context(), q, args...); err != nil {
					b.Fatal(err)
				}
				rows++
			}
		}
	}
	b.ReportMetric(float64(rows)/b.Elapsed().Seconds(), "rows/s")
}
