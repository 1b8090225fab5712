package main

import (
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
	"golang.org/x/term"

	"hpnorton/internal/coordinator"
	"hpnorton/internal/record"
)

// isTerminal reports whether w is a terminal, where live progress makes sense. A pipe or a file gets none.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// progressBars draws a bar per file while a run waits: rows done out of the total, the rate and the time left.
// Log lines written through Writer appear above the bars instead of tearing them.
type progressBars struct {
	p     *mpb.Progress
	bars  map[record.Kind]*mpb.Bar
	exact map[record.Kind]*atomic.Bool // files read to the end, whose totals are counts, not estimates
	done  map[record.Kind]bool         // files whose tasks have all finished

	mu     sync.Mutex // guards done and closed
	out    io.Writer  // where Writer sends log lines once the bars are gone
	closed bool
	once   sync.Once
}

// newProgressBars draws on out. The caller makes bars only for a terminal; refreshing is forced on all the same,
// since mpb would otherwise draw nothing to a writer it cannot tell is a terminal, such as a test's buffer.
func newProgressBars(out io.Writer) *progressBars {
	pb := &progressBars{
		p:     mpb.New(mpb.WithOutput(out), mpb.WithAutoRefresh(), mpb.WithWidth(32), mpb.WithRefreshRate(200*time.Millisecond)),
		bars:  map[record.Kind]*mpb.Bar{},
		exact: map[record.Kind]*atomic.Bool{},
		done:  map[record.Kind]bool{},
		out:   out,
	}
	for _, k := range record.Kinds {
		// The total is unknown until the file has been read; until then the coordinator estimates it from the
		// bytes read, and the bar marks it with "~".
		exact := &atomic.Bool{}
		pb.exact[k] = exact
		pb.bars[k] = pb.p.AddBar(0,
			mpb.PrependDecorators(
				decor.Name(k.FileName(), decor.WCSyncSpaceR),
				decor.CurrentNoUnit("%d", decor.WCSyncSpace),
				decor.Any(func(decor.Statistics) string {
					if exact.Load() {
						return " / "
					}
					return " / ~"
				}),
				decor.TotalNoUnit("%d rows"),
			),
			mpb.AppendDecorators(
				decor.Percentage(decor.WCSyncSpace),
				decor.AverageSpeed(nil, "%.0f rows/s", decor.WCSyncSpace),
				decor.OnComplete(decor.AverageETA(decor.ET_STYLE_GO, decor.WCSyncSpace), "done"),
			),
		)
	}
	return pb
}

// Update moves the bars to the run's progress; it is coordinator.Config.Progress.
func (pb *progressBars) Update(files []coordinator.FileProgress) {
	pb.mu.Lock()
	defer pb.mu.Unlock()
	for _, f := range files {
		bar := pb.bars[f.Kind]
		pb.exact[f.Kind].Store(f.Exact)
		total := max(f.Total, f.Rows)
		if f.Done {
			// A done file's total is what was done. Its bar completes only in Close: mpb stops rendering once
			// every bar is complete, and the run's last log lines would be lost.
			total = f.Rows
			pb.done[f.Kind] = true
		}
		bar.SetTotal(total, false)
		bar.SetCurrent(f.Rows)
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
