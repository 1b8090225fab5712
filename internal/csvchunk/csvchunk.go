// Package csvchunk cuts a CSV stream into chunks of whole records, keeping each chunk's original bytes and the line
// it starts on, and reads a chunk's records back with their line numbers.
//
// Both ends use encoding/csv, so a worker on another machine parses a chunk exactly as the enqueuer cut it: quoted
// fields may span lines, and a record csv cannot parse is cut and re-read the same way on both sides. Carrying the
// original bytes, rather than re-encoding parsed fields, costs no encoding work and keeps what the file said.
package csvchunk

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"iter"
)

// bom is the UTF-8 byte-order mark that spreadsheet tools put at the start of a file.
var bom = []byte{0xEF, 0xBB, 0xBF}

// ErrEmpty means the stream holds no header line.
var ErrEmpty = errors.New("file is empty")

// Chunk is a run of whole records with the bytes they were read from.
type Chunk struct {
	// FirstLine is the line on which Data begins; the header is line 1.
	FirstLine int
	// Records is how many records Data holds, counting those that csv cannot parse.
	Records int
	// Data holds the records' original bytes, line ends included.
	Data []byte
}

// Splitter reads a CSV stream's header, then hands out chunks of at most a set number of records and bytes.
type Splitter struct {
	rec       *recorder
	csv       *csv.Reader
	header    []string
	maxRows   int
	maxBytes  int
	nextLine  int   // line on which the next chunk's bytes begin
	consumed  int64 // stream offset where the next chunk's bytes begin
	exhausted bool
}

// NewSplitter reads the header of r, dropping a leading byte-order mark. A chunk ends after maxRows records, or
// after the record that takes it past maxBytes bytes, whichever comes first; one record over maxBytes still makes a
// chunk of its own.
func NewSplitter(r io.Reader, maxRows, maxBytes int) (*Splitter, error) {
	if maxRows < 1 || maxBytes < 1 {
		return nil, fmt.Errorf("csvchunk: chunk limits must be positive, got %d rows and %d bytes", maxRows, maxBytes)
	}
	br := bufio.NewReaderSize(r, 64<<10)
	if head, err := br.Peek(len(bom)); err == nil && bytes.Equal(head, bom) {
		if _, err := br.Discard(len(bom)); err != nil {
			return nil, err
		}
	}
	rec := &recorder{r: br}
	cr := newReader(rec)
	header, err := cr.Read()
	switch {
	case errors.Is(err, io.EOF):
		return nil, ErrEmpty
	case err != nil:
		return nil, fmt.Errorf("cannot read the header: %w", err)
	}
	s := &Splitter{rec: rec, csv: cr, header: header, maxRows: maxRows, maxBytes: maxBytes}
	s.consumed = cr.InputOffset()
	s.nextLine = 1 + bytes.Count(rec.take(s.consumed), []byte{'\n'})
	return s, nil
}

// Header returns the header's column names as the file wrote them.
func (s *Splitter) Header() []string { return s.header }

// Next returns the next chunk, or io.EOF once every record has been handed out. Other errors come from the
// underlying reader; a record that csv cannot parse is not an error here but part of a chunk, for its reader to
// report with its line.
func (s *Splitter) Next() (Chunk, error) {
	if s.exhausted {
		return Chunk{}, io.EOF
	}
	records := 0
	for records < s.maxRows && s.csv.InputOffset()-s.consumed < int64(s.maxBytes) {
		_, err := s.csv.Read()
		if errors.Is(err, io.EOF) {
			s.exhausted = true
			break
		}
		var perr *csv.ParseError
		if err != nil && !errors.As(err, &perr) {
			return Chunk{}, err
		}
		records++
	}
	end := s.csv.InputOffset()
	data := s.rec.take(end - s.consumed)
	if records == 0 {
		// Only blank lines were left, which csv skips.
		return Chunk{}, io.EOF
	}
	c := Chunk{FirstLine: s.nextLine, Records: records, Data: data}
	s.consumed = end
	s.nextLine += bytes.Count(data, []byte{'\n'})
	return c, nil
}

// Record is one record of a chunk. Err, a *csv.ParseError, is set when csv cannot parse the record; Fields is
// then nil.
type Record struct {
	Line   int
	Fields []string
	Err    error
}

// Records reads back the records of a chunk's data, numbering lines from firstLine.
func Records(data []byte, firstLine int) iter.Seq[Record] {
	return func(yield func(Record) bool) {
		cr := newReader(bytes.NewReader(data))
		for {
			fields, err := cr.Read()
			if errors.Is(err, io.EOF) {
				return
			}
			var r Record
			var perr *csv.ParseError
			switch {
			case errors.As(err, &perr):
				r = Record{Line: firstLine + perr.StartLine - 1, Err: perr}
			case err != nil:
				// A bytes.Reader fails only with EOF, so csv reports nothing but parse errors.
				r = Record{Line: firstLine, Err: err}
			default:
				line, _ := cr.FieldPos(0)
				r = Record{Line: firstLine + line - 1, Fields: fields}
			}
			if !yield(r) {
				return
			}
		}
	}
}

// newReader configures csv identically for splitting and for reading back, which line numbers and record
// boundaries depend on.
func newReader(r io.Reader) *csv.Reader {
	cr := csv.NewReader(r)
	// The field count is checked against the kind with a clear message, not by csv.
	cr.FieldsPerRecord = -1
	return cr
}

// recorder keeps every byte read through it until take hands them out, so a chunk's original bytes can be cut
// at the record boundaries csv reports.
type recorder struct {
	r   io.Reader
	buf []byte
}

func (r *recorder) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	r.buf = append(r.buf, p[:n]...)
	return n, err
}

// take returns a copy of the next n recorded bytes and forgets them.
func (r *recorder) take(n int64) []byte {
	out := bytes.Clone(r.buf[:n])
	// Moving the unread tail to the front keeps the buffer as small as csv's read-ahead.
	r.buf = r.buf[:copy(r.buf, r.buf[n:])]
	return out
}
