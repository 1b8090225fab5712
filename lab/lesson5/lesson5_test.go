package lesson5

import (
	"context"
	"database/sql"
	"testing"

	"hpnorton/internal/record"
	"hpnorton/internal/testenv"
	"hpnorton/lab/labdb"
	"hpnorton/repo"
)

// open makes a database of the test's own with the import's tables, and returns it through the product's repo,
// which counts, and through the lab's connection, which the lesson-5 style inserts on.
func open(tb testing.TB) (*repo.DB, *sql.DB) {
	tb.Helper()
	dsn := testenv.MySQL(tb, testenv.Namespace(tb))
	schema, err := repo.Open(context.Background(), dsn) // creates the tables, as the commands do
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { schema.Close() })
	db, err := labdb.Open(dsn)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	return schema, db
}

// TestImportStoresTheSampleData: the lesson-5 style stores every row of the shipped sample data, 1,000 a file,
// counted in the tables.
func TestImportStoresTheSampleData(t *testing.T) {
	schema, db := open(t)
	rows, err := Import(t.Context(), db, "../../testdata")
	if err != nil || rows != 2000 {
		t.Fatalf("Import = %d, %v; want 2000 rows", rows, err)
	}
	for _, k := range record.Kinds {
		if n, err := schema.Count(t.Context(), k); err != nil || n != 1000 {
			t.Errorf("%s holds %d rows (%v), want 1000", k.Table(), n, err)
		}
	}
}

// BenchmarkLesson5 imports the sample data the lesson-5 way, into emptied tables each time.
func BenchmarkLesson5(b *testing.B) {
	_, db := open(b)
	rows := 0
	for b.Loop() {
		b.StopTimer()
		if err := labdb.Reset(b.Context(), db); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		n, err := Import(b.Context(), db, "../../testdata")
		if err != nil {
			b.Fatal(err)
		}
		rows += n
	}
	b.ReportMetric(float64(rows)/b.Elapsed().Seconds(), "rows/s")
}
