package eta

import (
	"math"
	"testing"
	"time"
)

var t0 = time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)

func at(secs float64) time.Time { return t0.Add(time.Duration(secs * float64(time.Second))) }

// near reports whether got is within 2% of want seconds.
func near(got time.Duration, want float64) bool {
	return math.Abs(got.Seconds()-want) <= 0.02*want
}

// TestSteadyFileAfterASlowStart: a file whose rows finish 20,000 at a time, every half second, after 4 s spent
// starting. Its time left is the rows left at 40,000 rows a second, whatever the start cost, which a rate over the
// whole run would count in.
func TestSteadyFileAfterASlowStart(t *testing.T) {
	t.Parallel()
	var e Estimator
	const total = 1_000_000
	if got := e.Observe(at(0), []File{{Total: total}}); got[0].Known {
		t.Fatalf("a file with no row done has a time left: %v", got[0].D)
	}
	for n := 1; n*20_000 < total; n++ {
		now := 4 + 0.5*float64(n-1)
		got := e.Observe(at(now), []File{{Rows: int64(n) * 20_000, Total: total}})[0]
		if n < 3 {
			if got.Known {
				t.Errorf("after %d steps, time left %v, want unknown", n, got.D)
			}
			continue
		}
		want := float64(total-n*20_000) / 40_000
		if !got.Known || !near(got.D, want) {
			t.Fatalf("after %d steps (%.1f s): time left %v (known %v), want %.2f s", n, now, got.D, got.Known, want)
		}
		// Between steps the tasks under way go on loading: the time left goes down with the clock.
		mid := e.Observe(at(now+0.25), []File{{Rows: int64(n) * 20_000, Total: total}})[0]
		if !near(mid.D, want-0.25) {
			t.Fatalf("a quarter second after step %d: time left %v, want %.2f s", n, mid.D, want-0.25)
		}
	}
	if got := e.Observe(at(30), []File{{Rows: total, Total: total, Done: true}})[0]; !got.Known || got.D != 0 {
		t.Errorf("a done file's time left is %v (known %v), want 0", got.D, got.Known)
	}
}

// TestFilesShareTheWorkers: two files loading at 10,000 rows a second each. Customers (200,000 rows) is done at
// 20 s; then the workers all serve products, which goes at 20,000 a second: its last 800,000 rows take 40 s, so it
// is done at 60 s. Each file's rate alone would put products at 100 s.
func TestFilesShareTheWorkers(t *testing.T) {
	t.Parallel()
	var e Estimator
	var got []Left
	for s := 1; s <= 5; s++ {
		rows := int64(s) * 10_000
		got = e.Observe(at(float64(s)), []File{{Rows: rows, Total: 200_000}, {Rows: rows, Total: 1_000_000}})
	}
	if !near(got[0].D, 15) || !near(got[1].D, 55) {
		t.Errorf("at 5 s: customers %v left, products %v, want 15 s and 55 s", got[0].D, got[1].D)
	}
}

// TestAFileNotStartedWaitsItsTurn: with one worker, products' tasks wait behind customers'. Products has no rate
// of its own, and gets the whole rate once customers is done.
func TestAFileNotStartedWaitsItsTurn(t *testing.T) {
	t.Parallel()
	var e Estimator
	var got []Left
	for s := 1; s <= 4; s++ {
		got = e.Observe(at(float64(s)), []File{{Rows: int64(s) * 10_000, Total: 100_000}, {Total: 50_000}})
	}
	if !got[0].Known || !near(got[0].D, 6) || !got[1].Known || !near(got[1].D, 11) {
		t.Errorf("at 4 s: customers %v left (known %v), products %v (known %v), want 6 s and 11 s", got[0].D, got[0].Known, got[1].D, got[1].Known)
	}
}

// TestRateCountsFromTheFirstStep: a file that goes at 10,000 rows a second for 20 s, then at 40,000. The rate is
// taken from its first step (at 1 s) to its last: 590,000 rows in 29 s. The tasks finish a step at a time, and on
// recorded runs a rate over only the recent steps swung by a step each time.
func TestRateCountsFromTheFirstStep(t *testing.T) {
	t.Parallel()
	var e Estimator
	var got []Left
	rows := int64(0)
	for s := 1; s <= 30; s++ {
		rows += map[bool]int64{true: 10_000, false: 40_000}[s <= 20]
		got = e.Observe(at(float64(s)), []File{{Rows: rows, Total: 1_000_000}})
	}
	// 400,000 rows left at 590,000 / 29 rows a second; the average since the start (600,000 / 30) would say 20 s.
	if want := 400_000 / (590_000.0 / 29); !near(got[0].D, want) {
		t.Errorf("at 30 s: %v left, want %.1f s", got[0].D, want)
	}
}

// TestAFileDoneLeavesItsShare: two files at 10,000 rows a second each until customers is done at 10 s; products
// then goes at the run's whole 20,000 a second. Its own rate, measured while it shared the workers, is half that.
func TestAFileDoneLeavesItsShare(t *testing.T) {
	t.Parallel()
	var e Estimator
	var got []Left
	for s := 1; s <= 10; s++ {
		rows := int64(s) * 10_000
		got = e.Observe(at(float64(s)), []File{{Rows: rows, Total: 100_000, Done: s == 10}, {Rows: rows, Total: 500_000}})
	}
	if !got[0].Known || got[0].D != 0 || !near(got[1].D, 400_000/20_000.0) {
		t.Errorf("at 10 s: customers %v left (known %v), products %v, want done and 20 s", got[0].D, got[0].Known, got[1].D)
	}
}
