// Package tasks defines the import tasks that travel through asynq: their type names, their payload and one
// constructor per task. It is the contract between the enqueuer, which writes tasks, and the workers
// (internal/worker), which run them.
//
// A worker on another machine shares only Redis and MySQL with the enqueuer, so the payload carries the identity
// of the database it is for, the run ID, the file name, the line of its first row, and the number and size of
// its rows. The rows themselves, validated and ready for LOAD DATA (repo.AppendRow), wait in Redis beside the
// task under a key made from the run and the task (internal/ledger), because asynq's scripts copy a large payload
// several times inside Redis. A payload and its rows are untrusted input: anything that can write to Redis can
// write them, so DecodeImportPayload and CheckRows bound every field before a worker acts on it.
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

// RowsGone opens the last error of a task that a worker failed for good because its rows were not in Redis: Redis
// lost them (flushed, restarted without its file) or they expired. The enqueuer reads it there, since the file
// still holds the rows, and a resume sends them again.
const RowsGone = "its rows are gone from Redis"

// Bounds on a payload. The enqueuer's chunks stay well inside them; a payload beyond them did not come from it.
const (
	// MaxChunkRecords is the most rows one task may carry.
	MaxChunkRecords = 100_000
	// MaxChunkBytes is the most bytes of rows one task may carry.
	MaxChunkBytes = 16 << 20
	maxRunID      = 64 // import_runs.run_id is VARCHAR(64)
	// PayloadFormat names the layout of ImportPayload. A worker refuses a payload of another format, such as one
	// queued by an older enqueuer, with a message that says so, rather than reading it wrong. Format 2 carried
	// the rows inside the payload.
	PayloadFormat = 3
	// UpdateFormat is an update-mode task's format: format 3 and Update. A worker that knows no update mode refuses
	// it as another format, rather than load it as an import that leaves present rows alone.
	UpdateFormat = 4
)

// QueueFor is the queue that carries import tasks for the database whose identity is dbID (repo.DB.ID), on the
// operator's base queue name: base.dbID. Workers serve it, and the enqueuer sends to it.
func QueueFor(base, dbID string) string { return base + "." + dbID }

// ImportPayload is one chunk of one file of a run: rows that the enqueuer has validated, none of which repeats a
// key of the file that another row of the run holds.
type ImportPayload struct {
	// Format is PayloadFormat.
	Format int `json:"format"`
	// DB is the identity of the database the run imports into (repo.DB.ID); a worker on another database refuses
	// the task.
	DB    string `json:"db"`
	RunID string `json:"run_id"`
	// RunNo is the number the run was registered under in MySQL.
	RunNo uint64 `json:"run_no"`
	// File is the name of the file the rows come from.
	File string `json:"file"`
	// FirstLine is the line of File that the chunk's first row was read from; the header is line 1. It names
	// the task, since no two tasks of a run start on the same line.
	FirstLine int `json:"first_line"`
	// Rows counts the task's rows, and Bytes their size in LOAD DATA's format, a line each (repo.AppendRow).
	Rows  int `json:"rows"`
	Bytes int `json:"bytes"`
	// Update asks for update mode: a present row whose values differ takes the row's (enqueue --update).
	Update bool `json:"update,omitempty"`
	// Apart says that the chunk's rows came in key order, and that its keys lie above every key of the file's
	// earlier chunks, as in a file sorted by its key, where no other task holds a key in the chunk's range. An
	// update-mode worker then reads the stored rows of that range, which locks them, rather than a list of keys
	// (repo.Task.Apart). A later chunk that reaches into the range is not apart, and lists its keys; so does a
	// worker given a task without the mark, as from an earlier enqueuer.
	Apart bool `json:"apart,omitempty"`
}

// TaskID is the asynq task ID of a chunk: the same chunk of the same run always gets the same ID, which makes
// enqueueing it twice a no-op and names its record in MySQL.
func (p ImportPayload) TaskID(k record.Kind) string {
	return p.RunID + ":" + k.String() + ":" + strconv.Itoa(p.FirstLine)
}

// DecodeImportPayload reads a payload of kind k written by one of the constructors, and checks every field
// against the bounds the enqueuer keeps, so that no field can make a worker allocate or loop without limit.
func DecodeImportPayload(k record.Kind, b []byte) (ImportPayload, error) {
	var p ImportPayload
	if err := json.Unmarshal(b, &p); err != nil {
		return ImportPayload{}, fmt.Errorf("tasks: payload: %w", err)
	}
	if err := p.check(k); err != nil {
		return ImportPayload{}, fmt.Errorf("tasks: payload refused: %w", err)
	}
	return p, nil
}

// check bounds every field of a payload of kind k.
func (p ImportPayload) check(k record.Kind) error {
	switch {
	case p.Format != PayloadFormat && p.Format != UpdateFormat:
		return fmt.Errorf("its format is %d, and this worker reads formats %d and %d: it was queued by another version of enqueue; run the import again with this version", p.Format, PayloadFormat, UpdateFormat)
	case p.Update != (p.Format == UpdateFormat):
		return fmt.Errorf("format %d with update %v: update mode is format %d", p.Format, p.Update, UpdateFormat)
	case p.DB == "":
		return errors.New("it names no database")
	case p.RunID == "" || len(p.RunID) > maxRunID || p.RunNo == 0:
		return fmt.Errorf("it needs a run ID of 1 to %d bytes and a run number", maxRunID)
	case p.File != k.FileName():
		return fmt.Errorf("a %s task imports %s, not %s", k, k.FileName(), record.Shorten(p.File))
	case p.FirstLine < 2:
		return fmt.Errorf("first line %d: the header is line 1, so records start on line 2 or later", p.FirstLine)
	case p.Rows < 1 || p.Rows > MaxChunkRecords:
		return fmt.Errorf("%d rows: a task holds 1 to %d", p.Rows, MaxChunkRecords)
	case p.Bytes < 2*p.Rows || p.Bytes > MaxChunkBytes:
		return fmt.Errorf("%d bytes of rows: a task of %d rows holds %d to %d", p.Bytes, p.Rows, 2*p.Rows, MaxChunkBytes)
	}
	return nil
}

// CheckRows checks a task's rows against its payload: as many bytes and as many lines as it says, each row ending
// with a newline, which a field holds only escaped. A field count that is off is caught by the load, which
// refuses any warning but a present key's.
func (p ImportPayload) CheckRows(data []byte) error {
	switch {
	case len(data) != p.Bytes:
		return fmt.Errorf("tasks: the rows of %s are %d bytes, and its payload says %d", p.File, len(data), p.Bytes)
	case len(data) > 0 && data[len(data)-1] != '\n', bytes.Count(data, []byte{'\n'}) != p.Rows:
		return fmt.Errorf("tasks: the rows of %s are not %d lines", p.File, p.Rows)
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
	p.Format = PayloadFormat
	if p.Update {
		p.Format = UpdateFormat
	}
	b, err := json.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("tasks: encode payload: %w", err)
	}
	opts = append([]asynq.Option{asynq.TaskID(p.TaskID(k))}, opts...)
	return asynq.NewTask(typeOf[k], b, opts...), nil
}
