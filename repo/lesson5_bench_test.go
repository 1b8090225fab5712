package repo

import (
	"context"
	"encoding/csv"
	"os"
	"strings"
	"testing"

	"hpnorton/internal/record"
	"hpnorton/internal/testenv"
)

// BenchmarkLesson5 is the "before" of the project: the sample data imported the way the original program did it,
// one file after the other, one INSERT per row with autocommit, each row its own transaction and its own wait for
// the redo log. It is here only to be measured and profiled (`make profile`), never used.
func BenchmarkLesson5(b *testing.B) {
	ns := testenv.Namespace(b)
	dsn := testenv.MySQL(b, ns)
	db, err := Open(context.Background(), dsn)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	files := map[record.Kind][][]string{}
	for _, k := range record.Kinds {
		f, err := os.Open("../testdata/" + k.FileName())
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
		if err := db.Reset(b.Context()); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		for _, k := range record.Kinds {
			q := "INSERT INTO " + quoteIdent(k.Table()) + " (" + columnList(k) + ") VALUES (" + strings.Repeat("?, ", len(k.Columns())+1) + "?)"
			for i, rec := range files[k] {
				args := make([]any, 0, len(rec)+2)
				for _, f := range rec {
					args = append(args, f)
				}
				args = append(args, 0, i+2) // no run, and the record's line
				if _, err := db.db.ExecContext(b.Context(), q, args...); err != nil {
					b.Fatal(err)
				}
				rows++
			}
		}
	}
	b.ReportMetric(float64(rows)/b.Elapsed().Seconds(), "rows/s")
}
