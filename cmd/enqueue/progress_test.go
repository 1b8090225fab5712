package main

import (
	"strings"
	"testing"
	"time"

	"hpnorton/internal/coordinator"
	"hpnorton/internal/record"
	"hpnorton/internal/testenv"
)

// TestProgressBars drives the bars as a run does: an estimated total while a file is read, then the exact one,
// then done. The last frame shows each file's rows done out of its total, and log lines survive the bars.
func TestProgressBars(t *testing.T) {
	t.Parallel()
	var out testenv.Buffer
	pb := newProgressBars(&out)
	pb.Update([]coordinator.FileProgress{
		{Kind: record.Customers, Rows: 100, Enqueued: 300, Total: 1200},
		{Kind: record.Products, Rows: 0, Enqueued: 200, Total: 1100},
	})
	// A refresh draws the estimates, marked as such.
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(out.String(), "100 / ~1200 ") || !strings.Contains(out.String(), "left ?"); {
		if time.Now().After(deadline) {
			t.Fatalf("no estimated total, and no unknown time left for the file with no row done, drawn within 10 s:\n%s", out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := pb.Write([]byte("a log line while the bars run\n")); err != nil {
		t.Fatal(err)
	}
	pb.Update([]coordinator.FileProgress{
		{Kind: record.Customers, Rows: 1000, Enqueued: 1000, Total: 1000, Exact: true, Done: true},
		{Kind: record.Products, Rows: 600, Enqueued: 1000, Total: 1000, Exact: true},
	})
	pb.Close()
	pb.Close() // a second Close does nothing
	if _, err := pb.Write([]byte("a log line after them\n")); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	for _, want := range []string{"customers.csv", "1000 / 1000 ", "products.csv", "600 / 1000 ", "a log line while the bars run", "a log line after them"} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
	if isTerminal(&out) {
		t.Error("a buffer counts as a terminal")
	}
}
