package tasks

import (
	"bytes"
	"encoding/json"
	"testing"

	"hpnorton/internal/csvchunk"
	"hpnorton/internal/gen"
	"hpnorton/internal/record"
)

// BenchmarkPayload compares the two ways a chunk can travel: the file's own CSV bytes after a JSON line (what
// ImportPayload does) and the parsed fields as JSON. Each op is the whole trip for one 20,000-row chunk of
// customers: the enqueuer's encoding, then the worker's decoding and validation. bytes/row is what Redis holds.
func BenchmarkPayload(b *testing.B) {
	var file bytes.Buffer
	if err := gen.Write(&file, record.Customers, 20000, gen.Options{}); err != nil {
		b.Fatal(err)
	}
	s, err := csvchunk.NewSplitter(&file, 6, 20000, MaxChunkBytes)
	if err != nil {
		b.Fatal(err)
	}
	chunk, err := s.Next()
	if err != nil {
		b.Fatal(err)
	}
	p := ImportPayload{DB: "d", RunID: "r", RunNo: 1, File: "customers.csv", FirstLine: chunk.FirstLine, Records: chunk.Records, Data: chunk.Data}

	b.Run("encoding=csv", func(b *testing.B) {
		var size int
		for b.Loop() {
			enc, err := p.encode()
			if err != nil {
				b.Fatal(err)
			}
			size = len(enc)
			got, err := DecodeImportPayload(record.Customers, enc)
			if err != nil {
				b.Fatal(err)
			}
			if rows, problems, err := Validate(record.Customers, got); err != nil || len(rows) != chunk.Records || len(problems) != 0 {
				b.Fatalf("%d rows, %d problems, %v", len(rows), len(problems), err)
			}
		}
		b.ReportMetric(float64(size)/float64(chunk.Records), "bytes/row")
	})

	// The JSON form needs the records parsed on the enqueuer's side, which the CSV form leaves to the worker.
	type jsonPayload struct {
		ImportPayload
		Lines  [][2]int   `json:"lines"`
		Fields [][]string `json:"fields"`
	}
	b.Run("encoding=json", func(b *testing.B) {
		var size int
		for b.Loop() {
			jp := jsonPayload{ImportPayload: p}
			for r := range csvchunk.Records(p.Data, p.FirstLine, 6) {
				jp.Lines = append(jp.Lines, [2]int{r.Line, r.LastLine})
				jp.Fields = append(jp.Fields, r.Fields)
			}
			enc, err := json.Marshal(jp)
			if err != nil {
				b.Fatal(err)
			}
			size = len(enc)
			var got jsonPayload
			if err := json.Unmarshal(enc, &got); err != nil {
				b.Fatal(err)
			}
			for i, fields := range got.Fields {
				if _, prob := record.Customers.Validate(got.File, got.Lines[i][0], got.Lines[i][1], fields); prob != nil {
					b.Fatal(prob)
				}
			}
		}
		b.ReportMetric(float64(size)/float64(chunk.Records), "bytes/row")
	})
}
