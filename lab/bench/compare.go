package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"

	"hpnorton/internal/gen"
)

// The comparison's shape. A small size is cheap to run and noisy, so it gets more rounds; the lesson-5 style
// commits once per row, so it runs only where that takes seconds rather than minutes, and in the first --runs
// rounds only.
const (
	smallBelow  = 100_000 // rows per file under which a size runs smallFactor × --runs rounds
	smallFactor = 5
	lesson5Max  = 10_000 // the largest rows per file the lesson-5 style runs at
)

// compareModes are the modes a comparison runs, in the order its tables list them.
var compareModes = []string{modeLesson5, "linear", "parallel", "mysqlimport"}

// level is a comparison at every size into tables that hold stored rows before each import.
type level struct {
	stored int
	sizes  []sizeResult
}

// sizeResult is one size of a comparison: each mode's seconds, end to end, and CPU-seconds per process, a value
// per round, the rounds in order.
type sizeResult struct {
	rows  int
	times map[string][]float64
	cpu   map[string][]cpuUse
}

func (r sizeResult) median(mode string) float64 { return medianOr0(r.times[mode]) }

// speedup is linear's median over parallel's: above 1, parallel is faster.
func (r sizeResult) speedup() float64 { return r.ratio("linear", "parallel") }

// ratio is mode a's median time over mode b's, over the rounds both ran, 0 where either did not run. The lesson-5
// style runs only the first rounds of a size, and its median over those against linear's over all of them once
// gave a ratio outside the range of the rounds' own ratios.
func (r sizeResult) ratio(a, b string) float64 {
	ma, mb := r.paired(a, b)
	if ma == 0 || mb == 0 {
		return 0
	}
	return ma / mb
}

// paired is the two modes' medians over the rounds both ran.
func (r sizeResult) paired(a, b string) (ma, mb float64) {
	n := min(len(r.times[a]), len(r.times[b]))
	return medianOr0(r.times[a][:n]), medianOr0(r.times[b][:n])
}

// rounds pairs two modes' times by round, over the rounds both ran: a round's own ratio carries less of a slow
// stretch of the machine than a ratio of medians does.
func (r sizeResult) rounds(a, b string) (ratios []float64) {
	ta, tb := r.times[a], r.times[b]
	for i := range min(len(ta), len(tb)) {
		ratios = append(ratios, ta[i]/tb[i])
	}
	return ratios
}

// roundsAt is how many rounds a size runs.
func roundsAt(runs, rows int) int {
	if rows < smallBelow {
		return runs * smallFactor
	}
	return runs
}

// compare runs every mode at each size, in turn within each round, and prints each mode's times, then the table
// of medians and ratios. Each size's files live only while that size runs.
// compare runs the comparison at each of o's stored levels in turn, the envs' tables filled up to each level
// before its sizes run, and prints each level's tables.
func compare(ctx context.Context, o options, envs map[string]*modeEnv, stdout io.Writer) ([]level, error) {
	var levels []level
	for i, stored := range o.storedLevels {
		if i > 0 {
			fmt.Fprintf(stdout, "filling every table to %d rows\n", stored)
			for m, e := range envs {
				if err := e.fill(ctx, m, stored-o.storedLevels[i-1]); err != nil {
					return nil, err
				}
			}
		}
		ol := o
		ol.stored = stored
		results, err := compareAt(ctx, ol, envs, stdout)
		if err != nil {
			return nil, err
		}
		levels = append(levels, level{stored, results})
	}
	return levels, nil
}

// compareAt runs every size into tables that hold o.stored rows, and prints its tables.
func compareAt(ctx context.Context, o options, envs map[string]*modeEnv, stdout io.Writer) ([]sizeResult, error) {
	tmp, err := os.MkdirTemp("", "hpnorton-compare-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	var results []sizeResult
	for _, rows := range o.sizes {
		data := filepath.Join(tmp, strconv.Itoa(rows))
		if err := gen.WriteDir(data, rows, o.gen); err != nil {
			return nil, err
		}
		r := sizeResult{rows: rows, times: map[string][]float64{}, cpu: map[string][]cpuUse{}}
		for round := 1; round <= roundsAt(o.runs, rows); round++ {
			modes := slices.DeleteFunc(slices.Clone(compareModes), func(m string) bool {
				return m == modeLesson5 && (rows > lesson5Max || round > o.runs)
			})
			for _, m := range turns(modes, round) {
				run, err := alone(envs, m, func() (measure, error) {
					return envs[m].runOnce(ctx, o, rows, data, fmt.Sprintf("%d_%d_%d", o.stored, rows, round))
				})
				if err != nil {
					return nil, fmt.Errorf("%s at %d rows into %d stored, round %d: %w", m, rows, o.stored, round, err)
				}
				r.times[m], r.cpu[m] = append(r.times[m], run.secs), append(r.cpu[m], run.cpu)
			}
		}
		for _, m := range compareModes {
			if len(r.times[m]) > 0 {
				fmt.Fprintf(stdout, "2 × %-9d into %-9d %-12s %s\n", rows, o.stored, m, showTimes(r.times[m]))
			}
		}
		results = append(results, r)
		if err := os.RemoveAll(data); err != nil {
			return nil, err
		}
	}
	fmt.Fprintf(stdout, "\ntables holding %d rows each before every import\n", o.stored)
	if err := writeTable(stdout, results); err != nil {
		return nil, err
	}
	fmt.Fprintln(stdout)
	if err := writeRatios(stdout, results); err != nil {
		return nil, err
	}
	fmt.Fprintln(stdout)
	if err := writeCompareCPU(stdout, results); err != nil {
		return nil, err
	}
	fmt.Fprintf(stdout, "\n%s\n", verdictLine(results))
	return results, nil
}

// spreadOf is a median of seconds with its range and the number of values: "0.812 (0.790–0.845, 5)".
func spreadOf(xs []float64) string {
	if len(xs) == 0 {
		return "-"
	}
	return fmt.Sprintf("%.3f (%.3f–%.3f, %d)", median(xs), slices.Min(xs), slices.Max(xs), len(xs))
}

// writeTable prints each mode's seconds at each size: median (fastest–slowest, runs).
func writeTable(w io.Writer, results []sizeResult) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprint(tw, "rows per file\t")
	for _, m := range compareModes {
		fmt.Fprintf(tw, "%s s\t", modeName(m))
	}
	fmt.Fprintln(tw, "parallel rows/s\t")
	for _, r := range results {
		fmt.Fprintf(tw, "%d\t", r.rows)
		for _, m := range compareModes {
			fmt.Fprintf(tw, "%s\t", spreadOf(r.times[m]))
		}
		fmt.Fprintf(tw, "%.0f\t\n", float64(2*r.rows)/r.median("parallel"))
	}
	return tw.Flush()
}

// modeName is how the tables name a mode.
func modeName(m string) string {
	if m == modeLesson5 {
		return "lesson-5"
	}
	return m
}

// writeRatios prints, at each size, what batching gains (lesson-5 style against linear), what parallelism gains
// (linear against parallel) and where parallel stands against mysqlimport: each the ratio of medians, then the
// rounds' own ratios, and for parallel against linear how many rounds it won and whether that is beyond the noise.
func writeRatios(w io.Writer, results []sizeResult) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "rows per file\tbatching: lesson-5 / linear\tparallelism: linear / parallel\tparallel won\tverdict\tmysqlimport / parallel\t")
	for _, r := range results {
		won, n := r.won()
		fmt.Fprintf(tw, "%d\t%s\t%s\t%d of %d\t%s\t%s\t\n", r.rows, showRatio(r, modeLesson5, "linear"), showRatio(r, "linear", "parallel"),
			won, n, r.verdict(), showRatio(r, "mysqlimport", "parallel"))
	}
	return tw.Flush()
}

// showRatio is a's median over b's, with the rounds' own ratios: "1.54× (rounds 1.31–1.80)".
func showRatio(r sizeResult, a, b string) string {
	x := r.ratio(a, b)
	if x == 0 {
		return "-"
	}
	rs := r.rounds(a, b)
	return fmt.Sprintf("%.2f× (rounds %.2f–%.2f)", x, slices.Min(rs), slices.Max(rs))
}

// won is in how many of the n rounds parallel mode was faster than linear mode.
func (r sizeResult) won() (won, n int) {
	rs := r.rounds("linear", "parallel")
	for _, x := range rs {
		if x > 1 {
			won++
		}
	}
	return won, len(rs)
}

// signP is the chance of k or more wins in n rounds when either mode is as likely to win a round: the one-sided
// sign test. It assumes nothing of how the times spread, only that rounds are independent.
func signP(k, n int) float64 {
	p := 0.0
	for i := k; i <= n; i++ {
		p += binomial(n, i)
	}
	return p / math.Pow(2, float64(n))
}

func binomial(n, k int) float64 {
	c := 1.0
	for i := 1; i <= k; i++ {
		c = c * float64(n-k+i) / float64(i)
	}
	return c
}

// Verdicts of a size, from the sign test at the 5% level: a side that wins so many rounds that an even chance
// would give it that few times in twenty is faster beyond the noise.
const (
	faster = "parallel faster"
	slower = "parallel slower"
	noise  = "inside the noise"
)

func (r sizeResult) verdict() string {
	won, n := r.won()
	switch {
	case signP(won, n) < 0.05:
		return faster
	case signP(n-won, n) < 0.05:
		return slower
	}
	return noise
}

// writeCompareCPU prints where the CPU went at each size in linear and parallel mode: each process group's
// CPU-seconds (medians over the rounds), and how busy that kept the machine's cores over the run.
func writeCompareCPU(w io.Writer, results []sizeResult) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "rows per file\tmode\tenqueue CPU-s\tworkers CPU-s\tRedis CPU-s\tMariaDB CPU-s\tcores busy\t")
	for _, r := range results {
		for _, m := range []string{"linear", "parallel"} {
			c := r.cpuMedians(m)
			fmt.Fprintf(tw, "%d\t%s\t%.3f\t%.3f\t%.3f\t%.3f\t%.0f%%\t\n", r.rows, m, c.enqueue, c.workers, c.redis, c.mariaDB, 100*c.busy)
		}
	}
	return tw.Flush()
}

// cpuMedians is one mode's CPU at one size, each a median over the rounds; busy is the share of the machine's
// cores that all of them together kept busy during the run.
type cpuMedians struct{ enqueue, workers, redis, mariaDB, busy float64 }

func (r sizeResult) cpuMedians(mode string) cpuMedians {
	runs := r.cpu[mode]
	var workers, busy []float64
	for i, u := range runs {
		total := 0.0
		for _, v := range u {
			total += v
		}
		workers = append(workers, u.workers())
		busy = append(busy, total/(r.times[mode][i]*float64(runtime.NumCPU())))
	}
	return cpuMedians{
		enqueue: medianOf(runs, procEnqueue), workers: medianOr0(workers), redis: medianOf(runs, procRedis),
		mariaDB: medianOf(runs, procMariaDB), busy: medianOr0(busy),
	}
}

// fit is a straight line through one mode's median seconds against rows per file, least squares weighted by the
// inverse square of each median: every size counts by its relative error, so the small sizes, whose times are a
// thousandth of the largest's, still settle the fixed part. perRow is seconds per row per file, fixed is seconds.
type fit struct{ fixed, perRow float64 }

func fitMode(results []sizeResult, mode string) fit {
	var sw, sx, sy, sxx, sxy float64
	for _, r := range results {
		y := r.median(mode)
		if y <= 0 {
			continue
		}
		wt := 1 / (y * y)
		x := float64(r.rows)
		sw, sx, sy, sxx, sxy = sw+wt, sx+wt*x, sy+wt*y, sxx+wt*x*x, sxy+wt*x*y
	}
	d := sw*sxx - sx*sx
	if d == 0 {
		return fit{}
	}
	perRow := (sw*sxy - sx*sy) / d
	return fit{fixed: (sy - perRow*sx) / sw, perRow: perRow}
}

// fitSaving is what switching from linear to parallel saves, as a line: linear's fit less parallel's.
func fitSaving(results []sizeResult) (saving, lin, par fit) {
	lin, par = fitMode(results, "linear"), fitMode(results, "parallel")
	return fit{fixed: lin.fixed - par.fixed, perRow: lin.perRow - par.perRow}, lin, par
}

// verdictLine sums the verdicts up in one line for the command's output.
func verdictLine(results []sizeResult) string {
	parts := make([]string, len(results))
	for i, r := range results {
		parts[i] = fmt.Sprintf("%d: %s", r.rows, r.verdict())
	}
	return "verdicts (sign test over the rounds, 5% level): " + strings.Join(parts, "; ")
}

// recommendation is the decision the measurements support, and the figures it rests on. The decision itself
// names no size unless a size decides it, so that a re-run that moves the figures a little does not change it:
//   - parallel slower beyond the noise at some size: adopt it above the size where the fitted saving turns positive;
//   - never slower beyond the noise, and faster beyond it at the largest size: adopt it for every import;
//   - otherwise the measurements do not support a change.
func recommendation(results []sizeResult) (decision string, evidence []string) {
	last := results[len(results)-1]
	f, lin, par := fitSaving(results)
	perCent := func(x float64) string { return fmt.Sprintf("%.2f s", x*100_000) }
	evidence = append(evidence, fmt.Sprintf("Fitted through the medians at every size: linear takes %s and parallel %s per 100,000 rows per file, so switching saves %s per 100,000 rows per file (fixed parts: linear %.3f s, parallel %.3f s).",
		perCent(lin.perRow), perCent(par.perRow), perCent(f.perRow), lin.fixed, par.fixed))
	var slowerAt []int
	firstFaster := -1
	for i, r := range results {
		switch r.verdict() {
		case slower:
			slowerAt = append(slowerAt, r.rows)
		case faster:
			if firstFaster < 0 {
				firstFaster = i
			}
		default:
			firstFaster = -1
		}
	}
	if firstFaster >= 0 {
		evidence = append(evidence, fmt.Sprintf("Parallel was faster beyond the noise at every size from %s rows per file up; %s.", commas(results[firstFaster].rows), describeNoise(results)))
	} else {
		evidence = append(evidence, sentence(describeNoise(results))+".")
	}
	if f.perRow > 0 {
		evidence = append(evidence, fmt.Sprintf("By the fit, switching saves a second on every file of about %s rows or more.", roundRows((1-f.fixed)/f.perRow)))
	}
	switch {
	case last.verdict() != faster:
		return fmt.Sprintf("Keep the linear import: at %s rows per file, the largest size run, parallel was not faster beyond the noise (%s).", commas(last.rows), last.verdict()), evidence
	case len(slowerAt) > 0 && f.perRow > 0:
		return fmt.Sprintf("Adopt the parallel import for files above about %s rows per file, where the fitted saving turns positive; keep linear below (parallel was slower beyond the noise at %s rows per file).",
			roundRows(-f.fixed/f.perRow), joinInts(slowerAt)), evidence
	}
	return "Adopt the parallel import for every import, whatever the file's size: it was never slower than linear beyond the noise, and it is faster beyond it on large files.", evidence
}

// describeNoise lists the sizes where the two modes' difference is inside the noise, or says there are none.
func describeNoise(results []sizeResult) string {
	var in []int
	for _, r := range results {
		if r.verdict() == noise {
			in = append(in, r.rows)
		}
	}
	if len(in) == 0 {
		return "no size's difference was inside the noise"
	}
	return fmt.Sprintf("the difference was inside the noise at %s rows per file", joinInts(in))
}

// sentence starts a clause with a capital letter.
func sentence(clause string) string {
	if clause == "" {
		return ""
	}
	return strings.ToUpper(clause[:1]) + clause[1:]
}

// roundRows rounds a row count to two significant digits, for a threshold that a fit gives.
func roundRows(x float64) string {
	if x <= 0 || math.IsInf(x, 0) || math.IsNaN(x) {
		return "0"
	}
	p := math.Pow(10, math.Floor(math.Log10(x))-1)
	return commas(int(math.Round(x/p) * p))
}

func joinInts(xs []int) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = commas(x)
	}
	return strings.Join(s, "; ") // a comma would read as a thousands separator
}

// writePlot draws the medians, seconds against rows per file, on log scales, a line per mode.
func writePlot(path string, levels []level, o options) error {
	p := plot.New()
	p.Title.Text = "hpnorton import, end to end (medians)"
	p.X.Label.Text = "rows per file (customers and products each)"
	p.Y.Label.Text = "seconds"
	p.X.Scale, p.Y.Scale = plot.LogScale{}, plot.LogScale{}
	p.X.Tick.Marker, p.Y.Tick.Marker = plot.LogTicks{Prec: -1}, plot.LogTicks{Prec: -1}
	p.Add(plotter.NewGrid())
	names := map[string]string{
		modeLesson5:   "lesson-5 style (a commit per row)",
		"linear":      "linear (1 worker, concurrency 1)",
		"parallel":    fmt.Sprintf("parallel (%d processes × concurrency %d)", o.processes, o.concurrency),
		"mysqlimport": "mysqlimport --local",
	}
	var lines []any
	for i, l := range levels {
		for _, m := range compareModes {
			if i > 0 && m != "parallel" && m != "mysqlimport" {
				continue // the later levels' lines are the two the findings weigh against each other
			}
			var xy plotter.XYs
			for _, r := range l.sizes {
				if y := r.median(m); y > 0 {
					xy = append(xy, plotter.XY{X: float64(r.rows), Y: y})
				}
			}
			if len(xy) > 0 {
				lines = append(lines, names[m]+storedName(l.stored), xy)
			}
		}
	}
	if err := plotutil.AddLinePoints(p, lines...); err != nil {
		return err
	}
	p.Legend.Top, p.Legend.Left = true, true
	return p.Save(7*vg.Inch, 4.5*vg.Inch, path)
}

// storedName says what the tables held, for a plot's legend: nothing for empty tables.
func storedName(stored int) string {
	if stored == 0 {
		return ""
	}
	return fmt.Sprintf(", into %s-row tables", commas(stored))
}
