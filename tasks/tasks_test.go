package tasks

import (
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"hpnorton/internal/record"
)

func TestPayloadRoundTrip(t *testing.T) {
	t.Parallel()
	for _, k := range record.Kinds {
		p := ImportPayload{Format: PayloadFormat, DB: "db1", RunID: "run1", RunNo: 7, File: k.FileName(), FirstLine: 1002, Rows: 2, Bytes: 34}
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

// TestPayloadBounds: a payload and its rows are untrusted input. Each field out of bounds is refused with its
// reason, before a worker allocates anything for it, and rows that do not match their payload are refused.
func TestPayloadBounds(t *testing.T) {
	t.Parallel()
	good := `{"format":3,"db":"d","run_id":"r","run_no":1,"file":"customers.csv","first_line":2,"rows":1,"bytes":13}`
	row := "C1\ta\tb\tc\td\te\n"
	p, err := DecodeImportPayload(record.Customers, []byte(good))
	if err != nil {
		t.Fatalf("the good payload is refused: %v", err)
	}
	if err := p.CheckRows([]byte(row)); err != nil {
		t.Fatalf("the good rows are refused: %v", err)
	}
	for _, tc := range []struct{ payload, want string }{
		{"", "payload"},
		{"not json", "payload"},
		{strings.Replace(good, `"format":3`, `"format":2`, 1), "queued by another version of enqueue"},
		{strings.Replace(good, `"db":"d",`, "", 1), "names no database"},
		{strings.Replace(good, `"run_id":"r"`, `"run_id":"`+strings.Repeat("r", 65)+`"`, 1), "run ID of 1 to 64 bytes"},
		{strings.Replace(good, `"run_no":1`, `"run_no":0`, 1), "run number"},
		{strings.Replace(good, "customers.csv", "../../etc/passwd", 1), "imports customers.csv, not ../../etc/passwd"},
		{strings.Replace(good, `"first_line":2`, `"first_line":-5`, 1), "first line -5"},
		{strings.Replace(good, `"rows":1`, `"rows":2147483647`, 1), "2147483647 rows: a task holds 1 to 100000"},
		{strings.Replace(good, `"rows":1`, `"rows":0`, 1), "0 rows"},
		{strings.Replace(good, `"bytes":13`, fmt.Sprintf(`"bytes":%d`, MaxChunkBytes+1), 1), "bytes of rows: a task of 1 rows holds 2 to"},
		{strings.Replace(good, `"bytes":13`, `"bytes":1`, 1), "1 bytes of rows"},
		// Update mode is format 4, so that a worker without it refuses the task instead of leaving rows as they are.
		{strings.Replace(good, `"bytes":13`, `"bytes":13,"update":true`, 1), "update mode is format 4"},
		{strings.Replace(good, `"format":3`, `"format":4`, 1), "update mode is format 4"},
	} {
		_, err := DecodeImportPayload(record.Customers, []byte(tc.payload))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("DecodeImportPayload(%.80q) = %v, want an error containing %q", tc.payload, err, tc.want)
		}
	}
	upd := strings.Replace(strings.Replace(good, `"format":3`, `"format":4`, 1), `"bytes":13`, `"bytes":13,"update":true`, 1)
	if p, err := DecodeImportPayload(record.Customers, []byte(upd)); err != nil || !p.Update {
		t.Errorf("an update-mode payload = %+v, %v; want it read, in update mode", p, err)
	}
	// The rows must be as long as the payload says, and hold as many rows, each ended by a newline.
	for _, tc := range []struct{ rows, want string }{
		{row[:12] + "x", "are not 1 lines"},
		{row + row, "are 26 bytes, and its payload says 13"},
		{"C1\ta\nb\tc\tddd\n", "are not 1 lines"},
		{"", "are 0 bytes"},
	} {
		if err := p.CheckRows([]byte(tc.rows)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("CheckRows(%q) = %v, want an error containing %q", tc.rows, err, tc.want)
		}
	}
	if _, err := KindOf("import:orders"); err == nil {
		t.Error("KindOf(import:orders) succeeded, want an error")
	}
}
