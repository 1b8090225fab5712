package csvchunk

import (
	"bytes"
	"encoding/csv"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// got is one record as a reader saw it: its starting line and fields, or that it could not be parsed.
type got struct {
	Line   int
	Fields []string
	Bad    bool
}

// direct parses a whole stream after its header in one go, as the reference for split-then-reread.
func direct(t *testing.T, input string) []got {
	t.Helper()
	cr := newReader(strings.NewReader(strings.TrimPrefix(input, "\ufeff")))
	if _, err := cr.Read(); err != nil {
		t.Fatalf("reference header: %v", err)
	}
	var out []got
	for {
		fields, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return out
		}
		var perr *csv.ParseError
		if errors.As(err, &perr) {
			out = append(out, got{Line: perr.StartLine, Bad: true})
			continue
		}
		line, _ := cr.FieldPos(0)
		out = append(out, got{Line: line, Fields: fields})
	}
}

// splitAndReread cuts the stream into chunks, reads every chunk back, and checks that the chunks' bytes are
// exactly the stream after the header, but for blank lines at its very end, which hold no record.
func splitAndReread(t *testing.T, input string, maxRows, maxBytes int) ([]got, []Chunk) {
	t.Helper()
	s, err := NewSplitter(strings.NewReader(input), maxRows, maxBytes)
	if err != nil {
		t.Fatalf("NewSplitter: %v", err)
	}
	var out []got
	var chunks []Chunk
	var all bytes.Buffer
	for {
		c, err := s.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		if c.Records < 1 || c.Records > maxRows {
			t.Fatalf("chunk at line %d has %d records, want 1..%d", c.FirstLine, c.Records, maxRows)
		}
		chunks = append(chunks, c)
		all.Write(c.Data)
		n := 0
		for r := range Records(c.Data, c.FirstLine) {
			n++
			out = append(out, got{Line: r.Line, Fields: r.Fields, Bad: r.Err != nil})
		}
		if n != c.Records {
			t.Fatalf("chunk at line %d: Records says %d, reading back found %d", c.FirstLine, c.Records, n)
		}
	}
	body := strings.TrimPrefix(input, "\ufeff")
	at := strings.LastIndex(body, all.String())
	if at < 0 || strings.Trim(body[at+all.Len():], "\r\n") != "" {
		t.Fatalf("the chunks' bytes are not the stream's tail:\nchunks %q\nstream %q", all.String(), body)
	}
	return out, chunks
}

func TestSplitKeepsLinesAndBytes(t *testing.T) {
	t.Parallel()
	input := "\ufeffid,text\r\n" +
		"1,plain\r\n" +
		"2,\"quoted, with comma\"\r\n" +
		"\r\n" + // a blank line, which csv skips but which still counts as a line
		"3,\"two\r\nlines\"\r\n" +
		"4,\"say \"\"hi\"\"\"\r\n" +
		"5,bad\"quote\r\n" +
		"6,after the bad one\r\n" +
		"7,no final newline"
	want := []got{
		{Line: 2, Fields: []string{"1", "plain"}},
		{Line: 3, Fields: []string{"2", "quoted, with comma"}},
		{Line: 5, Fields: []string{"3", "two\nlines"}},
		{Line: 7, Fields: []string{"4", `say "hi"`}},
		{Line: 8, Bad: true},
		{Line: 9, Fields: []string{"6", "after the bad one"}},
		{Line: 10, Fields: []string{"7", "no final newline"}},
	}
	if diff := cmp.Diff(want, direct(t, input)); diff != "" {
		t.Fatalf("reference parse (-want, +got):\n%s", diff)
	}
	for _, rows := range []int{1, 2, 3, 100} {
		out, chunks := splitAndReread(t, input, rows, 1<<20)
		if diff := cmp.Diff(want, out); diff != "" {
			t.Errorf("%d rows per chunk (-want, +got):\n%s", rows, diff)
		}
		if wantChunks := (len(want) + rows - 1) / rows; len(chunks) != wantChunks {
			t.Errorf("%d rows per chunk made %d chunks, want %d", rows, len(chunks), wantChunks)
		}
	}
}

func TestSplitBoundsBytes(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	b.WriteString("id,text\n")
	for range 100 {
		b.WriteString("1234567,123456789\n") // 18 bytes a record
	}
	_, chunks := splitAndReread(t, b.String(), 1000, 100)
	for _, c := range chunks {
		// A chunk stops at the record that reaches the bound, so it overshoots by less than one record.
		if len(c.Data) >= 100+18 {
			t.Errorf("chunk at line %d has %d bytes, want under %d", c.FirstLine, len(c.Data), 100+18)
		}
	}
	if len(chunks) != 17 { // ceil(100 records / 6 records a chunk)
		t.Errorf("got %d chunks, want 17", len(chunks))
	}
}

func TestSplitEmptyAndHeaderOnly(t *testing.T) {
	t.Parallel()
	for _, input := range []string{"", "\ufeff"} {
		if _, err := NewSplitter(strings.NewReader(input), 10, 100); !errors.Is(err, ErrEmpty) {
			t.Errorf("NewSplitter(%q) error = %v, want ErrEmpty", input, err)
		}
	}
	s, err := NewSplitter(strings.NewReader("a,b\n\n\n"), 10, 100)
	if err != nil {
		t.Fatalf("NewSplitter(header only): %v", err)
	}
	if diff := cmp.Diff([]string{"a", "b"}, s.Header()); diff != "" {
		t.Errorf("Header (-want, +got):\n%s", diff)
	}
	if _, err := s.Next(); !errors.Is(err, io.EOF) {
		t.Errorf("Next on a header-only file = %v, want io.EOF", err)
	}
	if _, err := NewSplitter(strings.NewReader("a,b\n"), 0, 100); err == nil {
		t.Error("NewSplitter with 0 rows a chunk succeeded, want an error")
	}
}

// FuzzSplit checks that splitting then re-reading finds the same records on the same lines as one direct parse,
// whatever the input and the chunk size.
func FuzzSplit(f *testing.F) {
	f.Add("a,b\n1,2\n\"x\ny\",3\n", uint8(1))
	f.Add("\ufeffa\r\n\"\"\"\r\n1\n\n2,\"3", uint8(2))
	f.Add("h\nbad\"q\n\"open", uint8(3))
	f.Fuzz(func(t *testing.T, input string, rows uint8) {
		if _, err := newReader(strings.NewReader(strings.TrimPrefix(input, "\ufeff"))).Read(); err != nil {
			t.Skip("no readable header")
		}
		want := direct(t, input)
		out, _ := splitAndReread(t, input, int(rows%8)+1, 64)
		if diff := cmp.Diff(want, out); diff != "" {
			t.Fatalf("split+reread differs from a direct parse (-want, +got):\n%s", diff)
		}
	})
}
