package coordinator

import (
	"bufio"
	"encoding/gob"
	"errors"
	"fmt"
	"io"
	"os"

	"hpnorton/internal/record"
)

// problemLog keeps a file's problems in the order they are found, in a temporary file, so that a file of millions
// of bad rows costs disk rather than memory. The report lists the first maxListedProblems, and the rejects file
// gets them all. The temporary file is made at the first problem; most runs have none.
type problemLog struct {
	f   *os.File
	w   *bufio.Writer
	enc *gob.Encoder
}

// add appends a problem.
func (l *problemLog) add(p record.Problem) error {
	if l.f == nil {
		f, err := os.CreateTemp("", "hpnorton-problems-")
		if err != nil {
			return fmt.Errorf("coordinator: keep rejected rows: %w", err)
		}
		l.f, l.w = f, bufio.NewWriter(f)
		l.enc = gob.NewEncoder(l.w)
	}
	if err := l.enc.Encode(p); err != nil {
		return fmt.Errorf("coordinator: keep rejected rows: %w", err)
	}
	return nil
}

// reader returns a function that reads the logged problems back in order, and io.EOF after the last.
func (l *problemLog) reader() (func() (record.Problem, error), error) {
	if l.f == nil {
		return func() (record.Problem, error) { return record.Problem{}, io.EOF }, nil
	}
	if err := l.w.Flush(); err != nil {
		return nil, fmt.Errorf("coordinator: read rejected rows: %w", err)
	}
	if _, err := l.f.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("coordinator: read rejected rows: %w", err)
	}
	dec := gob.NewDecoder(bufio.NewReader(l.f))
	return func() (record.Problem, error) {
		var p record.Problem
		err := dec.Decode(&p)
		return p, err
	}, nil
}

// close removes the temporary file.
func (l *problemLog) close() {
	if l.f != nil {
		l.f.Close()
		os.Remove(l.f.Name())
		l.f = nil
	}
}

// merge passes the problems of a and b to yield in line order; each log is in line order already.
func merge(a, b *problemLog, yield func(record.Problem) error) error {
	nextA, err := a.reader()
	if err != nil {
		return err
	}
	nextB, err := b.reader()
	if err != nil {
		return err
	}
	pa, errA := nextA()
	pb, errB := nextB()
	for errA == nil || errB == nil {
		var p record.Problem
		if errB != nil || errA == nil && pa.Line <= pb.Line {
			p = pa
			pa, errA = nextA()
		} else {
			p = pb
			pb, errB = nextB()
		}
		if err := yield(p); err != nil {
			return err
		}
	}
	for _, err := range []error{errA, errB} {
		if !errors.Is(err, io.EOF) {
			return fmt.Errorf("coordinator: read rejected rows: %w", err)
		}
	}
	return nil
}
