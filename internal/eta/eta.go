// Package eta estimates how long each file of a run has left, from how fast its rows have finished lately.
//
// Rows commit a task at a time (20,000 by default), so a file's progress moves in steps where the enqueuer cannot
// see the rows of tasks under way, and in small steps where it can (coordinator.FileProgress.Loading). The first
// step comes only after the run has counted the tables, read its first chunks and a worker has started on one. A rate over the
// whole run so far carries that start in it: on 2 × 1,000,000 rows it gave 2–5 times the real time left. So the
// rate here is measured between the steps themselves, from the first step on, and the files share one capacity:
// the workers serve every file of a run, so when one file is done the others speed up by its share.
//
// A window over only the recent steps was tried on recorded runs (lab/eta -trace) and did worse: a step is a whole
// task's rows, so a short window swings by a step at a time.
package eta

import (
	"cmp"
	"math"
	"slices"
	"time"
)

// File is one file's progress at an instant.
type File struct {
	// Rows are the records done and Total the file's records, an estimate until the whole file has been read.
	Rows, Total int64
	Done        bool
}

// Left is one file's estimated time left; Known is false while there is too little to go on.
type Left struct {
	D     time.Duration
	Known bool
}

// Estimator follows a run's files through Observe. The zero value is ready; it is not safe for concurrent use.
type Estimator struct {
	steps [][]step // each file's progress each time its rows grew, oldest first
	run   []step   // the rows of all files together, each time they grew: the run's whole rate
}

type step struct {
	at   time.Time
	rows int64
}

// Observe takes the run's progress at an instant (files in the same order each time) and returns each file's time
// left from then.
func (e *Estimator) Observe(at time.Time, files []File) []Left {
	for len(e.steps) < len(files) {
		e.steps = append(e.steps, nil)
	}
	left := make([]Left, len(files))
	var active []int
	rates := make([]float64, len(files))
	rems := make([]float64, len(files))
	sum := int64(0)
	for i, f := range files {
		e.steps[i] = grow(e.steps[i], at, f.Rows)
		sum += f.Rows
	}
	e.run = grow(e.run, at, sum)
	// The run's whole rate is what the files share: a file that is done leaves its share to the others.
	whole, _, ok := rate(e.run)
	if !ok {
		for i, f := range files {
			left[i] = Left{Known: f.Done}
		}
		return left
	}
	lasts := make([]step, len(files))
	sumRates := 0.0
	for i, f := range files {
		if f.Done {
			left[i] = Left{Known: true}
			continue
		}
		active = append(active, i)
		rems[i] = float64(max(f.Total-f.Rows, 0))
		if r, last, ok := rate(e.steps[i]); ok {
			rates[i], lasts[i] = r, last
			sumRates += r
		}
	}
	// The tasks under way have gone on loading since the file's last step, at its share of the run's rate.
	for _, i := range active {
		if rates[i] > 0 {
			pace := rates[i] * whole / sumRates
			rems[i] = math.Max(rems[i]-pace*at.Sub(lasts[i].at).Seconds(), 0)
		}
	}
	for i, d := range share(active, rates, rems, whole) {
		left[i] = Left{D: d, Known: true}
	}
	return left
}

// grow adds a step to s when rows have grown since its last.
func grow(s []step, at time.Time, rows int64) []step {
	if len(s) == 0 || rows > s[len(s)-1].rows {
		s = append(s, step{at, rows})
	}
	return s
}

// rate is the rows a second from the first step of s with rows to its last, and that last step; ok is false until
// there are two steps after the first rows.
func rate(s []step) (rate float64, last step, ok bool) {
	// The first step with rows is where the rate starts: before it lies the start of the run.
	first := slices.IndexFunc(s, func(p step) bool { return p.rows > 0 })
	if first < 0 || len(s)-first < 3 {
		return 0, step{}, false
	}
	from, last := s[first], s[len(s)-1]
	secs := last.at.Sub(from.at).Seconds()
	if secs <= 0 {
		return 0, step{}, false
	}
	return float64(last.rows-from.rows) / secs, last, true
}

// share plays out the active files' remaining rows, the files sharing the run's whole rate in proportion to their
// own rates (evenly among files that have no rate yet): when one finishes, its share goes to those left.
func share(active []int, rates, rems []float64, total float64) map[int]time.Duration {
	out := map[int]time.Duration{}
	if total <= 0 {
		return out
	}
	now := 0.0
	active = slices.Clone(active)
	for len(active) > 0 {
		sum := 0.0
		for _, i := range active {
			sum += rates[i]
		}
		pace := func(i int) float64 {
			if sum <= 0 {
				return total / float64(len(active))
			}
			return rates[i] * total / sum
		}
		until := func(i int) float64 {
			if rems[i] <= 0 {
				return 0
			}
			return rems[i] / pace(i) // +Inf for a file with no share while others run
		}
		next := slices.MinFunc(active, func(a, b int) int { return cmp.Compare(until(a), until(b)) })
		dt := until(next)
		now += dt
		for _, i := range active {
			rems[i] = math.Max(rems[i]-pace(i)*dt, 0)
		}
		out[next] = time.Duration(now * float64(time.Second))
		active = slices.DeleteFunc(active, func(i int) bool { return i == next })
	}
	return out
}
