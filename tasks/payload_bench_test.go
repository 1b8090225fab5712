package tasks

import (
	"testing"

	"hpnorton/internal/record"
)

// BenchmarkPayload times one 20,000-row chunk of customers through the queue's encoding: the enqueuer's encode
// and the worker's decode with its checks. bytes/row is what Redis holds.
func BenchmarkPayload(b *testing.B) {
	var data []byte
	for i := range 20000 {
		data = append(data, "C"...)
		data = append(data, []byte{byte('0' + i%10), byte('0' + i/10%10), byte('0' + i/100%10), byte('0' + i/1000%10), byte('0' + i/10000%10)}...)
		data = append(data, "\tZoë O'Brien\t8103 Rue de l'Église, Apt 4, Chicago, IL\t02134\t(475) 416-3728\tzoe.obrien1@example.com\n"...)
	}
	p := ImportPayload{Format: PayloadFormat, DB: "d", RunID: "r", RunNo: 1, File: "customers.csv", FirstLine: 2, Rows: 20000, Data: data}
	var size int
	for b.Loop() {
		enc, err := p.encode()
		if err != nil {
			b.Fatal(err)
		}
		size = len(enc)
		if _, err := DecodeImportPayload(record.Customers, enc); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(size)/20000, "bytes/row")
}
