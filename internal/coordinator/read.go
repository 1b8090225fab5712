package coordinator

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"slices"
	"syscall"

	"hpnorton/internal/csvread"
	"hpnorton/internal/record"
	"hpnorton/repo"
)

// The rule for a key that a file repeats: the first valid occurrence wins, and every later one is rejected,
// naming the line of the first. The enqueuer settles it while it reads, before any row is written, so workers
// only load rows and never coordinate over a key; every mode and every order of tasks stores the same rows.
//
// Holding every key of a file would make the enqueuer's memory grow with the file. Instead a Bloom filter of the
// keys seen so far flags the rows whose key may have occurred before. Those rows are held back, and only their
// keys are kept. Once the file is read, a second read confirms them exactly: it finds the first valid line of
// each held key, sends a held row that turns out to be a first occurrence after all (a false positive of the
// filter), and rejects the others. The second read runs while the workers load what the first one sent, and only
// when some row was held back. Memory then grows with the repeats, not with the file.

// chunk is the rows of one task as they are gathered, each in LOAD DATA's format (repo.AppendRow).
type chunk struct {
	firstLine int // the line of the chunk's first row, which names the task
	key       int // the key's field in a row
	data      []byte
	ends      []int  // where each row ends in data
	unsorted  bool   // some row's key sorts before the row's before it
	lastKey   [2]int // where the last row's key stands in data: offsets, since appending may move data
	sorted    []byte // the buffer take sorts rows into, reused like data
}

func (c *chunk) rows() int { return len(c.ends) }

// row is the i-th row, newline included.
func (c *chunk) row(i int) []byte {
	start := 0
	if i > 0 {
		start = c.ends[i-1]
	}
	return c.data[start:c.ends[i]]
}

// keySpan is where a row's key stands in the row, as the row holds it, escaped. Escaping keeps keys apart and
// keeps their order consistent, so the escaped key serves for sorting: a raw tab in a row only ever separates
// fields.
func keySpan(row []byte, key int) (a, b int) {
	for range key {
		a += bytes.IndexByte(row[a:], '\t') + 1
	}
	if i := bytes.IndexByte(row[a:], '\t'); i >= 0 {
		return a, a + i
	}
	return a, len(row) - 1 // the key is the row's last field, before its newline
}

// rowKey is a row's key as the row holds it (keySpan).
func rowKey(row []byte, key int) []byte {
	a, b := keySpan(row, key)
	return row[a:b]
}

// add appends one row; bit i of plain is set when field i is record.Plain (record.Kind.ValidateFields).
func (c *chunk) add(line int, fields [][]byte, plain uint64) {
	if len(c.ends) == 0 {
		c.firstLine = line
	}
	start := len(c.data)
	c.data = repo.AppendRowPlain(c.data, fields, plain)
	var a, b int
	if through := uint64(2)<<c.key - 1; plain&through == through {
		// The key and the fields before it are in the row as they are: its place follows from their lengths.
		a = start
		for _, f := range fields[:c.key] {
			a += len(f) + 1
		}
		b = a + len(fields[c.key])
	} else {
		a, b = keySpan(c.data[start:], c.key)
		a, b = start+a, start+b
	}
	c.ends = append(c.ends, len(c.data))
	if len(c.ends) > 1 && bytes.Compare(c.data[a:b], c.data[c.lastKey[0]:c.lastKey[1]]) < 0 {
		c.unsorted = true
	}
	c.lastKey = [2]int{a, b}
}

// take returns the chunk's rows, in key order, whether they came in that order, and empties the chunk. Key order is
// the order in which the rows' locks are taken: two runs that load overlapping keys at once then wait for each
// other instead of deadlocking. Files often come sorted by key already, and then the rows are returned as they are. The data is the chunk's own
// buffer, or the one it sorted them into, which the next rows reuse: the caller is done with it when it gathers
// them.
func (c *chunk) take() (firstLine, rows int, data []byte, inOrder bool) {
	firstLine, rows, data, inOrder = c.firstLine, len(c.ends), c.data, !c.unsorted
	if c.unsorted {
		order := make([]int, rows)
		for i := range order {
			order[i] = i
		}
		slices.SortFunc(order, func(a, b int) int { return bytes.Compare(rowKey(c.row(a), c.key), rowKey(c.row(b), c.key)) })
		data = c.sorted[:0]
		for _, i := range order {
			data = append(data, c.row(i)...)
		}
		c.sorted = data
	}
	*c = chunk{key: c.key, data: c.data[:0], ends: c.ends[:0], sorted: c.sorted}
	return firstLine, rows, data, inOrder
}

// sendFunc sends one chunk of a file's rows as a task. apart is set when the chunk's rows came in key order and
// its keys lie above every key of the file's earlier chunks (tasks.ImportPayload.Apart). A nil sendFunc sends
// nothing: the read only checks.
type sendFunc func(ctx context.Context, k record.Kind, firstLine, rows int, data []byte, apart bool) error

// fileRead is the reading of one file of a run: every record validated, every repeat settled, every row sent.
type fileRead struct {
	kind record.Kind
	cfg  Config
	send sendFunc
	fd   *feed
	// counts holds Read and Rejected; lines and blank count the file's lines after the header.
	counts       record.Counts
	lines, blank int
	tasks        int
	// problems are the records the first read rejects and dups the repeats the second read finds, each in line
	// order; the report merges them.
	problems, dups problemLog
	seen           *seenKeys
	held           heldKeys
	// heldRows counts the rows the first read held back, and settled those the second read sent or rejected.
	heldRows, settled int
	batch             chunk
	// greatest is the greatest key of the chunks flushed so far, nil before the first.
	greatest []byte
}

// readFile reads kind k's file of the run, validating each record, settling repeated keys and sending the rows in
// chunks. A problem with the whole file, such as a missing file or a wrong header, is returned as fileErr; err is
// a failure to send, which ends the run.
func readFile(ctx context.Context, cfg Config, k record.Kind, fd *feed, send sendFunc) (r *fileRead, fileErr, err error) {
	r = &fileRead{kind: k, cfg: cfg, send: send, fd: fd, held: newHeldKeys(), batch: chunk{key: k.KeyIndex()}}
	defer fd.read.Store(true)
	defer func() { // the report needs only the counts
		if r.seen != nil {
			r.seen.free()
		}
		r.held.free()
		r.seen, r.batch = nil, chunk{}
	}()
	f, err := openFile(cfg, k)
	if err != nil {
		return r, err, nil
	}
	defer f.Close()
	fileErr, err = r.read(ctx, f)
	if n := r.heldRows - r.settled; fileErr != nil && n > 0 {
		// The rows held back for the second read were neither stored nor rejected one by one: they are
		// rejected together, with the file's problem, so that every record read is still accounted for.
		r.counts.Rejected += int64(n)
		r.fd.rejected.Add(int64(n))
		fileErr = fmt.Errorf("%w; %d records held back as possible repeats of a key were not imported", fileErr, n)
	}
	return r, fileErr, err
}

// read reads the open file once, and a second time when rows were held back.
func (r *fileRead) read(ctx context.Context, f *os.File) (fileErr, err error) {
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("cannot read the file: %w", err), nil
	}
	r.fd.size.Store(st.Size())
	r.seen = newSeenKeys(st.Size(), r.cfg.falsePositives)
	// The chunk's buffer is made once at its full size, or the file's when smaller (rows take about the bytes
	// their records do), and every chunk reuses it: grown by appending, it was copied again and again and each
	// copy faulted in fresh pages, 13% of the reading's time (BenchmarkReadFile).
	r.batch.data = make([]byte, 0, min(int64(r.cfg.ChunkBytes), st.Size()+st.Size()/8)+2*csvread.MaxRecordBytes)
	r.batch.ends = make([]int, 0, min(r.cfg.ChunkRows, 1<<16))

	first := &countingReader{r: f, h: crc32.New(castagnoli), fd: r.fd}
	rd, err := newReader(first, r.kind)
	if err != nil {
		return err, nil
	}
	fileErr, err = r.firstRead(ctx, rd, func(line int) error { return r.addEarlier(f, first, line) })
	r.lines, r.blank = rd.Lines(), rd.Blank()
	if fileErr != nil || err != nil || r.heldRows == 0 {
		return fileErr, err
	}

	// The second read goes through the same open file, so a file replaced by another under the same name is not
	// mixed with it. A file changed in place is caught by its checksum. The filter's work is done.
	r.seen.free()
	r.seen = nil
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("cannot read the file again to settle its repeated keys: %w", err), nil
	}
	second := &countingReader{r: f, h: crc32.New(castagnoli)}
	rd, err = newReader(second, r.kind)
	if err != nil {
		return fmt.Errorf("the file changed while it was read: %w", err), nil
	}
	if fileErr, err = r.secondRead(ctx, rd); fileErr != nil || err != nil {
		return fileErr, err
	}
	if second.h.Sum32() != first.h.Sum32() || second.n != first.n || r.settled != r.heldRows {
		return errChanged, nil
	}
	return nil, nil
}

// eachRecord passes every record that next returns from rd to each, in file order, and then sends the rows
// gathered. pass names the read in a read error's message.
func (r *fileRead) eachRecord(ctx context.Context, rd *csvread.Reader, next func() (csvread.Record, error), pass string, each func(csvread.Record) error) (fileErr, err error) {
	for {
		rec, err := next()
		if errors.Is(err, io.EOF) {
			return nil, r.flush(ctx)
		}
		if err != nil {
			return fmt.Errorf("read error after line %d%s: %w", rd.Lines()+1, pass, err), nil
		}
		// Sending looks at the context itself; this is for a read that sends nothing, as Check's, to stop soon
		// after an interruption too.
		if rec.Line%4096 == 0 && ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if err := each(rec); err != nil {
			if fp, ok := errors.AsType[fileProblem](err); ok {
				return fp.error, nil
			}
			return nil, err
		}
	}
}

// errChanged is the file's problem when a reading finds other bytes than the first.
var errChanged = errors.New("the file changed while it was read, so its repeated keys may not be settled; import it again")

// fileProblem is an error of each, in eachRecord, that is a problem with the file rather than a failure to send.
type fileProblem struct{ error }

// firstRead validates every record, rejects the bad ones, sends the rows whose key the filter has not seen, and
// holds back the others.
//
// While the valid records' keys ascend, each is new, and the filter is left alone: files often come sorted by key,
// and the filter's hashing and cache misses were a sixth of the reading's time, its false positives a second read
// of the whole file. The first key out of order calls addEarlier with its line, which adds every earlier key.
func (r *fileRead) firstRead(ctx context.Context, rd *csvread.Reader, addEarlier func(line int) error) (fileErr, err error) {
	ascending, last := true, []byte(nil)
	return r.eachRecord(ctx, rd, rd.Next, "", func(rec csvread.Record) error {
		r.counts.Read++
		r.fd.rows.Add(1)
		prob, plain := r.validate(rec)
		if prob != nil {
			return r.reject(&r.problems, *prob)
		}
		key := rec.Fields[r.kind.KeyIndex()]
		if ascending {
			if last == nil || bytes.Compare(key, last) > 0 {
				last = append(last[:0], key...)
				return r.add(ctx, rec.Line, rec.Fields, plain)
			}
			ascending = false
			if err := addEarlier(rec.Line); err != nil {
				return fileProblem{err}
			}
		}
		if r.seen.testAndAdd(key, rec.Fields) {
			r.heldRows++
			if r.held.get(key) < 0 {
				r.held.add(key, rec.Line)
			}
			return nil
		}
		return r.add(ctx, rec.Line, rec.Fields, plain)
	})
}

// secondRead settles the held keys: the first valid line of each is the one stored, and every other line
// repeats it.
func (r *fileRead) secondRead(ctx context.Context, rd *csvread.Reader) (fileErr, err error) {
	k := r.kind
	// Most records hold no held key; where the key is a record's first field, the reader looks no further into
	// those than their first field.
	next := rd.Next
	if k.KeyIndex() == 0 {
		next = func() (csvread.Record, error) {
			return rd.NextIf(func(key []byte) bool { return r.held.get(key) >= 0 })
		}
	}
	return r.eachRecord(ctx, rd, next, ", reading the file again to settle its repeated keys", func(rec csvread.Record) error {
		if rec.Skipped || rec.Err != nil || len(rec.Fields) <= k.KeyIndex() {
			return nil
		}
		h := r.held.get(rec.Fields[k.KeyIndex()])
		if h < 0 {
			return nil
		}
		// Only valid records count; the first read has rejected the others already. Validation depends on the
		// record alone, so it decides the same way both times.
		prob, plain := r.validate(rec)
		if prob != nil {
			return nil
		}
		first, held := r.held.first(h), r.held.held(h)
		if first != 0 || rec.Line == held {
			r.settled++ // a held row: every line of a held key from its first held one on was held
		}
		switch {
		case first == 0 && rec.Line == held:
			// The filter flagged a key it had not seen: this is the key's first occurrence, held back.
			r.held.setFirst(h, rec.Line)
			return r.add(ctx, rec.Line, rec.Fields, plain)
		case first == 0:
			r.held.setFirst(h, rec.Line) // sent by the first read
			return nil
		}
		return r.reject(&r.dups, k.Duplicate(k.FileName(), rec.Line, rec.LastLine, string(rec.Fields[k.KeyIndex()]), first))
	})
}

// addEarlier adds to the filter the key of every valid record before line, which the first read passed while keys
// ascended. It reads again, through the same open file, the bytes the first read has read so far, and checks that
// they are the same.
func (r *fileRead) addEarlier(f *os.File, first *countingReader, line int) error {
	n, sum := first.n, first.h.Sum32()
	again := &countingReader{r: io.NewSectionReader(f, 0, n), h: crc32.New(castagnoli)}
	rd, err := newReader(again, r.kind)
	if err != nil {
		return errChanged
	}
	for {
		rec, err := rd.Next()
		if err != nil {
			return errChanged // the bytes read before hold every line before this one
		}
		if rec.Line >= line {
			break
		}
		if prob, _ := r.validate(rec); prob == nil {
			r.seen.testAndAdd(rec.Fields[r.kind.KeyIndex()], rec.Fields)
		}
	}
	if _, err := io.Copy(io.Discard, again); err != nil || again.n != n || again.h.Sum32() != sum {
		return errChanged
	}
	return nil
}

// validate returns the problem that rejects a record, or nil for a row to store and which of its fields are
// record.Plain (bit i for field i), for writing the row.
func (r *fileRead) validate(rec csvread.Record) (prob *record.Problem, plain uint64) {
	if rec.Err != nil {
		return &record.Problem{File: r.kind.FileName(), Line: rec.Line, LastLine: rec.LastLine, Reason: rec.Err.Error()}, 0
	}
	return r.kind.ValidateFields(r.kind.FileName(), rec.Line, rec.LastLine, rec.Fields)
}

// reject counts a rejected record and logs its problem.
func (r *fileRead) reject(log *problemLog, p record.Problem) error {
	r.counts.Rejected++
	r.fd.rejected.Add(1)
	return log.add(p)
}

// add gathers one row, sending the chunk first when the row would take it past its bounds.
func (r *fileRead) add(ctx context.Context, line int, fields [][]byte, plain uint64) error {
	before := len(r.batch.data)
	r.batch.add(line, fields, plain)
	if n := r.batch.rows(); n > 1 && len(r.batch.data) > r.cfg.ChunkBytes {
		// The row does not fit: send the chunk without it, and start the next with it. (Should the row have
		// marked the chunk unsorted, the chunk is sorted needlessly, which changes nothing.)
		r.batch.data, r.batch.ends = r.batch.data[:before], r.batch.ends[:n-1]
		if err := r.flush(ctx); err != nil {
			return err
		}
		r.batch.add(line, fields, plain)
	}
	if r.batch.rows() >= r.cfg.ChunkRows {
		return r.flush(ctx)
	}
	return nil
}

// flush sends the gathered rows as one task.
func (r *fileRead) flush(ctx context.Context) error {
	if r.batch.rows() == 0 {
		return nil
	}
	firstLine, rows, data, inOrder := r.batch.take()
	// The rows are in key order now: the first holds the chunk's least key, the last its greatest.
	first, last := data[:bytes.IndexByte(data, '\n')+1], data[bytes.LastIndexByte(data[:len(data)-1], '\n')+1:]
	least, greatest := rowKey(first, r.batch.key), rowKey(last, r.batch.key)
	apart := inOrder && (r.greatest == nil || bytes.Compare(least, r.greatest) > 0)
	if r.greatest == nil || bytes.Compare(greatest, r.greatest) > 0 {
		r.greatest = append(r.greatest[:0], greatest...) // keys are never empty: nil is "no chunk yet"
	}
	if r.send == nil {
		return nil
	}
	if err := r.send(ctx, r.kind, firstLine, rows, data, apart); err != nil {
		return err
	}
	r.tasks++
	return nil
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// countingReader counts and checksums the bytes read through it, and reports them to a feed when it has one.
type countingReader struct {
	r  io.Reader
	h  hash.Hash32
	n  int64
	fd *feed
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.h.Write(p[:n])
	c.n += int64(n)
	if c.fd != nil {
		c.fd.bytes.Add(int64(n))
	}
	return n, err
}

// openFile opens kind k's file of the run. Its error is a problem with the whole file, fit for the report.
//
// A symbolic link is followed, since operators link a folder's files to the latest export; what it leads to must be
// a regular file. A FIFO, a device or a socket could block the read forever, or never end.
func openFile(cfg Config, k record.Kind) (*os.File, error) {
	// O_NONBLOCK: opening a FIFO for reading otherwise waits for a writer, where no signal or timeout reaches it.
	// It changes nothing for a regular file.
	f, err := os.OpenFile(filepath.Join(cfg.Dir, k.FileName()), os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, fileError(cfg.Dir, err)
	}
	st, err := f.Stat()
	if err == nil && !st.Mode().IsRegular() {
		err = fmt.Errorf("is not a regular file but a %s; only regular files, or links to them, are read", fileType(st.Mode()))
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// newReader reads the header of kind k's file and checks it.
func newReader(r io.Reader, k record.Kind) (*csvread.Reader, error) {
	rd, err := csvread.NewReader(r, len(k.Columns()))
	if err == nil {
		err = k.CheckHeader(rd.Header())
	}
	return rd, err
}
