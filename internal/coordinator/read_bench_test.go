package coordinator

import (
	"context"
	"fmt"
	"testing"

	"hpnorton/internal/gen"
	"hpnorton/internal/record"
	"hpnorton/tasks"
)

// BenchmarkReadFile measures the enqueuer's own work on one file: reading, validating, settling keys and making
// each chunk's payload, with the queue left out. It reports nanoseconds and bytes allocated per record.
func BenchmarkReadFile(b *testing.B) {
	const rows = 100_000
	dir := b.TempDir()
	if err := gen.WriteDir(dir, rows, gen.Options{}); err != nil {
		b.Fatal(err)
	}
	for _, k := range record.Kinds {
		b.Run(fmt.Sprintf("kind=%s/rows=%d", k, rows), func(b *testing.B) {
			cfg := Config{Dir: dir, ChunkRows: DefaultChunkRows, ChunkBytes: DefaultChunkBytes}
			send := func(_ context.Context, k record.Kind, firstLine, rows int, data []byte, _ bool) error {
				p := tasks.ImportPayload{DB: "db", RunID: "run", RunNo: 1, File: k.FileName(), FirstLine: firstLine, Rows: rows, Bytes: len(data)}
				_, err := tasks.NewImportTask(k, p)
				return err
			}
			b.ReportAllocs()
			for b.Loop() {
				r, fileErr, err := readFile(b.Context(), cfg, k, &feed{}, send)
				if err != nil || fileErr != nil || r.counts.Read != rows {
					b.Fatalf("readFile: %v, %v, %+v", fileErr, err, r.counts)
				}
				r.problems.close()
				r.dups.close()
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*rows), "ns/record")
		})
	}
}
