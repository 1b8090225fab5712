// Package tasks defines the import tasks that travel through asynq: their type names, their payload, one
// constructor per task, and the handler that validates a chunk and writes it through repo.
//
// A payload is self-contained. A worker on another machine shares only Redis and MySQL with the enqueuer, so the
// payload carries the identity of the database it is for, the run ID, the file name, the line the chunk starts on
// and the chunk's original CSV bytes. A payload is untrusted input: anything that can write to the queue can write
// one, so DecodeImportPayload bounds every field before a worker acts on it.
//
// Tasks travel on one queue per database (QueueFor), so that a worker only ever receives tasks for the database
// it writes to, even when staging and production share one Redis.
package tasks

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/hibiken/asynq"

	"hpnorton/internal/csvchunk"
	"hpnorton/internal/record"
)

// Task type names. They are part of the queue's contract with running workers: renaming one strands the tasks
// already queued under the old name.
const (
	TypeCustomerImport = "import:customers"
	TypeProductImport  = "import:products"
)

// typeOf maps each kind to its task type.
var typeOf = map[record.Kind]string{
	record.Customers: TypeCustomerImport,
	record.Products:  TypeProductImport,
}

// KindOf returns the kind of file a task type imports.
func KindOf(taskType string) (record.Kind, error) {
	for k, t := range typeOf {
		if t == taskType {
			return k, nil
		}
	}
	return 0, fmt.Errorf("tasks: unknown task type %q", taskType)
}

// Bounds on a payload. The enqueuer's chunks stay well inside them; a payload beyond them did not come from it.
const (
	// MaxChunkRecords is the most records one task may carry.
	MaxChunkRecords = 100_000
	// MaxChunkBytes is the most CSV bytes one task may carry.
	MaxChunkBytes = 16 << 20
	maxRunID      = 64   // import_runs.run_id is VARCHAR(64)
	maxReason     = 1024 // a bad record's reason is one of csvchunk's short sentences
)

// QueueFor is the queue that carries import tasks for the database whose identity is dbID (repo.DB.ID), on the
// operator's base queue name: base.dbID. Workers serve it, and the enqueuer sends to it.
func QueueFor(base, dbID string) string { return base + "." + dbID }

// ImportPayload is one chunk of one file of a run.
type ImportPayload struct {
	// DB is the identity of the database the run imports into (repo.DB.ID); a worker on another database refuses
	// the task.
	DB    string `json:"db"`
	RunID string `json:"run_id"`
	// RunNo is the number the run was registered under in MySQL; stored rows carry it.
	RunNo uint64 `json:"run_no"`
	// File is the file's name as the user should see it in a problem report.
	File string `json:"file"`
	// FirstLine is the line of File on which Data begins; the header is line 1.
	FirstLine int `json:"first_line"`
	// Records is how many CSV records the chunk covers: those in Data and those in Bad.
	Records int `json:"records"`
	// Bad lists the chunk's records whose form is bad, which Data holds as blank lines.
	Bad []csvchunk.BadRecord `json:"bad,omitempty"`
	// Data holds the records' original CSV bytes. It travels after the JSON header, not inside it, so it is
	// neither escaped nor base64-encoded.
	Data []byte `json:"-"`
}

// TaskID is the asynq task ID of a chunk: the same chunk of the same run always gets the same ID, which makes
// enqueueing it twice a no-op and names its record in MySQL.
func (p ImportPayload) TaskID(k record.Kind) string {
	return p.RunID + ":" + k.String() + ":" + strconv.Itoa(p.FirstLine)
}

// encode lays out the payload as one line of JSON metadata, a newline, then the raw CSV bytes. JSON never
// contains a raw newline, so the first newline ends the metadata.
func (p ImportPayload) encode() ([]byte, error) {
	meta, err := json.Marshal(p)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, len(meta)+1+len(p.Data))
	out = append(out, meta...)
	out = append(out, '\n')
	return append(out, p.Data...), nil
}

// DecodeImportPayload reads a payload of kind k written by one of the constructors, and checks every field
// against the bounds the enqueuer keeps, so that no field can make a worker allocate or loop without limit.
func DecodeImportPayload(k record.Kind, b []byte) (ImportPayload, error) {
	meta, data, ok := bytes.Cut(b, []byte{'\n'})
	if !ok {
		return ImportPayload{}, errors.New("tasks: payload has no metadata line")
	}
	var p ImportPayload
	if err := json.Unmarshal(meta, &p); err != nil {
		return ImportPayload{}, fmt.Errorf("tasks: payload metadata: %w", err)
	}
	p.Data = data
	if err := p.check(k); err != nil {
		return ImportPayload{}, fmt.Errorf("tasks: payload refused: %w", err)
	}
	return p, nil
}

// check bounds every field of a payload of kind k.
func (p ImportPayload) check(k record.Kind) error {
	switch {
	case p.DB == "":
		return errors.New("it names no database")
	case p.RunID == "" || len(p.RunID) > maxRunID || p.RunNo == 0:
		return fmt.Errorf("it needs a run ID of 1 to %d bytes and a run number", maxRunID)
	case p.File != k.FileName():
		return fmt.Errorf("a %s task imports %s, not %s", k, k.FileName(), record.Shorten(p.File))
	case p.FirstLine < 2:
		return fmt.Errorf("first line %d: the header is line 1, so records start on line 2 or later", p.FirstLine)
	case p.Records < 1 || p.Records > MaxChunkRecords:
		return fmt.Errorf("%d records: a task holds 1 to %d", p.Records, MaxChunkRecords)
	case len(p.Data) > MaxChunkBytes:
		return fmt.Errorf("%d bytes of CSV: a task holds at most %d", len(p.Data), MaxChunkBytes)
	case len(p.Bad) > p.Records:
		return fmt.Errorf("%d bad records of %d", len(p.Bad), p.Records)
	}
	for _, b := range p.Bad {
		if b.Line < p.FirstLine || len(b.Reason) > maxReason {
			return fmt.Errorf("bad record on line %d before the chunk's first line %d, or with a reason of %d bytes", b.Line, p.FirstLine, len(b.Reason))
		}
	}
	return nil
}

// NewCustomerImportTask returns the task that imports one chunk of a customers file.
func NewCustomerImportTask(p ImportPayload, opts ...asynq.Option) (*asynq.Task, error) {
	return newImportTask(record.Customers, p, opts)
}

// NewProductImportTask returns the task that imports one chunk of a products file.
func NewProductImportTask(p ImportPayload, opts ...asynq.Option) (*asynq.Task, error) {
	return newImportTask(record.Products, p, opts)
}

// NewImportTask returns the import task for a chunk of the given kind, through that kind's constructor.
func NewImportTask(k record.Kind, p ImportPayload, opts ...asynq.Option) (*asynq.Task, error) {
	switch k {
	case record.Customers:
		return NewCustomerImportTask(p, opts...)
	case record.Products:
		return NewProductImportTask(p, opts...)
	}
	return nil, fmt.Errorf("tasks: no import task for %v", k)
}

func newImportTask(k record.Kind, p ImportPayload, opts []asynq.Option) (*asynq.Task, error) {
	b, err := p.encode()
	if err != nil {
		return nil, fmt.Errorf("tasks: encode payload: %w", err)
	}
	opts = append([]asynq.Option{asynq.TaskID(p.TaskID(k))}, opts...)
	return asynq.NewTask(typeOf[k], b, opts...), nil
}
