package main

import (
	"fmt"
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

// TestProgressColumnsStay: a count that grows from 6 to 7 digits moves no column of the bars: each bar starts, and
// each rate ends, where it did, and every line fits 80 columns.
func TestProgressColumnsStay(t *testing.T) {
	t.Parallel()
	var out testenv.Buffer
	pb := newProgressBars(&out)
	defer pb.Close()
	// frame waits for a drawn frame whose customers line shows rows, and returns its two lines.
	frame := func(rows int64) []string {
		pb.Update([]coordinator.FileProgress{
			{Kind: record.Customers, Rows: rows, Enqueued: 2_000_000, Total: 2_000_000, Exact: true},
			{Kind: record.Products, Rows: 5, Enqueued: 2_000_000, Total: 2_000_000, Exact: true},
		})
		want := fmt.Sprintf(" %d / 2000000 ", rows)
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			lines := strings.Split(out.String(), "\n")
			for i := len(lines) - 1; i > 0; i-- {
				if strings.Contains(lines[i-1], want) && strings.Contains(lines[i], "products.csv") {
					return []string{lines[i-1], lines[i]}
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("no frame showed %q within 10 s:\n%q", want, out.String())
			}
		}
	}
	columns := func(line string) [2]int {
		line = line[strings.LastIndex(line, "\r")+1:] // past mpb's cursor movements
		if i := strings.Index(line, "\x1b[J"); i >= 0 {
			line = line[i+3:]
		}
		if len(line) > 80 {
			t.Errorf("a line of %d columns, want at most 80: %q", len(line), line)
		}
		return [2]int{strings.Index(line, "["), strings.Index(line, "rows/s")}
	}
	before, after := frame(999_999), frame(1_000_000)
	for i := range before {
		if b, a := columns(before[i]), columns(after[i]); b != a || b[0] < 0 || b[1] < 0 {
			t.Errorf("columns of the bar and the rate at 999999 rows %v, at 1000000 %v:\n%q\n%q", b, a, before[i], after[i])
		}
	}
}
