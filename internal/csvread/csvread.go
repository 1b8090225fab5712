// Package csvread reads a CSV stream one record at a time, with the lines each record covers, and tells how many
// lines it read, so that every line of a file can be accounted for.
//
// It reads RFC 4180 CSV with a scanner of its own rather than encoding/csv, for three reasons:
//   - Recovery. A quote that never closes makes encoding/csv read on to the next quote, or to the end of the file,
//     as one record, and every good row in between is lost without a word. Here a quoted field may span lines, but
//     a record that does not close into the expected number of fields within MaxRecordBytes is taken back: only the
//     line it started on is rejected, and reading goes on with the next line. Every line of a file ends up in
//     exactly one record, or is blank.
//   - Bounded memory. No record, header included, is held beyond MaxRecordBytes; a longer line is skipped as it is
//     read and reported with its length.
//   - Fidelity. encoding/csv turns CRLF inside a quoted field into LF; this scanner keeps the field's bytes.
package csvread

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/bits"
)

// MaxRecordBytes bounds one record, quotes and line ends included. The longest valid record of either kind is six
// fields of at most 255 characters, under 13 KiB even with every character four bytes long and quoted.
const MaxRecordBytes = 64 << 10

// bom is the UTF-8 byte-order mark that spreadsheet tools put at the start of a file.
var bom = []byte{0xEF, 0xBB, 0xBF}

// ErrEmpty means the stream holds no header line.
var ErrEmpty = errors.New("file is empty")

// Record is one record of a stream. Err is set when its form is bad: it cannot be parsed, or it is too long. Fields
// is then nil, and the record covers only Line, since reading goes on with the next line.
type Record struct {
	// Line and LastLine are the first and last lines the record covers; they differ when a quoted field spans
	// lines.
	Line, LastLine int
	// Fields are views of the reader's buffer, valid until the next call of Next: a record costs no allocation.
	// Copy what must outlive it (Strings).
	Fields [][]byte
	Err    error
	// Skipped marks a record that NextIf passed over unread: it has only its lines.
	Skipped bool
}

// Strings returns a copy of the record's fields.
func (r Record) Strings() []string {
	if r.Fields == nil {
		return nil
	}
	s := make([]string, len(r.Fields))
	for i, f := range r.Fields {
		s[i] = string(f)
	}
	return s
}

// span is one field of a parsed record: w[a:b], which holds doubled quotes when dq is set.
type span struct {
	a, b int
	dq   bool
}

// scanner reads one record at a time from a stream, holding at most MaxRecordBytes of it beyond what it returns.
type scanner struct {
	r     io.Reader
	buf   []byte
	start int  // offset in buf of the next record
	eof   bool // r has nothing more
	rerr  error
	// fields is the number of fields a record must have for a quoted field to span lines; 0 means any number.
	fields int
	line   int  // the line buf[start] is on
	last   byte // the last byte consumed
	read   bool // a byte has been consumed since read was last cleared
	blank  int  // blank lines skipped
	spans  []span
}

// readSize is how much the scanner reads at a time. Each time fewer than MaxRecordBytes are left unread in the
// buffer, they move to its start; reading a megabyte at a time keeps that copying to a few percent of the stream.
const readSize = 1 << 20

func newScanner(r io.Reader, line int) *scanner {
	return &scanner{r: r, line: line, buf: make([]byte, 0, readSize)}
}

// fill makes buf[start:] hold at least n bytes, or all that is left of the stream.
func (s *scanner) fill(n int) {
	for len(s.buf)-s.start < n && !s.eof {
		if s.start > 0 {
			s.buf = s.buf[:copy(s.buf, s.buf[s.start:])]
			s.start = 0
		}
		if cap(s.buf)-len(s.buf) < readSize/2 {
			s.buf = append(s.buf, make([]byte, readSize)...)[:len(s.buf)]
		}
		m, err := s.r.Read(s.buf[len(s.buf):cap(s.buf)])
		s.buf = s.buf[:len(s.buf)+m]
		if err != nil {
			s.eof = true
			if !errors.Is(err, io.EOF) {
				s.rerr = err
			}
		}
	}
}

// skipBOM drops a byte-order mark at the very start of the stream.
func (s *scanner) skipBOM() {
	s.fill(len(bom))
	if bytes.HasPrefix(s.buf[s.start:], bom) {
		s.start += len(bom)
	}
}

// consume moves past n bytes of the buffer, counting their lines.
func (s *scanner) consume(n int) {
	if n == 0 {
		return
	}
	b := s.buf[s.start : s.start+n]
	s.line += bytes.Count(b, []byte{'\n'})
	s.last, s.read = b[n-1], true
	s.start += n
}

// consumeLines is consume for n bytes whose line ends the caller has counted already: newlines of them.
func (s *scanner) consumeLines(n, newlines int) {
	s.line += newlines
	s.last, s.read = s.buf[s.start+n-1], true
	s.start += n
}

// lines is how many lines the scanner has consumed, counting an unterminated last line.
func (s *scanner) lines(first int) int {
	n := s.line - first
	if s.read && s.last != '\n' {
		n++
	}
	return n
}

// raw is a record the scanner found, as bytes of the buffer valid until the next call: its spans when its form is
// good, or the reason it is bad. A bad line too long to buffer has no bytes.
type raw struct {
	line, lastLine int
	b              []byte
	spans          []span
	bad            string
}

// next returns the next record, skipping blank lines, or io.EOF.
func (s *scanner) next() (raw, error) {
	var w []byte
	for {
		s.fill(MaxRecordBytes + 1)
		if s.rerr != nil {
			return raw{}, s.rerr
		}
		w = s.buf[s.start:]
		switch {
		case len(w) == 0:
			return raw{}, io.EOF
		case w[0] == '\n':
			s.blank++
			s.consume(1)
			continue
		case w[0] == '\r' && (len(w) == 1 || w[1] == '\n'):
			s.blank++
			s.consume(min(2, len(w)))
			continue
		}
		break
	}
	line := s.line
	atEOF := s.eof && len(w) <= MaxRecordBytes
	win := w[:min(len(w), MaxRecordBytes)]
	var end, failAt int
	var why string
	s.spans, end, failAt, why = parse(win, atEOF, s.spans[:0])
	eol := bytes.IndexByte(win, '\n')
	if end > 0 {
		b := win[:end]
		last := line
		if end > eol+1 { // the record goes on past its first line, or the stream ends without a line end
			last += bytes.Count(b[:end-1], []byte{'\n'})
		}
		if last == line || s.fields == 0 || len(s.spans) == s.fields {
			newlines := last - line
			if b[end-1] == '\n' {
				newlines++
			}
			s.consumeLines(end, newlines)
			return raw{line: line, lastLine: last, b: b, spans: s.spans}, nil
		}
		// A record over several lines with the wrong number of fields is more likely a stray quote than a
		// multi-line field with a missing one: take back all but its first line.
		failAt = eol + 1
	}
	switch {
	case eol >= 0 && failAt <= eol && why != "":
		s.consume(eol + 1)
		return raw{line: line, lastLine: line, b: win[:eol+1], bad: "cannot be parsed as CSV: " + why}, nil
	case eol >= 0:
		s.consume(eol + 1)
		return raw{line: line, lastLine: line, b: win[:eol+1], bad: s.unclosed()}, nil
	case atEOF:
		s.consume(len(win))
		bad := s.unclosed()
		if failAt < len(win) && why != "" {
			bad = "cannot be parsed as CSV: " + why
		}
		return raw{line: line, lastLine: line, b: win, bad: bad}, nil
	}
	// The line alone is longer than a record may be: skip it as it is read, holding none of it.
	n := 0
	for {
		s.fill(readSize)
		if s.rerr != nil {
			return raw{}, s.rerr
		}
		w := s.buf[s.start:]
		if len(w) == 0 {
			break
		}
		if i := bytes.IndexByte(w, '\n'); i >= 0 {
			n += i + 1
			s.consume(i + 1)
			break
		}
		n += len(w)
		s.consume(len(w))
	}
	return raw{line: line, lastLine: line, bad: fmt.Sprintf("the line is %d bytes long; a record may have at most %d", n, MaxRecordBytes)}, nil
}

// skim finds the next record's first field without parsing the record, where the record is one line whose
// form is decided within that line: the line ends with a newline within MaxRecordBytes, holds an even number of
// double quotes, does not start with one, and has a comma. Such a line is one record, well-formed or not: a quote
// opened at a field's start closes on the line, since quotes inside a quoted field come in pairs, and a quote
// anywhere else makes the line a bad record by itself. n is the line's length; nothing is consumed. ok is false
// for any other record, and for a blank line or a read error, which next deals with.
func (s *scanner) skim() (line int, first []byte, n int, ok bool) {
	s.fill(MaxRecordBytes + 1)
	w := s.buf[s.start:]
	if s.rerr != nil || len(w) == 0 || w[0] == '"' || w[0] == '\n' || w[0] == '\r' {
		return 0, nil, 0, false
	}
	eol := bytes.IndexByte(w[:min(len(w), MaxRecordBytes)], '\n')
	if eol < 0 || bytes.Count(w[:eol], []byte{'"'})%2 != 0 {
		return 0, nil, 0, false
	}
	comma := bytes.IndexByte(w[:eol], ',')
	if comma < 0 {
		return 0, nil, 0, false
	}
	return s.line, w[:comma], eol + 1, true
}

func (s *scanner) unclosed() string {
	if s.fields == 0 {
		return fmt.Sprintf("a quote opened on this line does not close within %d bytes", MaxRecordBytes)
	}
	return fmt.Sprintf("a quote opened on this line does not close into one record of %d fields within %d bytes; only this line is rejected, and reading goes on with the next", s.fields, MaxRecordBytes)
}

// parse reads one record at the start of w, RFC 4180 style: fields separated by commas, a record ended by LF or
// CRLF, and a field in double quotes may hold commas, line ends and doubled quotes. w ends the stream when atEOF;
// otherwise running off its end means the record is too long. It returns the fields and the bytes the record
// covers, line end included; or end 0, where the parse failed, and why ("" for running off the end).
func parse(w []byte, atEOF bool, spans []span) (_ []span, end, failAt int, why string) {
	i := 0
	for {
		if i < len(w) && w[i] == '"' {
			i++
			a, dq := i, false
			for {
				j := bytes.IndexByte(w[i:], '"')
				if j < 0 {
					return spans, 0, len(w), ""
				}
				i += j + 1
				if i < len(w) && w[i] == '"' {
					dq = true
					i++
					continue
				}
				break
			}
			spans = append(spans, span{a, i - 1, dq})
			switch {
			case i == len(w) && atEOF:
				return spans, i, 0, ""
			case i == len(w):
				return spans, 0, i, ""
			case w[i] == ',':
				i++
				continue
			case w[i] == '\n':
				return spans, i + 1, 0, ""
			case w[i] == '\r' && i+1 < len(w) && w[i+1] == '\n':
				return spans, i + 2, 0, ""
			case w[i] == '\r' && i+1 == len(w) && atEOF:
				return spans, i + 1, 0, ""
			}
			return spans, 0, i, `extraneous or missing " in quoted field`
		}
		a := i
		i += indexStop(w[i:])
		switch {
		case i < len(w) && w[i] == '"':
			return spans, 0, i, `bare " in non-quoted field`
		case i < len(w) && w[i] == ',':
			spans = append(spans, span{a, i, false})
			i++
			continue
		case i == len(w) && !atEOF:
			return spans, 0, i, ""
		}
		// A line end, or the end of the stream: a CR before it belongs to the line end.
		b := i
		if b > a && w[b-1] == '\r' {
			b--
		}
		spans = append(spans, span{a, b, false})
		if i < len(w) {
			i++
		}
		return spans, i, 0, ""
	}
}

// indexStop returns the index of the first comma, newline or double quote in w, or len(w): where an unquoted
// field ends. It looks at eight bytes at a time; a byte of x^c is zero where x holds c, and the lowest byte
// flagged by the zero-byte test is exact, since a borrow only runs upwards from a zero byte.
func indexStop(w []byte) int {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	i := 0
	for ; i+8 <= len(w); i += 8 {
		x := binary.LittleEndian.Uint64(w[i:])
		c, n, q := x^(ones*','), x^(ones*'\n'), x^(ones*'"')
		if m := ((c-ones)&^c | (n-ones)&^n | (q-ones)&^q) & highs; m != 0 {
			return i + bits.TrailingZeros64(m)/8
		}
	}
	for ; i < len(w); i++ {
		if c := w[i]; c == ',' || c == '\n' || c == '"' {
			return i
		}
	}
	return i
}

// fields appends a record's fields to dst as views of its bytes. A field with doubled quotes is undoubled into
// scratch, which must have room for the record's bytes, so that appending never moves what an earlier field
// points to.
func (r raw) fields(dst [][]byte, scratch []byte) [][]byte {
	for _, sp := range r.spans {
		f := r.b[sp.a:sp.b]
		if sp.dq {
			start := len(scratch)
			for len(f) > 0 {
				i := bytes.IndexByte(f, '"')
				if i < 0 {
					scratch = append(scratch, f...)
					break
				}
				scratch = append(scratch, f[:i+1]...) // the first quote of a pair stays, the second goes
				f = f[i+2:]
			}
			f = scratch[start:]
		}
		dst = append(dst, f)
	}
	return dst
}

// Reader reads a CSV stream's header, then its records one at a time with their line numbers.
type Reader struct {
	sc     *scanner
	header []string
	first  int // the first line after the header
	// fields and scratch hold the last record's fields and undoubled quotes, reused by the next.
	fields  [][]byte
	scratch []byte
}

// NewReader reads the header of r, dropping a leading byte-order mark. fields is the number of fields a record
// must have for a quoted field to span lines.
func NewReader(r io.Reader, fields int) (*Reader, error) {
	if fields < 1 {
		return nil, fmt.Errorf("csvread: need at least 1 field, got %d", fields)
	}
	sc := newScanner(r, 1)
	sc.skipBOM()
	h, err := sc.next()
	switch {
	case errors.Is(err, io.EOF):
		return nil, ErrEmpty
	case err != nil:
		return nil, fmt.Errorf("cannot read the header: %w", err)
	case h.bad != "" && h.b == nil:
		return nil, fmt.Errorf("cannot read the header: the line is longer than %d bytes", MaxRecordBytes)
	case h.bad != "":
		return nil, fmt.Errorf("cannot read the header: %s", h.bad)
	}
	rd := &Reader{sc: sc, header: Record{Fields: h.fields(nil, make([]byte, 0, len(h.b)))}.Strings(), first: sc.line}
	sc.fields = fields
	sc.read, sc.blank = false, 0 // Lines and Blank count what follows the header
	return rd, nil
}

// Header returns the header's column names as the file wrote them.
func (r *Reader) Header() []string { return r.header }

// Lines is how many lines follow the header among those read so far: once Next has returned io.EOF, the file's.
func (r *Reader) Lines() int { return r.sc.lines(r.first) }

// Blank is how many blank lines have been skipped so far; they hold no record.
func (r *Reader) Blank() int { return r.sc.blank }

// NextIf is Next for a reader that wants only the records whose first field keep accepts: a record that is one
// plain line and whose first field keep refuses comes back Skipped, with its lines only, without being parsed.
// Every other record is read as Next reads it, whatever keep says, so the records and lines passed through are
// the same as Next's. The first field given to keep is a view of the buffer, valid during the call.
func (r *Reader) NextIf(keep func(first []byte) bool) (Record, error) {
	if line, first, n, ok := r.sc.skim(); ok && !keep(first) {
		r.sc.consumeLines(n, 1)
		return Record{Line: line, LastLine: line, Skipped: true}, nil
	}
	return r.Next()
}

// Next returns the next record, or io.EOF once every record has been read. Its errors come from the underlying
// reader; a record whose form is bad is not an error here but a Record with Err set.
func (r *Reader) Next() (Record, error) {
	raw, err := r.sc.next()
	if err != nil {
		return Record{}, err
	}
	rec := Record{Line: raw.line, LastLine: raw.lastLine}
	if raw.bad != "" {
		rec.Err = errors.New(raw.bad)
		return rec, nil
	}
	if cap(r.scratch) < len(raw.b) {
		r.scratch = make([]byte, 0, max(len(raw.b), 4<<10))
	}
	r.fields = raw.fields(r.fields[:0], r.scratch[:0])
	rec.Fields = r.fields
	return rec, nil
}
