// Command eta measures how honest the progress bars' "left" figure is, on real runs: it generates two files,
// starts worker processes, and runs the import in this process with a progress hook that gives every report to
// the bars' estimator (package eta) and to the estimate the bars used before it (the time so far × rows left /
// rows done). Once a run is done, the real time left at each report is known, and each estimate from the file's
// 10% mark on is compared with it. It prints the estimates at each tenth of the file and the worst errors.
//
// Its database, queue and Redis keys are its own and go when it ends.
package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"hpnorton/internal/cli"
	"hpnorton/internal/coordinator"
	"hpnorton/internal/eta"
	"hpnorton/internal/gen"
	"hpnorton/internal/ledger"
	"hpnorton/internal/record"
	"hpnorton/lab/labdb"
	"hpnorton/repo"
	"hpnorton/tasks"
)

const synopsis = "eta [flags]"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("eta", flag.ContinueOnError)
	err := cli.Guard(func() error { return measure(ctx, fs, args, stdout) })
	return cli.Exit(ctx, stdout, stderr, fs, synopsis, err)
}

type options struct {
	rows, runs, processes, concurrency, chunkRows int
	bin, redisURL, mysqlDSN, prefix, trace        string
}

func measure(ctx context.Context, fs *flag.FlagSet, args []string, stdout io.Writer) (err error) {
	var o options
	fs.IntVar(&o.rows, "rows", 1_000_000, "records per file")
	fs.IntVar(&o.runs, "runs", 1, "runs, one after the other")
	fs.IntVar(&o.processes, "processes", 1, "worker processes")
	fs.IntVar(&o.concurrency, "concurrency", 4, "concurrency of each worker process; 1 with one process is linear mode")
	fs.IntVar(&o.chunkRows, "chunk-rows", coordinator.DefaultChunkRows, "records per task")
	fs.StringVar(&o.bin, "bin", "bin", "folder holding the worker binary")
	fs.StringVar(&o.redisURL, "redis", cmp.Or(os.Getenv("HPNORTON_REDIS_URL"), cli.DefaultRedisURL), "Redis `URL`")
	fs.StringVar(&o.mysqlDSN, "mysql", "root@tcp(127.0.0.1:3306)/", "MySQL server `DSN`; the command makes a database of its own on it")
	fs.StringVar(&o.prefix, "prefix", "hpnorton_eta_"+strconv.FormatInt(time.Now().UnixNano(), 36), "names the database, queue and run IDs the command makes")
	fs.StringVar(&o.trace, "trace", "", "also write every progress report to this `file`, a JSON object a line, to study estimators on")
	replayFile := fs.String("replay", "", "run nothing: give the reports of a `file` that --trace wrote to today's estimator, and print its errors")
	if err := cli.Parse(fs, args); err != nil {
		return err
	}
	if *replayFile != "" {
		return replay(*replayFile, stdout)
	}
	if o.rows < 1 || o.runs < 1 || o.processes < 1 || o.concurrency < 1 || o.chunkRows < 1 || o.rows > gen.MaxRows {
		return &cli.UsageError{Msg: fmt.Sprintf("--rows (at most %d), --runs, --processes, --concurrency and --chunk-rows must be at least 1", gen.MaxRows)}
	}
	cfg, err := mysql.ParseDSN(o.mysqlDSN)
	if err != nil {
		return &cli.UsageError{Msg: "--mysql cannot be parsed"}
	}
	cfg.DBName = o.prefix
	dsn := cfg.FormatDSN()

	data, err := os.MkdirTemp("", "hpnorton-eta-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(data)
	if err := gen.WriteDir(data, o.rows, gen.Options{}); err != nil {
		return err
	}
	rdb, err := cli.OpenRedis(ctx, o.redisURL)
	if err != nil {
		return err
	}
	defer rdb.Close()
	defer func() { err = errors.Join(err, removeKeys(context.WithoutCancel(ctx), rdb, o.prefix)) }()
	db, err := repo.Open(ctx, dsn) // makes the database and its schema
	if err != nil {
		return err
	}
	defer db.Close()
	lab, err := labdb.Open(dsn)
	if err != nil {
		return err
	}
	defer lab.Close()
	defer func() { err = errors.Join(err, labdb.Drop(context.WithoutCancel(ctx), lab)) }()
	client := asynq.NewClientFromRedisClient(rdb)
	defer client.Close()
	inspector := asynq.NewInspectorFromRedisClient(rdb)
	defer inspector.Close()
	defer func() {
		if err2 := inspector.DeleteQueue(tasks.QueueFor(o.prefix, db.ID), true); err2 != nil && !errors.Is(err2, asynq.ErrQueueNotFound) {
			err = errors.Join(err, err2)
		}
	}()
	stopWorkers, err := startWorkers(o, dsn)
	if err != nil {
		return err
	}
	defer stopWorkers()
	var trace io.Writer = io.Discard
	if o.trace != "" {
		f, err := os.Create(o.trace)
		if err != nil {
			return err
		}
		defer func() { err = errors.Join(err, f.Close()) }()
		trace = f
	}
	deps := coordinator.Deps{Repo: db, Ledger: ledger.New(rdb), Client: client, Inspector: inspector}

	fmt.Fprintf(stdout, "eta: 2 × %d rows, %d worker process(es) × %d, chunks of %d rows; the bars' estimate (eta) and the one before it (whole run), against the real time left\n\n",
		o.rows, o.processes, o.concurrency, o.chunkRows)
	for r := 1; r <= o.runs; r++ {
		if err := labdb.Reset(ctx, lab); err != nil {
			return err
		}
		if _, err := labdb.Settle(ctx, lab, o.prefix, 30*time.Second); err != nil {
			return err
		}
		rec := &recording{start: time.Now()}
		_, err := coordinator.Run(ctx, deps, coordinator.Config{Dir: data, RunID: o.prefix + "_r" + strconv.Itoa(r), Queue: o.prefix,
			ChunkRows: o.chunkRows, KeepResults: time.Hour, Progress: rec.observe})
		if err != nil {
			return fmt.Errorf("run %d: %w", r, err)
		}
		if err := rec.print(stdout, r); err != nil {
			return err
		}
		if err := rec.write(trace, r); err != nil {
			return err
		}
	}
	return nil
}

// startWorkers starts o's worker processes on the database of dsn, and returns what stops them.
func startWorkers(o options, dsn string) (func(), error) {
	var workers []*exec.Cmd
	stop := func() {
		for _, w := range workers {
			_ = w.Process.Signal(syscall.SIGTERM)
			_ = w.Wait()
		}
	}
	for i := range o.processes {
		w := exec.Command(filepath.Join(o.bin, "worker"), "--redis", o.redisURL, "--mysql", dsn, "--queue", o.prefix,
			"--concurrency", strconv.Itoa(o.concurrency))
		w.Stderr = io.Discard
		if err := w.Start(); err != nil {
			stop()
			return nil, fmt.Errorf("start worker %d: %w", i+1, err)
		}
		workers = append(workers, w)
	}
	return stop, nil
}

// recording is one run's progress reports, with both estimates of each file's time left at each.
type recording struct {
	start   time.Time
	est     eta.Estimator
	reports []report
}

type report struct {
	at       time.Duration // from the start of the run
	files    []coordinator.FileProgress
	now, old []eta.Left // the bars' estimate, and the whole-run one the bars gave before it
}

// observe is the run's Config.Progress.
func (r *recording) observe(files []coordinator.FileProgress) { r.observeAt(time.Now(), files) }

// observeAt takes a report made at now, on a real run or replayed from a trace.
func (r *recording) observeAt(now time.Time, files []coordinator.FileProgress) {
	in := make([]eta.File, len(files))
	old := make([]eta.Left, len(files))
	el := now.Sub(r.start)
	for i, f := range files {
		in[i] = f.ETA() // as the bars give it
		rows, total := in[i].Rows, in[i].Total
		if rows > 0 && total > rows {
			old[i] = eta.Left{D: time.Duration(float64(el) * float64(total-rows) / float64(rows)), Known: true}
		}
	}
	r.reports = append(r.reports, report{at: el, files: files, now: r.est.Observe(now, in), old: old})
}

// print gives, for each file, the estimates at each tenth of its rows and the worst errors from its 10% mark on.
func (r *recording) print(w io.Writer, run int) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "run %d\tfile\tdone\tat s\treal left s\teta s\terror\twhole-run s\terror\t\n", run)
	var summary []string
	for i, k := range record.Kinds {
		var doneAt time.Duration
		var total int64
		for _, rp := range r.reports {
			if rp.files[i].Done {
				doneAt, total = rp.at, rp.files[i].Rows
				break
			}
		}
		if total == 0 {
			return fmt.Errorf("%s: no report shows it done", k)
		}
		var worst, worstOld, worstLong errs
		tenth := int64(1)
		for _, rp := range r.reports {
			f := rp.files[i]
			rows := f.ETA().Rows // as the bars show them
			if f.Done || rows*10 < total {
				continue
			}
			real := (doneAt - rp.at).Seconds()
			e, eOld := worst.add(rp.now[i], real), worstOld.add(rp.old[i], real)
			if real >= 1 {
				worstLong.add(rp.now[i], real)
			}
			if rows*10 >= tenth*total {
				fmt.Fprintf(tw, "\t%s\t%d%%\t%.2f\t%.2f\t%s\t%s\t%s\t%s\t\n", k, rows*100/total, rp.at.Seconds(), real,
					secs(rp.now[i]), e, secs(rp.old[i]), eOld)
				for rows*10 >= tenth*total {
					tenth++
				}
			}
		}
		summary = append(summary, fmt.Sprintf("run %d %s: done at %.2f s; from the 10%% mark, %d estimates: eta's worst error %s; where 1 s or more was left, %s; %s; the whole-run estimate's worst %s, %s (+ is too long, − too short)",
			run, k, doneAt.Seconds(), worst.n, worst.worstString(), worstLong.worstString(), worst.withinString(), worstOld.worstString(), worstOld.withinString()))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w, strings.Join(summary, "\n"))
	fmt.Fprintln(w)
	return nil
}

// write gives each report of the run as a line of JSON: the run, the instant in seconds from its start, and each
// file's progress.
func (r *recording) write(w io.Writer, run int) error {
	enc := json.NewEncoder(w)
	for _, rp := range r.reports {
		if err := enc.Encode(struct {
			Run   int                        `json:"run"`
			At    float64                    `json:"at"`
			Files []coordinator.FileProgress `json:"files"`
		}{run, rp.at.Seconds(), rp.files}); err != nil {
			return err
		}
	}
	return nil
}

// errs keeps the worst of a file's errors: the estimate less the real time left, over the real time left.
type errs struct {
	n       int
	worst   float64
	unknown int
	// within counts the estimates within ±25% of the real time left; tenth those off by more, but by no more
	// than the bars show under ten seconds, a tenth of a second (0.05 s either way).
	within, tenth int
}

// add counts one estimate against the real time left, and returns its error as printed.
func (e *errs) add(l eta.Left, real float64) string {
	e.n++
	if !l.Known {
		e.unknown++
		return "?"
	}
	v := (l.D.Seconds() - real) / math.Max(real, 1e-3)
	switch {
	case math.Abs(v) <= 0.25:
		e.within++
	case math.Abs(l.D.Seconds()-real) <= 0.05:
		e.tenth++
	}
	if math.Abs(v) > math.Abs(e.worst) {
		e.worst = v
	}
	return fmt.Sprintf("%+.0f%%", 100*v)
}

func (e *errs) worstString() string {
	if e.n == e.unknown {
		return fmt.Sprintf("none known of %d", e.n)
	}
	s := fmt.Sprintf("%+.0f%%", 100*e.worst)
	if e.unknown > 0 {
		s += fmt.Sprintf(", %d unknown", e.unknown)
	}
	return s
}

// withinString says how many estimates were within ±25%, and how many more within the bars' tenth of a second.
func (e *errs) withinString() string {
	return fmt.Sprintf("%d of %d within ±25%% (%d more within the tenth of a second the bars show)", e.within, e.n, e.tenth)
}

func secs(l eta.Left) string {
	if !l.Known {
		return "?"
	}
	return fmt.Sprintf("%.2f", l.D.Seconds())
}

// removeKeys deletes every Redis key that holds the prefix: the runs' ledgers and results keys.
func removeKeys(ctx context.Context, rdb *redis.Client, prefix string) error {
	iter := rdb.Scan(ctx, 0, "*"+prefix+"*", 1000).Iterator()
	for iter.Next(ctx) {
		if err := rdb.Del(ctx, iter.Val()).Err(); err != nil {
			return err
		}
	}
	return iter.Err()
}
