// Package tasks defines the import tasks that travel through asynq: their type names, their payload, one
// constructor per task, and the handler that validates a chunk and writes it through repo.
//
// A payload is self-contained. A worker on another machine shares only Redis and MySQL with the enqueuer, so the
// payload carries the run ID, the file name, the line the chunk starts on and the chunk's original CSV bytes.
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

// ImportPayload is one chunk of one file of a run.
type ImportPayload struct {
	RunID string `json:"run_id"`
	// RunNo is the number the run was registered under in MySQL; stored rows carry it.
	RunNo uint64 `json:"run_no"`
	// File is the file's name as the user should see it in a problem report.
	File string `json:"file"`
	// FirstLine is the line of File on which Data begins; the header is line 1.
	FirstLine int `json:"first_line"`
	// Records is how many CSV records Data holds.
	Records int `json:"records"`
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

// DecodeImportPayload reads a payload written by one of the constructors.
func DecodeImportPayload(b []byte) (ImportPayload, error) {
	meta, data, ok := bytes.Cut(b, []byte{'\n'})
	if !ok {
		return ImportPayload{}, errors.New("tasks: payload has no metadata line")
	}
	var p ImportPayload
	if err := json.Unmarshal(meta, &p); err != nil {
		return ImportPayload{}, fmt.Errorf("tasks: payload metadata: %w", err)
	}
	if p.RunID == "" || p.RunNo == 0 || p.FirstLine < 1 {
		return ImportPayload{}, fmt.Errorf("tasks: payload lacks a run ID, a run number or a first line")
	}
	p.Data = data
	return p, nil
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
