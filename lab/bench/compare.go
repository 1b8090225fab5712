package main

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/redis/go-redis/v9"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"

	"hpnorton/internal/gen"
)

// sizeResult is one size of a comparison: every time of each mode, in seconds, end to end.
type sizeResult struct {
	rows  int
	times map[string][]float64
}

func (r sizeResult) median(mode string) float64 { return median(r.times[mode]) }

// speedup is linear's median over parallel's: above 1, parallel is faster.
func (r sizeResult) speedup() float64 { return r.median("linear") / r.median("parallel") }

// compare runs linear and parallel mode at each size, in turn within each round, and reports medians, speedups
// and the crossover. Each size's files live only while that size runs.
func compare(ctx context.Context, o options, envs map[string]*modeEnv, stdout io.Writer) ([]sizeResult, error) {
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
		r := sizeResult{rows: rows, times: map[string][]float64{}}
		for round := 1; round <= o.runs; round++ {
			for _, m := range turns([]string{"linear", "parallel"}, round) {
				run, err := alone(envs, m, func() (measure, error) { return envs[m].runOnce(ctx, o, rows, data, fmt.Sprintf("%d_%d", rows, round)) })
				if err != nil {
					return nil, fmt.Errorf("%s at %d rows, round %d: %w", m, rows, round, err)
				}
				r.times[m] = append(r.times[m], run.secs)
			}
		}
		fmt.Fprintf(stdout, "2 × %-9d linear %s   parallel %s\n", rows, showTimes(r.times["linear"]), showTimes(r.times["parallel"]))
		results = append(results, r)
		if err := os.RemoveAll(data); err != nil {
			return nil, err
		}
	}
	fmt.Fprintln(stdout)
	if err := writeTable(stdout, results); err != nil {
		return nil, err
	}
	fmt.Fprintf(stdout, "\n%s\n", crossover(results))
	return results, nil
}

func writeTable(w io.Writer, results []sizeResult) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "rows per file\tlinear median s\tparallel median s\tspeedup\tlinear rows/s\tparallel rows/s\t")
	for _, r := range results {
		fmt.Fprintf(tw, "%d\t%.3f\t%.3f\t%.2f×\t%.0f\t%.0f\t\n", r.rows, r.median("linear"), r.median("parallel"), r.speedup(),
			float64(2*r.rows)/r.median("linear"), float64(2*r.rows)/r.median("parallel"))
	}
	return tw.Flush()
}

// crossover names the smallest size from which parallel mode's median is faster at every larger size too.
func crossover(results []sizeResult) string {
	from := -1
	for i := len(results) - 1; i >= 0 && results[i].speedup() > 1; i-- {
		from = i
	}
	switch {
	case from < 0:
		return "crossover: none; parallel mode was not faster at the largest size"
	case from == 0:
		return fmt.Sprintf("crossover: none within the sizes run; parallel mode was faster at every size, from %d rows per file", results[0].rows)
	}
	return fmt.Sprintf("crossover: parallel mode is faster from %d rows per file on (slower or level at %d)", results[from].rows, results[from-1].rows)
}

// writePlot draws the medians, seconds against rows per file, on log scales.
func writePlot(path string, results []sizeResult, o options) error {
	p := plot.New()
	p.Title.Text = "hpnorton import, end to end (median of " + strconv.Itoa(o.runs) + ")"
	p.X.Label.Text = "rows per file (customers and products each)"
	p.Y.Label.Text = "seconds"
	p.X.Scale, p.Y.Scale = plot.LogScale{}, plot.LogScale{}
	p.X.Tick.Marker, p.Y.Tick.Marker = plot.LogTicks{Prec: -1}, plot.LogTicks{Prec: -1}
	p.Add(plotter.NewGrid())
	line := func(mode string) plotter.XYs {
		xy := make(plotter.XYs, len(results))
		for i, r := range results {
			xy[i].X, xy[i].Y = float64(r.rows), r.median(mode)
		}
		return xy
	}
	parallel := fmt.Sprintf("parallel (%d processes × concurrency %d)", o.processes, o.concurrency)
	if err := plotutil.AddLinePoints(p, "linear (1 worker, concurrency 1)", line("linear"), parallel, line("parallel")); err != nil {
		return err
	}
	p.Legend.Top, p.Legend.Left = true, true
	return p.Save(7*vg.Inch, 4.5*vg.Inch, path)
}

// machine describes what the comparison ran on, from the servers themselves.
func machine(ctx context.Context, o options) string {
	mariadb, redisVersion := "?", "?"
	if db, err := sql.Open("mysql", o.mysqlDSN); err == nil {
		_ = db.QueryRowContext(ctx, "SELECT VERSION()").Scan(&mariadb)
		db.Close()
	}
	if opt, err := redis.ParseURL(o.redisURL); err == nil {
		rdb := redis.NewClient(opt)
		if info, err := rdb.Info(ctx, "server").Result(); err == nil {
			for line := range strings.Lines(info) {
				if v, ok := strings.CutPrefix(strings.TrimSpace(line), "redis_version:"); ok {
					redisVersion = v
				}
			}
		}
		rdb.Close()
	}
	return fmt.Sprintf("%d cores (shared, noisy), %s/%s, %s, MySQL server %s, Redis %s", runtime.NumCPU(), runtime.GOOS, runtime.GOARCH,
		runtime.Version(), mariadb, redisVersion)
}

// writeFindings regenerates findings.txt from the comparison just run. The profile's summary is read from the
// committed pprof text under docs/, which `make profile` regenerates.
func writeFindings(ctx context.Context, path string, results []sizeResult, o options, command string) error {
	var b strings.Builder
	last := results[len(results)-1]
	fmt.Fprintf(&b, "hpnorton findings: parallel against linear import\n")
	fmt.Fprintf(&b, "Written by `%s` on %s. Every figure below comes from that run.\n\n", command, time.Now().UTC().Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(&b, "Machine\n- %s.\n", machine(ctx, o))
	fmt.Fprintf(&b, "- Linear: one worker process at concurrency 1. Parallel: %d worker processes at concurrency %d.\n", o.processes, o.concurrency)
	fmt.Fprintf(&b, "- End to end: from starting `enqueue` to its printed tuples, workers already running, fresh tables each run;\n")
	fmt.Fprintf(&b, "  %d rounds, the modes taking turns; medians.\n\n", o.runs)

	fmt.Fprintf(&b, "Measured\n")
	var table strings.Builder
	if err := writeTable(&table, results); err != nil {
		return err
	}
	for line := range strings.Lines(table.String()) {
		b.WriteString("  " + line)
	}
	fmt.Fprintf(&b, "- C%s.\n", strings.TrimPrefix(crossover(results), "c"))
	fmt.Fprintf(&b, "- The plot: docs/compare.png.\n\n")

	fmt.Fprintf(&b, "Where the time goes (the pprof text under docs/, from `make profile`)\n")
	for _, f := range []string{"docs/profile-linear-300k.txt", "docs/profile-linear-sample.txt", "docs/profile-lesson5.txt"} {
		top, err := profileTop(f, 6)
		if err != nil {
			fmt.Fprintf(&b, "- %s: not there (%v)\n", f, err)
			continue
		}
		fmt.Fprintf(&b, "- %s; the heaviest of our functions by cumulative CPU:\n%s", f, top)
	}
	fmt.Fprintf(&b, "- Total samples against Duration is how busy the Go side was: the rest of the wall time is spent waiting\n")
	fmt.Fprintf(&b, "  on MySQL (and in the lesson-5 style, on one commit per row). CSV parsing and validation lead the Go side.\n\n")

	fmt.Fprintf(&b, "Recommendation\n")
	// Worth adopting where parallel is clearly faster and saves a wait a person notices; below half a second the
	// medians of small runs mostly measure the machine's noise.
	worth := slices.IndexFunc(results, func(r sizeResult) bool {
		return r.speedup() >= 1.2 && r.median("linear")-r.median("parallel") >= 0.5
	})
	switch {
	case worth >= 0 && last.speedup() >= 1.2:
		w := results[worth]
		fmt.Fprintf(&b, "- Adopt the parallel import for files of %d rows or more, on the same 2-core machine: no new hardware.\n", w.rows)
		fmt.Fprintf(&b, "  At %d rows per file it took %.2f s against %.2f s, %.2f× faster, saving %.1f s per import.\n",
			last.rows, last.median("parallel"), last.median("linear"), last.speedup(), last.median("linear")-last.median("parallel"))
		if worth > 0 {
			small := results[worth-1]
			fmt.Fprintf(&b, "- Below that the saving is under half a second: at %d rows per file, %.3f s against %.3f s.\n",
				small.rows, small.median("parallel"), small.median("linear"))
		}
	case last.speedup() > 1:
		fmt.Fprintf(&b, "- Parallel import is faster at %d rows per file, %.2f×, but by little; adopt it only where the wait matters.\n", last.rows, last.speedup())
	default:
		fmt.Fprintf(&b, "- Do not adopt parallel import for speed: at %d rows per file it was not faster (%.2f×).\n", last.rows, last.speedup())
	}
	fmt.Fprintf(&b, "- Conditions: the speedup comes from overlapping the workers' parsing with the database's writing, so it is\n")
	fmt.Fprintf(&b, "  bounded by the database host's cores; more worker processes than that buy nothing, a bigger database host does.\n")
	fmt.Fprintf(&b, "- Either mode gives the same results and rows (tested), and a run survives a worker's crash with exact results.\n")
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

// profileTop returns, from a `go tool pprof -top -cum` text, its duration line and its first n lines that name a
// function of this project, the database driver, Redis or asynq, rather than the runtime or the test harness. Of a
// chain of callers with the same cumulative time, it keeps the last, where the time is spent.
func profileTop(path string, n int) (string, error) {
	text, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	var out, pending strings.Builder
	lastCum := ""
	for line := range strings.Lines(string(text)) {
		line = strings.TrimSpace(line)
		fields := strings.Fields(line)
		switch {
		case strings.HasPrefix(line, "Duration:"):
			out.WriteString("    " + line + "\n")
		case n > 0 && len(fields) >= 6 && slices.ContainsFunc([]string{"hpnorton/", "github.com/", "encoding/csv", "database/sql"},
			func(p string) bool { return strings.HasPrefix(fields[5], p) }):
			if fields[3] != lastCum && pending.Len() > 0 {
				out.WriteString(pending.String())
				n--
			}
			pending.Reset()
			if n > 0 {
				pending.WriteString("    " + line + "\n")
			}
			lastCum = fields[3]
		}
	}
	if n > 0 {
		out.WriteString(pending.String())
	}
	return out.String(), nil
}
