package main

import (
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
	"golang.org/x/term"

	"hpnorton/internal/coordinator"
	"hpnorton/internal/eta"
	"hpnorton/internal/record"
)

// isTerminal reports whether w is a terminal, where live progress makes sense. A pipe or a file gets none.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// progressBars draws a bar per file while a run waits: rows done out of the total, the rate and the time left,
// in 80 columns for files of millions of rows.
// Log lines written through Writer appear above the bars instead of tearing them.
type progressBars struct {
	p     *mpb.Progress
	bars  map[record.Kind]*mpb.Bar
	exact map[record.Kind]*atomic.Bool // files read to the end, whose totals are counts, not estimates
	done  map[record.Kind]bool         // files whose tasks have all finished

	start  time.Time
	doneAt map[record.Kind]*atomic.Int64 // when each file's tasks had all finished, in nanoseconds from start
	est    eta.Estimator                 // guarded by mu
	eta    map[record.Kind]*atomic.Int64 // when each file should be done as last estimated, in nanoseconds from start, or -1: unknown

	mu     sync.Mutex // guards done and closed
	out    io.Writer  // where Writer sends log lines once the bars are gone
	closed bool
	once   sync.Once
}

// newProgressBars draws on out. The caller makes bars only for a terminal; refreshing is forced on all the same,
// since mpb would otherwise draw nothing to a writer it cannot tell is a terminal, such as a test's buffer.
func newProgressBars(out io.Writer) *progressBars {
	pb := &progressBars{
		p:      mpb.New(mpb.WithOutput(out), mpb.WithAutoRefresh(), mpb.WithWidth(80), mpb.WithRefreshRate(200*time.Millisecond)),
		bars:   map[record.Kind]*mpb.Bar{},
		exact:  map[record.Kind]*atomic.Bool{},
		done:   map[record.Kind]bool{},
		out:    out,
		start:  time.Now(),
		doneAt: map[record.Kind]*atomic.Int64{},
		eta:    map[record.Kind]*atomic.Int64{},
	}
	for _, k := range record.Kinds {
		// The total is unknown until the file has been read; until then the coordinator estimates it from the
		// bytes read, and the bar marks it with "~". Its column keeps its width as the total grows from an estimate
		// to the count, so that the bar does not shift.
		exact := &atomic.Bool{}
		pb.exact[k] = exact
		pb.doneAt[k] = &atomic.Int64{}
		pb.eta[k] = &atomic.Int64{}
		pb.eta[k].Store(-1)
		// Each count has room for 8 digits, up to 99,999,999 rows, and the rate for 7, so that no column moves as a
		// count grows by a digit; the last column, the time left, may.
		pb.bars[k] = pb.p.AddBar(0, mpb.BarWidth(14),
			mpb.PrependDecorators(
				decor.Name(k.FileName(), decor.WCSyncSpaceR),
				decor.CurrentNoUnit("%d", decor.WC{W: 8, C: decor.DSyncSpace}),
				decor.Any(func(s decor.Statistics) string {
					if exact.Load() {
						return fmt.Sprintf(" / %d", s.Total)
					}
					return fmt.Sprintf(" / ~%d", s.Total)
				}, decor.WC{W: 12, C: decor.DindentRight}),
			),
			mpb.AppendDecorators(
				decor.Percentage(decor.WC{W: 5, C: decor.DSyncSpace}),
				decor.Any(func(s decor.Statistics) string { return pb.rate(k, s) }, decor.WC{W: 14, C: decor.DSyncSpace}),
				decor.Any(func(decor.Statistics) string { return pb.left(k) }, decor.WCSyncSpace),
			),
		)
	}
	return pb
}

// elapsed is the time a file has taken: until its last task finished, or until now.
func (pb *progressBars) elapsed(k record.Kind) time.Duration {
	if d := pb.doneAt[k].Load(); d > 0 {
		return time.Duration(d)
	}
	return time.Since(pb.start)
}

// rate is a file's rows a second over its own time, so that a file that finished first keeps its own rate.
func (pb *progressBars) rate(k record.Kind, s decor.Statistics) string {
	if el := pb.elapsed(k); s.Current > 0 && el > 0 {
		return fmt.Sprintf("%.0f rows/s", float64(s.Current)/el.Seconds())
	}
	return "- rows/s"
}

// left is a file's time left as last estimated (package eta): unknown until a few of its tasks have finished,
// rather than a guess. Under ten seconds it is given to a tenth of a second, as the last tasks finish in steps
// smaller than a second.
func (pb *progressBars) left(k record.Kind) string {
	if pb.doneAt[k].Load() > 0 {
		return "done"
	}
	at := pb.eta[k].Load()
	if at < 0 {
		return "left ?"
	}
	d := max(time.Duration(at)-time.Since(pb.start), 0) // counting down between estimates
	if d < 10*time.Second {
		return "left " + d.Round(100*time.Millisecond).String()
	}
	return "left " + d.Round(time.Second).String()
}

// Update moves the bars to the run's progress; it is coordinator.Config.Progress.
func (pb *progressBars) Update(files []coordinator.FileProgress) {
	pb.mu.Lock()
	defer pb.mu.Unlock()
	progress := make([]eta.File, len(files))
	for i, f := range files {
		progress[i] = f.ETA()
	}
	now := time.Now()
	for i, l := range pb.est.Observe(now, progress) {
		at := int64(-1)
		if l.Known {
			at = int64(now.Sub(pb.start) + l.D)
		}
		pb.eta[files[i].Kind].Store(at)
	}
	for i, f := range files {
		bar := pb.bars[f.Kind]
		pb.exact[f.Kind].Store(f.Exact)
		// Rows under way count (FileProgress.ETA): they move the bar between commits.
		rows, total := progress[i].Rows, progress[i].Total
		if f.Done {
			// A done file's total is what was done. Its bar completes only in Close: mpb stops rendering once
			// every bar is complete, and the run's last log lines would be lost.
			total = f.Rows
			pb.done[f.Kind] = true
			pb.doneAt[f.Kind].CompareAndSwap(0, int64(max(time.Since(pb.start), 1)))
		}
		bar.SetTotal(total, false)
		bar.SetCurrent(rows)
	}
}

// Write prints a log line above the bars while they run, and plainly once they are gone.
func (pb *progressBars) Write(b []byte) (int, error) {
	pb.mu.Lock()
	defer pb.mu.Unlock()
	if pb.closed {
		return pb.out.Write(b)
	}
	return pb.p.Write(b)
}

// Close ends the bars; a file whose tasks did not all finish keeps its bar where it stopped. Calling it again does
// nothing.
func (pb *progressBars) Close() {
	pb.once.Do(func() {
		pb.mu.Lock()
		for k, bar := range pb.bars {
			if pb.done[k] {
				bar.SetTotal(-1, true)
			} else {
				bar.Abort(false)
			}
		}
		pb.mu.Unlock()
		pb.p.Wait()
		pb.mu.Lock()
		pb.closed = true
		pb.mu.Unlock()
	})
}
