package tasks

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"hpnorton/internal/record"
)

func TestPayloadRoundTrip(t *testing.T) {
	t.Parallel()
	for _, k := range record.Kinds {
		p := ImportPayload{Format: PayloadFormat, DB: "db1", RunID: "run1", RunNo: 7, File: k.FileName(), FirstLine: 1002, Rows: 2,
			Data: []byte("P1\ta\\nb\toffice\t1\nP2\tc\toffice\t0\n")}
		task, err := NewImportTask(k, p)
		if err != nil {
			t.Fatal(err)
		}
		kind, err := KindOf(task.Type())
		if err != nil || kind != k {
			t.Fatalf("KindOf(%q) = %v, %v; want %v", task.Type(), kind, err, k)
		}
		got, err := DecodeImportPayload(k, task.Payload())
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(p, got); diff != "" {
			t.Errorf("%v payload (-want, +got):\n%s", k, diff)
		}
		if k == record.Products {
			if got, want := p.TaskID(k), "run1:products:1002"; got != want {
				t.Errorf("TaskID = %q, want %q", got, want)
			}
		}
	}
}

// TestPayloadBounds: a payload is untrusted input. Each field out of bounds is refused with its reason, before a
// worker allocates anything for it.
func TestPayloadBounds(t *testing.T) {
	t.Parallel()
	good := `{"format":2,"db":"d","run_id":"r","run_no":1,"file":"customers.csv","first_line":2,"rows":1}`
	row := "C1\ta\tb\tc\td\te\n"
	if _, err := DecodeImportPayload(record.Customers, []byte(row+good)); err != nil {
		t.Fatalf("the good payload is refused: %v", err)
	}
	for _, tc := range []struct{ payload, want string }{
		{"", "no rows before its metadata"},
		{"\nnot json", "payload metadata"},
		{row + strings.Replace(good, `"format":2`, `"format":1`, 1), "queued by another version of enqueue"},
		{row + strings.Replace(good, `"db":"d",`, "", 1), "names no database"},
		{row + strings.Replace(good, `"run_id":"r"`, `"run_id":"`+strings.Repeat("r", 65)+`"`, 1), "run ID of 1 to 64 bytes"},
		{row + strings.Replace(good, `"run_no":1`, `"run_no":0`, 1), "run number"},
		{row + strings.Replace(good, "customers.csv", "../../etc/passwd", 1), "imports customers.csv, not ../../etc/passwd"},
		{row + strings.Replace(good, `"first_line":2`, `"first_line":-5`, 1), "first line -5"},
		{row + strings.Replace(good, `"rows":1`, `"rows":2147483647`, 1), "2147483647 rows: a task holds 1 to 100000"},
		{row + strings.Replace(good, `"rows":1`, `"rows":0`, 1), "0 rows"},
		{strings.Repeat("x", MaxChunkBytes) + "\n" + good, "bytes of rows: a task holds at most"},
		// The data must hold as many rows as the payload claims, each ended by a newline.
		{row + strings.Replace(good, `"rows":1`, `"rows":2`, 1), "its data is not 2 rows"},
		{row + row + good, "its data is not 1 rows"},
	} {
		_, err := DecodeImportPayload(record.Customers, []byte(tc.payload))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("DecodeImportPayload(%.80q) = %v, want an error containing %q", tc.payload, err, tc.want)
		}
	}
	if _, err := KindOf("import:orders"); err == nil {
		t.Error("KindOf(import:orders) succeeded, want an error")
	}
}
