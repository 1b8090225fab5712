package csvread

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/google/go-cmp/cmp"
)

// got is one record as a reader saw it: the lines it covers and its fields, or why its form is bad.
type got struct {
	Line, Last int
	Fields     []string
	Bad        string
}

// read reads the whole stream through r's reads and returns its records in order, with the reader.
func read(t *testing.T, r io.Reader, fields int) ([]got, *Reader) {
	t.Helper()
	rd, err := NewReader(r, fields)
	if err != nil {
		t.Fatalf("NewReader: %v", err)
	}
	var out []got
	for {
		rec, err := rd.Next()
		if errors.Is(err, io.EOF) {
			return out, rd
		}
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		g := got{Line: rec.Line, Last: rec.LastLine, Fields: rec.Strings()}
		if rec.Err != nil {
			g.Bad = rec.Err.Error()
		}
		out = append(out, g)
	}
}

// readIf is read through NextIf: a skipped record comes back with its lines, and Bad "skipped: " and the first
// field keep was given for it.
func readIf(t *testing.T, r io.Reader, fields int, keep func([]byte) bool) ([]got, *Reader) {
	t.Helper()
	rd, err := NewReader(r, fields)
	if err != nil {
		t.Fatalf("NewReader: %v", err)
	}
	var out []got
	var asked string
	for {
		rec, err := rd.NextIf(func(first []byte) bool {
			asked = string(first)
			return keep(first)
		})
		if errors.Is(err, io.EOF) {
			return out, rd
		}
		if err != nil {
			t.Fatalf("NextIf: %v", err)
		}
		g := got{Line: rec.Line, Last: rec.LastLine, Fields: rec.Strings()}
		switch {
		case rec.Skipped:
			g.Bad = "skipped: " + asked
		case rec.Err != nil:
			g.Bad = rec.Err.Error()
		}
		out = append(out, g)
	}
}

// accountFor checks the rule every file obeys: each line after the header is blank or in exactly one record, and
// records follow each other.
func accountFor(t *testing.T, recs []got, s *Reader) {
	t.Helper()
	covered, next := 0, 2
	for _, r := range recs {
		if r.Line < next || r.Last < r.Line {
			t.Fatalf("record %+v overlaps the one before or runs backwards", r)
		}
		covered += r.Last - r.Line + 1
		next = r.Last + 1
	}
	if covered+s.Blank() != s.Lines() {
		t.Fatalf("%d lines in records + %d blank != %d lines after the header", covered, s.Blank(), s.Lines())
	}
}

const (
	unclosed = "a quote opened on this line does not close"
	extra    = `cannot be parsed as CSV: extraneous or missing " in quoted field`
	bare     = `cannot be parsed as CSV: bare " in non-quoted field`
)

func TestReadRecords(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", MaxRecordBytes+10)
	for _, tc := range []struct {
		name, input string
		want        []got
	}{{
		name: "quoted fields, blank lines and line ends kept",
		input: "\ufeffid,text\r\n" +
			"1,plain\r\n" +
			"2,\"quoted, with comma\"\r\n" +
			"\r\n" +
			"3,\"two\r\nlines\"\r\n" +
			"4,\"say \"\"hi\"\"\"\r\n" +
			"5,bad\"quote\r\n" +
			"6,after the bad one\r\n" +
			"7,no final newline",
		want: []got{
			{Line: 2, Last: 2, Fields: []string{"1", "plain"}},
			{Line: 3, Last: 3, Fields: []string{"2", "quoted, with comma"}},
			{Line: 5, Last: 6, Fields: []string{"3", "two\r\nlines"}}, // CRLF inside quotes stays CRLF
			{Line: 7, Last: 7, Fields: []string{"4", `say "hi"`}},
			{Line: 8, Last: 8, Bad: bare},
			{Line: 9, Last: 9, Fields: []string{"6", "after the bad one"}},
			{Line: 10, Last: 10, Fields: []string{"7", "no final newline"}},
		},
	}, {
		name:  "a quote that never closes takes only its own line",
		input: "id,text\n1,\"open\n2,b\n3,c\n",
		want: []got{
			{Line: 2, Last: 2, Bad: unclosed},
			{Line: 3, Last: 3, Fields: []string{"2", "b"}},
			{Line: 4, Last: 4, Fields: []string{"3", "c"}},
		},
	}, {
		name:  "a quote that closes later into too many fields",
		input: "id,text\n1,\"x\n2\",z\n3,c\n",
		want: []got{
			{Line: 2, Last: 2, Bad: unclosed},
			{Line: 3, Last: 3, Bad: bare},
			{Line: 4, Last: 4, Fields: []string{"3", "c"}},
		},
	}, {
		name:  "a quote that closes later on a bad character",
		input: "id,text\n1,\"x\n2,\"y\"z\n3,c\n",
		want: []got{
			{Line: 2, Last: 2, Bad: unclosed},
			{Line: 3, Last: 3, Bad: extra},
			{Line: 4, Last: 4, Fields: []string{"3", "c"}},
		},
	}, {
		name:  "a real multi-line field",
		input: "id,text\n1,\"a\nb\nc\"\n2,d",
		want: []got{
			{Line: 2, Last: 4, Fields: []string{"1", "a\nb\nc"}},
			{Line: 5, Last: 5, Fields: []string{"2", "d"}},
		},
	}, {
		name:  "a single line with the wrong number of fields is left to validation",
		input: "id,text\n1,2,3\n4\n",
		want: []got{
			{Line: 2, Last: 2, Fields: []string{"1", "2", "3"}},
			{Line: 3, Last: 3, Fields: []string{"4"}},
		},
	}, {
		name:  "text after a closing quote",
		input: "id,text\n1,\"a\"b\n2,c",
		want: []got{
			{Line: 2, Last: 2, Bad: extra},
			{Line: 3, Last: 3, Fields: []string{"2", "c"}},
		},
	}, {
		name:  "a line longer than a record may be",
		input: "id,text\n1," + long + "\n2,after\n3," + long,
		want: []got{
			{Line: 2, Last: 2, Bad: fmt.Sprintf("the line is %d bytes long", len(long)+3)},
			{Line: 3, Last: 3, Fields: []string{"2", "after"}},
			{Line: 4, Last: 4, Bad: fmt.Sprintf("the line is %d bytes long", len(long)+2)},
		},
	}, {
		name:  "a quote open at the end of the file",
		input: "id,text\n1,a\n2,\"open",
		want: []got{
			{Line: 2, Last: 2, Fields: []string{"1", "a"}},
			{Line: 3, Last: 3, Bad: unclosed},
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			// Read all at once and a byte at a time, records must come out the same.
			for _, oneByte := range []bool{false, true} {
				var r io.Reader = strings.NewReader(tc.input)
				if oneByte {
					r = iotest.OneByteReader(r)
				}
				out, s := read(t, r, 2)
				// Reasons are compared by their start; the rest names the limits.
				for i := range out {
					if i < len(tc.want) && tc.want[i].Bad != "" && strings.HasPrefix(out[i].Bad, tc.want[i].Bad) {
						out[i].Bad = tc.want[i].Bad
					}
				}
				if diff := cmp.Diff(tc.want, out); diff != "" {
					t.Errorf("one byte a read %t (-want, +got):\n%s", oneByte, diff)
				}
				accountFor(t, out, s)
			}
		})
	}
}

// TestStrayQuoteKeepsEveryLine is the report that started the recovery: a quote that never closes on line 2 of a
// 50,000-row file took the other 49,999 rows with it.
func TestStrayQuoteKeepsEveryLine(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	b.WriteString("user_id,name,address,zip_code,phone_number,email\n")
	b.WriteString("X1,\"unterminated,a,z,p,e\n")
	for i := 2; i <= 50000; i++ {
		fmt.Fprintf(&b, "C%d,\"Name %d\",\"%d Main St, Apt 2\",01234,555-0101,c%d@example.com\n", i, i, i, i)
	}
	out, s := read(t, strings.NewReader(b.String()), 6)
	if len(out) != 50000 || out[0].Bad == "" || out[1].Fields == nil || out[1].Line != 3 {
		t.Fatalf("got %d records, the first %+v and the second %+v; want 50,000 with only line 2 rejected", len(out), out[0], out[1])
	}
	for _, r := range out[1:] {
		if r.Bad != "" || len(r.Fields) != 6 {
			t.Fatalf("record %+v is bad; only line 2 should be", r)
		}
	}
	if s.Lines() != 50000 {
		t.Errorf("Lines = %d, want 50000", s.Lines())
	}
	accountFor(t, out, s)
}

func TestReadEmptyAndHeaderOnly(t *testing.T) {
	t.Parallel()
	for _, input := range []string{"", "\ufeff", "\n\n"} {
		if _, err := NewReader(strings.NewReader(input), 2); !errors.Is(err, ErrEmpty) {
			t.Errorf("NewReader(%q) error = %v, want ErrEmpty", input, err)
		}
	}
	s, err := NewReader(strings.NewReader("a,b\n\n\n"), 2)
	if err != nil {
		t.Fatalf("NewReader(header only): %v", err)
	}
	if diff := cmp.Diff([]string{"a", "b"}, s.Header()); diff != "" {
		t.Errorf("Header (-want, +got):\n%s", diff)
	}
	if _, err := s.Next(); !errors.Is(err, io.EOF) {
		t.Errorf("Next on a header-only file = %v, want io.EOF", err)
	}
	if s.Lines() != 2 || s.Blank() != 2 {
		t.Errorf("Lines, Blank = %d, %d; want 2, 2", s.Lines(), s.Blank())
	}
	if _, err := NewReader(strings.NewReader("a,b\n"), 0); err == nil {
		t.Error("NewReader with 0 fields succeeded, want an error")
	}
}

// endless is a reader of n bytes of one repeated pattern, which it never holds in full.
type endless struct {
	pattern string
	n       int
}

func (e *endless) Read(p []byte) (int, error) {
	if e.n <= 0 {
		return 0, io.EOF
	}
	k := 0
	for k < len(p) && k < e.n {
		k += copy(p[k:min(len(p), e.n)], e.pattern)
	}
	e.n -= k
	return k, nil
}

// TestHugeHeader: a header of ten million columns is refused after reading it once, in bounded memory.
func TestHugeHeader(t *testing.T) {
	t.Parallel()
	_, err := NewReader(io.MultiReader(&endless{pattern: "a,", n: 20_000_000}, strings.NewReader("\n1,2\n")), 2)
	if err == nil || !strings.Contains(err.Error(), "longer than 65536 bytes") || len(err.Error()) > 200 {
		t.Fatalf("error = %v; want a short refusal naming the limit", err)
	}
}

// reference parses a stream with encoding/csv, an independent reader, for the inputs both must agree on: no CR,
// every record parsed, and every multi-line record of the expected field count.
func reference(input string, fields int) ([]got, bool) {
	if strings.Contains(input, "\r") {
		return nil, false
	}
	cr := csv.NewReader(strings.NewReader(strings.TrimPrefix(input, "\ufeff")))
	cr.FieldsPerRecord = -1
	if _, err := cr.Read(); err != nil {
		return nil, false
	}
	var out []got
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return out, true
		}
		if err != nil {
			return nil, false
		}
		line, _ := cr.FieldPos(0)
		last, _ := cr.FieldPos(len(rec) - 1)
		last += strings.Count(rec[len(rec)-1], "\n")
		if last > line && len(rec) != fields {
			return nil, false
		}
		out = append(out, got{Line: line, Last: last, Fields: rec})
	}
}

// FuzzRead checks, for any input: every line is accounted for; reading a byte at a time finds the same records
// as reading at once; NextIf passes over the same records and lines as Next, and returns the ones it does not
// skip as Next does; and where encoding/csv reads the input without error, the records equal its.
func FuzzRead(f *testing.F) {
	f.Add("a,b\n1,2\n\"x\ny\",3\n")
	f.Add("\ufeffa\r\n\"\"\"\r\n1\n\n2,\"3")
	f.Add("h,i\nbad\"q\n\"open\n1,2")
	f.Add("h,i\n1,\"a\r\nb\"\r\n")
	f.Add("h,i\n1,\"a\nb\"\n2,3\nx\"y,1\n\"k\",2\n")
	f.Fuzz(func(t *testing.T, input string) {
		if _, err := NewReader(strings.NewReader(input), 2); err != nil {
			t.Skip("no readable header")
		}
		whole, s := read(t, strings.NewReader(input), 2)
		accountFor(t, whole, s)
		for _, keep := range []func([]byte) bool{
			func([]byte) bool { return false },
			func([]byte) bool { return true },
			func(f []byte) bool { return len(f)%2 == 0 },
		} {
			skimmed, sk := readIf(t, strings.NewReader(input), 2, keep)
			if len(skimmed) != len(whole) || sk.Lines() != s.Lines() || sk.Blank() != s.Blank() {
				t.Fatalf("NextIf read %d records, %d lines, %d blank; Next %d, %d, %d", len(skimmed), sk.Lines(), sk.Blank(), len(whole), s.Lines(), s.Blank())
			}
			for i, g := range skimmed {
				if asked, ok := strings.CutPrefix(g.Bad, "skipped: "); ok {
					// A record is skipped for its first field: the one Next finds, where it finds the record good.
					if whole[i].Bad == "" && asked != whole[i].Fields[0] {
						t.Fatalf("record %d skipped for first field %q; Next reads %q", i, asked, whole[i].Fields[0])
					}
					g.Fields, g.Bad = whole[i].Fields, whole[i].Bad
				}
				if diff := cmp.Diff(whole[i], g); diff != "" {
					t.Fatalf("record %d: NextIf differs from Next (-want, +got):\n%s", i, diff)
				}
			}
		}
		out, s := read(t, iotest.OneByteReader(strings.NewReader(input)), 2)
		accountFor(t, out, s)
		if diff := cmp.Diff(whole, out); diff != "" {
			t.Fatalf("a byte at a time differs from all at once (-want, +got):\n%s", diff)
		}
		if want, ok := reference(input, 2); ok {
			if diff := cmp.Diff(want, whole); diff != "" {
				t.Fatalf("differs from encoding/csv (-want, +got):\n%s", diff)
			}
		}
	})
}

func BenchmarkRead(b *testing.B) {
	var in bytes.Buffer
	in.WriteString("user_id,name,address,zip_code,phone_number,email\n")
	for i := range 100000 {
		fmt.Fprintf(&in, "C%d,\"Name %d\",\"%d Main St, Apt 2\",01234,555-0101,c%d@example.com\n", i, i, i, i)
	}
	b.SetBytes(int64(in.Len()))
	for b.Loop() {
		r, err := NewReader(bytes.NewReader(in.Bytes()), 6)
		if err != nil {
			b.Fatal(err)
		}
		for {
			if _, err := r.Next(); err != nil {
				break
			}
		}
	}
}

// TestIndexStop holds indexStop to a byte-at-a-time search, with every byte value at every position of inputs of
// 1 to 24 bytes, alone and before a later stop byte.
func TestIndexStop(t *testing.T) {
	t.Parallel()
	slow := func(w []byte) int {
		for i, c := range w {
			if c == ',' || c == '\n' || c == '"' {
				return i
			}
		}
		return len(w)
	}
	for n := 1; n <= 24; n++ {
		for pos := range n {
			for c := range 256 {
				for _, later := range []byte{'a', ',', '"', '\n'} {
					w := bytes.Repeat([]byte{0xff}, n)
					w[pos] = byte(c)
					w[n-1] = later
					if pos == n-1 {
						w[pos] = byte(c)
					}
					if got, want := indexStop(w), slow(w); got != want {
						t.Fatalf("indexStop(%q) = %d, want %d", w, got, want)
					}
				}
			}
		}
	}
}
