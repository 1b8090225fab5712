package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"

	"hpnorton/internal/coordinator"
)

// traced is one line of a trace: a progress report of run Run, At seconds from its start.
type traced struct {
	Run   int                        `json:"run"`
	At    float64                    `json:"at"`
	Files []coordinator.FileProgress `json:"files"`
}

// replay gives the reports of a trace, run by run, to the estimator as if they came now, so that an estimator can
// be judged on the same runs before and after a change, and prints what a real run would.
func replay(path string, stdout io.Writer) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	var runs [][]traced
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	for line := 1; sc.Scan(); line++ {
		var t traced
		if err := json.Unmarshal(sc.Bytes(), &t); err != nil {
			return fmt.Errorf("%s:%d: %w", path, line, err)
		}
		if len(runs) == 0 || runs[len(runs)-1][0].Run != t.Run {
			runs = append(runs, nil)
		}
		runs[len(runs)-1] = append(runs[len(runs)-1], t)
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC) // any instant: only the differences count
	for _, reports := range runs {
		rec := &recording{start: start}
		for _, t := range reports {
			rec.observeAt(start.Add(time.Duration(t.At*float64(time.Second))), t.Files)
		}
		if err := rec.print(stdout, reports[0].Run); err != nil {
			return err
		}
	}
	return nil
}
