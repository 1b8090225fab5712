package coordinator

import (
	"encoding/json"
	"fmt"
	"time"

	"hpnorton/internal/record"
)

// Tuple is the assignment's result for one file: (records processed, count before, count after, seconds). It
// encodes in JSON as the array [processed, before, after, seconds].
type Tuple struct {
	// Processed counts the records this run added, so Before + Processed == After when nothing else writes.
	Processed int64
	Before    int64
	After     int64
	// Seconds is the wall time from the run's start until the file's last task finished.
	Seconds float64
}

// MarshalJSON writes the tuple as a four-element array.
func (t Tuple) MarshalJSON() ([]byte, error) {
	return json.Marshal([]any{t.Processed, t.Before, t.After, t.Seconds})
}

// UnmarshalJSON reads the four-element array MarshalJSON writes.
func (t *Tuple) UnmarshalJSON(b []byte) error {
	var a []json.Number
	if err := json.Unmarshal(b, &a); err != nil {
		return err
	}
	if len(a) != 4 {
		return fmt.Errorf("result tuple has %d elements, want 4", len(a))
	}
	var err error
	for i, dst := range []*int64{&t.Processed, &t.Before, &t.After} {
		if *dst, err = a[i].Int64(); err != nil {
			return fmt.Errorf("result tuple element %d: %w", i, err)
		}
	}
	t.Seconds, err = a[3].Float64()
	return err
}

// File is the detailed account of one file of a run. Read = Added + Present + Rejected, and every line after the
// header is blank or in exactly one record: Lines = Blank + the lines the records cover, which is Read when no
// quoted field spans lines (a rejected record names its first and last line). Its counts encode in JSON as read,
// added, present and rejected.
type File struct {
	Kind string `json:"kind"`
	File string `json:"file"`
	// Error is a problem with the whole file, such as a missing file or a wrong header; nothing of it was read.
	Error string `json:"error,omitempty"`
	Tasks int    `json:"tasks"`
	// Lines counts the file's lines after the header, and Blank those that hold nothing.
	Lines int64 `json:"lines"`
	Blank int64 `json:"blank,omitempty"`
	record.Counts
	Before  int64   `json:"before"`
	After   int64   `json:"after"`
	Seconds float64 `json:"seconds"`
	// Redelivered counts tasks that asynq ran more than once; their rows were counted once.
	Redelivered int `json:"redelivered,omitempty"`
}

// WorkerUse says how many of the run's tasks one worker process finished.
type WorkerUse struct {
	Worker      string `json:"worker"`
	Concurrency int    `json:"concurrency"`
	Tasks       int    `json:"tasks"`
}

// Report is a finished run, as stored under the results key and printed by enqueue --json.
type Report struct {
	RunID      string `json:"run_id"`
	ResultsKey string `json:"results_key"`
	// Results holds one tuple per file, customers first, then products.
	Results []Tuple `json:"results"`
	// Mode is "linear" when one worker process at concurrency 1 ran every task, "parallel" otherwise.
	Mode string `json:"mode"`
	// Update is true for a run in update mode (enqueue --update); its files then count Updated and Unchanged.
	Update  bool        `json:"update,omitempty"`
	Workers []WorkerUse `json:"workers"`
	Files   []File      `json:"files"`
	// Problems lists the first rejected records and file problems, in file and line order; ProblemCount counts
	// them all, and Config.Rejects is given every one.
	Problems     []record.Problem `json:"problems,omitempty"`
	ProblemCount int              `json:"problem_count"`
	// Queue is the queue the run's tasks travelled on, and Database the identity of the database they wrote to.
	Queue     string    `json:"queue"`
	Database  string    `json:"database"`
	StartedAt time.Time `json:"started_at"`
	Seconds   float64   `json:"seconds"`
}

// Clean reports whether every file was read and every record landed or was already present.
func (r *Report) Clean() bool { return r.ProblemCount == 0 }
