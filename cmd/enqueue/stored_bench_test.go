package main

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"testing"

	"hpnorton/internal/cli"
	"hpnorton/internal/coordinator"
	"hpnorton/internal/gen"
)

// BenchmarkImportIntoStored is BenchmarkImport's small everyday run, 2 × 1,000 rows in parallel mode, into tables
// that already hold HPNORTON_BENCH_STORED rows each (skipped when it is unset: filling 2 × 5,000,000 rows takes
// minutes). Its s/run against BenchmarkImport's at rows=1000 is what the stored rows cost a run, timed the same way:
// from the command's start to its printed tuples, with the worker in this process.
func BenchmarkImportIntoStored(b *testing.B) {
	stored, _ := strconv.Atoi(os.Getenv("HPNORTON_BENCH_STORED"))
	if stored <= 0 {
		b.Skip("HPNORTON_BENCH_STORED is not set to the rows each table holds first")
	}
	const rows = 1000
	b.Run(fmt.Sprintf("mode=parallel/rows=%d/stored=%d", rows, stored), func(b *testing.B) {
		bundle := setup(b, 4)
		dir := b.TempDir()
		if err := gen.WriteDir(dir, rows, gen.Options{}); err != nil {
			b.Fatal(err)
		}
		db, err := sql.Open("mysql", bundle.dsn)
		if err != nil {
			b.Fatal(err)
		}
		defer db.Close()
		fill(b, db, stored)
		reset := func() {
			// The file's rows go, by another program's DELETE, whose triggers keep the counts; the filler stays.
			for _, q := range []string{
				"DELETE FROM customers WHERE user_id LIKE 'C%'", "DELETE FROM products WHERE product_id LIKE 'P%'",
				"TRUNCATE TABLE import_tasks", "TRUNCATE TABLE import_runs",
			} {
				if _, err := db.Exec(q); err != nil {
					b.Fatal(err)
				}
			}
		}
		importOnce := func() float64 {
			code, stdout, stderr := bundle.enqueue(b, "--json", dir)
			if code != cli.ExitOK {
				b.Fatalf("exit %d\n%s", code, stderr)
			}
			var rep coordinator.Report
			if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
				b.Fatal(err)
			}
			for _, r := range rep.Results {
				if r.Processed != rows || r.Before != int64(stored) || r.After != int64(stored+rows) {
					b.Fatalf("results %+v, want %d processed, %d before and %d after per file", rep.Results, rows, stored, stored+rows)
				}
			}
			return rep.Seconds
		}
		// Warm: the first run counts each large table once, and keeps its count from then on.
		importOnce()
		var total float64
		for b.Loop() {
			b.StopTimer()
			reset()
			b.StartTimer()
			total += importOnce()
		}
		b.ReportMetric(total/float64(b.N), "s/run")
	})
}

// fill puts n filler rows in each table, with keys (X…, Y…) that no generated file holds, through MariaDB's
// sequence tables, half a million a statement. The rows are of the generated files' sizes.
func fill(b *testing.B, db *sql.DB, n int) {
	b.Helper()
	const step = 500_000
	for from := 1; from <= n; from += step {
		to := min(from+step-1, n)
		for _, q := range []string{
			`INSERT INTO customers (user_id, name, address, zip_code, phone_number, email)
			 SELECT CONCAT('X', LPAD(seq, 9, '0')), CONCAT('Filler Customer ', seq), CONCAT(seq, ' Filler Street, Springfield, IL'),
			        '62701', '(217) 555-0100', CONCAT('filler.customer', seq, '@hpnorton.example') FROM seq_%d_to_%d`,
			`INSERT INTO products (product_id, description, product_type, quantity_available)
			 SELECT CONCAT('Y', LPAD(seq, 9, '0')), CONCAT('Filler oak table ', seq), 'diningroom', seq %% 500 FROM seq_%d_to_%d`,
		} {
			if _, err := db.Exec(fmt.Sprintf(q, from, to)); err != nil {
				b.Fatalf("fill rows %d to %d: %v", from, to, err)
			}
		}
	}
}
