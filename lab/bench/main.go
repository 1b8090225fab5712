// Command bench times whole imports end to end, from starting the enqueue command to its printed tuples, with the
// workers already running: linear mode (one worker process at concurrency 1), parallel mode (worker processes at
// the chosen concurrency) and MariaDB's own bulk loader, mysqlimport --local, on the same files and the same keyed
// tables. The modes take turns within each round, so that a noisy neighbour slows them alike, and the command prints
// each time, the medians, the ratios and the peak memory of every process.
//
// It runs the binaries of cmd/enqueue and cmd/worker from --bin; `make bench-e2e` builds them first.
package main

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
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
	"hpnorton/internal/gen"
	"hpnorton/internal/ledger"
	"hpnorton/internal/record"
	"hpnorton/lab/labdb"
	"hpnorton/lab/lesson5"
	"hpnorton/repo"
	"hpnorton/tasks"
)

const synopsis = "bench [flags]"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	err := cli.Guard(func() error { return bench(ctx, fs, args, stdout) })
	return cli.Exit(ctx, stdout, stderr, fs, synopsis, err)
}

// options are the command's flags.
type options struct {
	rows, runs, concurrency, processes, chunkRows int
	// stored is the rows each table holds before every import: filler rows that no file holds. A comparison
	// runs at each of storedLevels in turn, the first of which the databases are made with; a bench runs at one.
	stored       int
	storedLevels []int
	// gen shapes the generated files: RepeatEvery repeats keys.
	gen gen.Options
	// changeEvery is how often the update modes' second files change a record.
	changeEvery                            int
	bin, redisURL, mysqlDSN, modes, prefix string
	// before, when set, holds the binaries of an earlier version: each import mode also runs with them, in turn
	// with this version's, as "mode@before".
	before string
	// sizes, when set, makes the run a comparison of linear and parallel mode at each size; plot and findings
	// are where it writes its PNG and findings.txt.
	sizes          []int
	plot, findings string
}

func bench(ctx context.Context, fs *flag.FlagSet, args []string, stdout io.Writer) error {
	var o options
	fs.IntVar(&o.rows, "rows", 300_000, "records per file")
	fs.IntVar(&o.runs, "runs", 3, "rounds; each mode runs once per round, in turn")
	fs.IntVar(&o.concurrency, "concurrency", 4, "parallel mode's concurrency per worker process")
	fs.IntVar(&o.processes, "processes", 1, "parallel mode's worker processes")
	fs.IntVar(&o.chunkRows, "chunk-rows", coordinator.DefaultChunkRows, "records per task")
	stored := fs.String("stored", "0", "`rows` each table already holds before every import, as production tables do: filler rows that no file holds, made once in each mode's database; with --sizes, a comma-separated list, rising, to compare at each")
	fs.StringVar(&o.modes, "modes", "linear,parallel,mysqlimport,mysqlimport-threads", "comma-separated modes to run, in turn: linear, parallel, reimport (parallel, timing a second import of files already stored), update (parallel with --update, timing an import of the same rows with every --change-every-th changed, over the rows first stored), mysqlimport (both files on one connection), mysqlimport-threads (--use-threads=2, a file per connection), mysqlimport-replace (mysqlimport --replace of the changed rows over the rows first stored) and lesson5 (the original program's way: one autocommitted INSERT a row)")
	fs.IntVar(&o.changeEvery, "change-every", 10, "the update modes change every `N`th record's name or description (2 or more)")
	fs.IntVar(&o.gen.RepeatEvery, "repeat-every", 0, "give every `N`th record (3 or more) the key of an earlier one: 10 repeats 10% of keys; 0 repeats none")
	fs.StringVar(&o.bin, "bin", "bin", "folder holding the enqueue and worker binaries")
	fs.StringVar(&o.before, "before", "", "folder holding an earlier version's binaries; each import mode also runs with them, in turn, as mode@before")
	fs.StringVar(&o.redisURL, "redis", cmp.Or(os.Getenv("HPNORTON_REDIS_URL"), cli.DefaultRedisURL), "Redis `URL`")
	fs.StringVar(&o.mysqlDSN, "mysql", "root@tcp(127.0.0.1:3306)/", "MySQL server `DSN`; each mode gets a database of its own on it")
	fs.StringVar(&o.prefix, "prefix", "hpnorton_bench_"+strconv.FormatInt(time.Now().UnixNano(), 36), "names the databases, queues and run IDs the bench makes")
	sizes := fs.String("sizes", "", "compare linear and parallel mode at each of these comma-separated `rows` per file, instead of one size")
	fs.StringVar(&o.plot, "plot", "", "with --sizes, write the plot of seconds against rows to this PNG `file`")
	fs.StringVar(&o.findings, "findings", "", "with --sizes, regenerate this findings `file` from the comparison")
	if err := cli.Parse(fs, args); err != nil {
		return err
	}
	var err error
	if o.sizes, err = parseRows("--sizes", *sizes, 1); err != nil {
		return err
	}
	if o.storedLevels, err = parseRows("--stored", *stored, 0); err != nil {
		return err
	}
	switch {
	case len(o.storedLevels) == 0:
		o.storedLevels = []int{0}
	case len(o.storedLevels) > 1 && len(o.sizes) == 0:
		return &cli.UsageError{Msg: "--stored takes a list only with --sizes"}
	case !slices.IsSorted(o.storedLevels) || len(slices.Compact(slices.Clone(o.storedLevels))) < len(o.storedLevels):
		return &cli.UsageError{Msg: "--stored: the row counts must rise, as each is filled on top of the one before"}
	}
	o.stored = o.storedLevels[0]
	if len(o.sizes) > 0 {
		o.modes = "linear,parallel,mysqlimport,lesson5"
	}
	if o.gen.RepeatEvery != 0 && o.gen.RepeatEvery < 3 {
		return &cli.UsageError{Msg: fmt.Sprintf("--repeat-every must be 0 or at least 3, got %d", o.gen.RepeatEvery)}
	}
	if o.changeEvery < 2 {
		return &cli.UsageError{Msg: fmt.Sprintf("--change-every must be at least 2, got %d", o.changeEvery)}
	}
	if o.rows < 1 || o.runs < 1 || o.concurrency < 1 || o.processes < 1 {
		return &cli.UsageError{Msg: "--rows, --runs, --concurrency and --processes must be at least 1"}
	}
	if o.rows > gen.MaxRows || slices.Max(append([]int{0}, o.sizes...)) > gen.MaxRows {
		return &cli.UsageError{Msg: fmt.Sprintf("--rows and --sizes must be at most %d", gen.MaxRows)}
	}
	var modes []string
	for _, m := range strings.Split(o.modes, ",") {
		if !slices.Contains([]string{"linear", "parallel", "reimport", "update", "mysqlimport", "mysqlimport-threads", "mysqlimport-replace", modeLesson5}, m) {
			return &cli.UsageError{Msg: fmt.Sprintf("unknown mode %q", m)}
		}
		modes = append(modes, m)
		if o.before != "" && !isLoader(m) {
			modes = append(modes, m+beforeSuffix)
		}
	}

	if err := checkDisk(ctx, o, len(modes)); err != nil {
		return err
	}
	envs := map[string]*modeEnv{}
	for _, m := range modes {
		e, err := newModeEnv(ctx, o, m, o.prefix+"_"+strings.ReplaceAll(m, "@", "_"))
		if err != nil {
			return err
		}
		defer e.close(o.redisURL)
		envs[m] = e
	}

	time.Sleep(time.Second) // the workers connect and start polling: they are "already running" when timing starts

	if len(o.sizes) > 0 {
		fmt.Fprintf(stdout, "compare: linear (1 process × 1), parallel (%d process(es) × %d), mysqlimport --local and, up to %d rows per file, the lesson-5 style, in turn; %d rounds, %d× that under %d rows per file; chunks of %d rows\n\n",
			o.processes, o.concurrency, lesson5Max, o.runs, smallFactor, smallBelow, o.chunkRows)
		levels, err := compare(ctx, o, envs, stdout)
		if err != nil {
			return err
		}
		if o.plot != "" {
			if err := writePlot(o.plot, levels, o); err != nil {
				return fmt.Errorf("--plot: %w", err)
			}
			fmt.Fprintf(stdout, "wrote %s\n", o.plot)
		}
		if o.findings != "" {
			if err := writeFindings(ctx, o.findings, levels, o, "bench "+strings.Join(args, " ")); err != nil {
				return fmt.Errorf("--findings: %w", err)
			}
			fmt.Fprintf(stdout, "wrote %s\n", o.findings)
		}
		return nil
	}

	data, err := os.MkdirTemp("", "hpnorton-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(data)
	if err := gen.WriteDir(data, o.rows, o.gen); err != nil {
		return err
	}
	// The update modes' second files: the same rows, every changeEvery-th changed, in a folder beside data's.
	if err := gen.WriteDir(changedDir(data), o.rows, gen.Options{RepeatEvery: o.gen.RepeatEvery, ChangeEvery: o.changeEvery}); err != nil {
		return err
	}
	defer os.RemoveAll(changedDir(data))
	fmt.Fprintf(stdout, "bench: 2 × %d rows (%d distinct keys each), %d round(s), modes in turn: %s; every mode of ours but linear = %d worker process(es) at concurrency %d; chunks of %d rows\n\n",
		o.rows, gen.Distinct(o.rows, o.gen), o.runs, strings.Join(modes, ", "), o.processes, o.concurrency, o.chunkRows)

	times, use := map[string][]float64{}, map[string][]cpuUse{}
	for round := 1; round <= o.runs; round++ {
		for _, m := range turns(modes, round) {
			r, err := alone(envs, m, func() (measure, error) { return envs[m].runOnce(ctx, o, o.rows, data, strconv.Itoa(round)) })
			if err != nil {
				return fmt.Errorf("%s, round %d: %w", m, round, err)
			}
			times[m], use[m] = append(times[m], r.secs), append(use[m], r.cpu)
			fmt.Fprintf(stdout, "round %d  %-19s %8.3f s  %9.0f rows/s  ours %5.2f CPU-s  MariaDB %5.2f CPU-s\n",
				round, m, r.secs, float64(2*o.rows)/r.secs, r.cpu.ours(), r.cpu[procMariaDB])
		}
	}

	fmt.Fprintln(stdout)
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "mode\tworkers\tmedian s\trows/s\truns\tpeak RSS")
	med := map[string]float64{}
	for _, m := range modes {
		med[m] = median(times[m])
		fmt.Fprintf(tw, "%s\t%s\t%.3f\t%.0f\t%s\t%s\n", m, envs[m].workerShape(), med[m], float64(2*o.rows)/med[m], showTimes(times[m]), envs[m].peakRSS())
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(stdout)
	if err := writeCPU(stdout, modes, use, o.rows); err != nil {
		return err
	}
	fmt.Fprintln(stdout)
	// Each ratio is given twice: of the medians over all rounds, and as the median of the rounds' own ratios. On
	// a shared machine a slow stretch slows every mode that runs in it; the modes of one round run back to back,
	// so a round's own ratio carries less of it.
	for _, other := range []string{"linear", "mysqlimport", "mysqlimport-threads"} {
		slow, fast := med[other], med["parallel"]
		if slow > 0 && fast > 0 {
			fmt.Fprintf(stdout, "parallel vs %s: %.2f× faster (median %s s / median parallel s)%s\n", other, slow/fast, other, byRound(times[other], times["parallel"]))
		}
	}
	for _, other := range []string{"mysqlimport", "mysqlimport-threads"} {
		ours, theirs := medianOf(use["parallel"], procMariaDB), medianOf(use[other], procMariaDB)
		if ours > 0 && theirs > 0 {
			fmt.Fprintf(stdout, "MariaDB CPU, parallel vs %s: %.2f× (median CPU-s for parallel / for %s)%s\n", other, ours/theirs, other,
				byRound(mariaDB(use["parallel"]), mariaDB(use[other])))
		}
	}
	for _, v := range []string{"", beforeSuffix} {
		for _, m := range []string{"reimport", "update"} {
			if re, fresh := med[m+v], med["parallel"+v]; re > 0 && fresh > 0 {
				fmt.Fprintf(stdout, "%s%s vs parallel%s: %.2f× the time of a fresh import (median %s / median parallel)%s\n", m, v, v, re/fresh, m, byRound(times[m+v], times["parallel"+v]))
			}
		}
	}
	if up, re := med["update"], med["mysqlimport-replace"]; up > 0 && re > 0 {
		fmt.Fprintf(stdout, "update vs mysqlimport-replace: %.2f× the time of mysqlimport --replace (median update s / median mysqlimport-replace s)%s\n", up/re, byRound(times["update"], times["mysqlimport-replace"]))
	}
	for _, m := range modes {
		if now, then := med[strings.TrimSuffix(m, beforeSuffix)], med[m]; strings.HasSuffix(m, beforeSuffix) && now > 0 && then > 0 {
			fmt.Fprintf(stdout, "%s now vs before: %.2f× the time (median now / median before)\n", strings.TrimSuffix(m, beforeSuffix), now/then)
		}
	}
	return nil
}

// turns is the order of the modes in a round: as given in odd rounds, reversed in even ones. A run may pay for
// some of what the run before it left behind. In a fixed order, linear mode took 1.66× the time when it ran after
// an earlier version's linear mode than when it ran before it, whichever version it was; each mode always followed
// the same one. (Most of that was the earlier run's pages, which Settle now writes before each run.) Reversing
// every other round lets each pair of neighbours run in both orders, and each mode run both early and late.
func turns(modes []string, round int) []string {
	t := slices.Clone(modes)
	if round%2 == 0 {
		slices.Reverse(t)
	}
	return t
}

// beforeSuffix marks a mode that runs the earlier version's binaries (--before).
const beforeSuffix = "@before"

// modeEnv is one mode's database and, for the import modes, its running workers.
type modeEnv struct {
	mode    string
	bin     string // the folder of the enqueue and worker binaries it runs
	db      *repo.DB
	lab     *sql.DB // the lab's own SQL: emptying, settling and dropping the database
	cfg     *mysql.Config
	queue   string
	workers []*exec.Cmd
	// logs hold each worker's standard error, and exited closes once it has exited (its Wait returned).
	logs   []string
	exited []chan struct{}
	// concurrency is each worker's.
	concurrency int
	// enqueueRSS is the enqueue command's largest peak RSS over the runs, in KiB.
	enqueueRSS int64
}

// fill adds n filler rows to each table, and counts the tables as a run would.
func (e *modeEnv) fill(ctx context.Context, mode string, n int) error {
	for _, k := range record.Kinds {
		if err := labdb.Prefill(ctx, e.lab, k.Table(), n); err != nil {
			return err
		}
	}
	// The first count of a large table starts keeping its count, with one COUNT(*): a user's first run after the
	// upgrade pays it once, and no timed run should.
	if isLoader(mode) || strings.HasSuffix(mode, beforeSuffix) {
		return nil
	}
	for _, k := range record.Kinds {
		if _, err := e.db.Count(ctx, k); err != nil {
			return err
		}
	}
	return nil
}

func newModeEnv(ctx context.Context, o options, mode, name string) (*modeEnv, error) {
	cfg, err := mysql.ParseDSN(o.mysqlDSN)
	if err != nil {
		return nil, errors.New("--mysql cannot be parsed")
	}
	cfg.DBName = name
	e := &modeEnv{mode: strings.TrimSuffix(mode, beforeSuffix), cfg: cfg, queue: name, bin: o.bin}
	if strings.HasSuffix(mode, beforeSuffix) {
		e.bin = o.before
	}
	// Open creates the database and the schema, as the commands do for a user.
	if e.db, err = repo.Open(ctx, cfg.FormatDSN()); err != nil {
		return nil, err
	}
	if e.lab, err = labdb.Open(cfg.FormatDSN()); err != nil {
		e.close(o.redisURL)
		return nil, err
	}
	// mysqlimport and an earlier version ran without repo's counting triggers, which would count every row of
	// theirs as another program's.
	if isLoader(mode) || strings.HasSuffix(mode, beforeSuffix) {
		if err := labdb.DropCountTriggers(ctx, e.lab); err != nil {
			e.close(o.redisURL)
			return nil, err
		}
	}
	if err := e.fill(ctx, mode, o.stored); err != nil {
		e.close(o.redisURL)
		return nil, err
	}
	if isLoader(mode) {
		return e, nil
	}
	// Parallel and reimport run o's workers; linear mode, an earlier version's too, one worker at concurrency 1.
	processes, concurrency := o.processes, o.concurrency
	if e.mode == "linear" {
		processes, concurrency = 1, 1
	}
	e.concurrency = concurrency
	for i := range processes {
		w := exec.Command(filepath.Join(e.bin, "worker"), "--redis", o.redisURL, "--mysql", cfg.FormatDSN(),
			"--queue", e.queue, "--concurrency", strconv.Itoa(concurrency))
		log, err := os.CreateTemp("", "hpnorton-bench-"+e.mode+"-worker-*.log")
		if err != nil {
			e.close(o.redisURL)
			return nil, err
		}
		w.Stderr = log // the worker writes to the file itself; the bench's copy closes after Start
		err = w.Start()
		log.Close()
		if err != nil {
			os.Remove(log.Name())
			e.close(o.redisURL)
			return nil, fmt.Errorf("start worker %d: %w", i, err)
		}
		exited := make(chan struct{})
		go func() { _ = w.Wait(); close(exited) }()
		e.workers, e.logs, e.exited = append(e.workers, w), append(e.logs, log.Name()), append(e.exited, exited)
	}
	return e, nil
}

// errWorkerLost: a worker exited during a run; its log is kept.
var errWorkerLost = errors.New("a worker exited during the run")

// workerLost names the first of the mode's workers that has exited, with its log, or returns nil.
func (e *modeEnv) workerLost() error {
	for i, done := range e.exited {
		select {
		case <-done:
			return fmt.Errorf("%w: worker %d of %s (pid %d), %s; its standard error is in %s", errWorkerLost, i+1, e.mode,
				e.workers[i].Process.Pid, e.workers[i].ProcessState, e.logs[i])
		default:
		}
	}
	return nil
}

// whileWorkersLive returns a context that ends when one of the mode's workers exits, so that a run's command is
// killed rather than left waiting out its timeout for a worker that is gone, and what releases it.
func (e *modeEnv) whileWorkersLive(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	for _, exited := range e.exited {
		go func() {
			select {
			case <-exited:
				cancel()
			case <-ctx.Done():
			}
		}()
	}
	return ctx, cancel
}

// alone runs one mode's import with every other mode's workers stopped (SIGSTOP), and continues them after. An
// idle worker looks for tasks every --poll (an earlier version's, run by -before, every 20 ms), and Redis's answers
// to the other modes' workers would otherwise be charged to the mode that runs: with six modes of that earlier
// version, about 0.02 CPU-seconds of Redis a second.
func alone(envs map[string]*modeEnv, mode string, run func() (measure, error)) (measure, error) {
	var stopped []*os.Process
	for m, e := range envs {
		for _, w := range e.workers {
			if m != mode && w.Process.Signal(syscall.SIGSTOP) == nil {
				stopped = append(stopped, w.Process)
			}
		}
	}
	defer func() {
		for _, p := range stopped {
			_ = p.Signal(syscall.SIGCONT)
		}
	}()
	return run()
}

// isLoader tells the modes that load without the queue: MariaDB's bulk loader, and the lesson-5 style's INSERTs.
func isLoader(mode string) bool { return strings.HasPrefix(mode, "mysqlimport") || mode == modeLesson5 }

// modeLesson5 is the original program's import, run in the bench's own process (package lesson5).
const modeLesson5 = "lesson5"

// measure is one timed import: the seconds from the command's start to its exit, and the CPU-seconds each process
// spent meanwhile.
type measure struct {
	secs float64
	cpu  cpuUse
}

// changedDir is where the update modes' changed files are, beside data.
func changedDir(data string) string { return data + "-changed" }

// runOnce empties the tables and imports the files of data, which hold rows records each, once. tag makes the
// run's ID unique. The reimport and update modes import the files once untimed first, so that the timed import
// finds every row present: reimport imports the same files again, the update modes the changed ones.
func (e *modeEnv) runOnce(ctx context.Context, o options, rows int, data, tag string) (measure, error) {
	if err := labdb.Reset(ctx, e.lab); err != nil {
		return measure{}, err
	}
	switch e.mode {
	case "reimport":
		if _, err := e.importOnce(ctx, o, rows, data, tag+"_fill", fresh); err != nil {
			return measure{}, err
		}
		return e.importOnce(ctx, o, rows, data, tag, present)
	case "update", "mysqlimport-replace":
		if _, err := e.importOnce(ctx, o, rows, data, tag+"_fill", fresh); err != nil {
			return measure{}, err
		}
		return e.importOnce(ctx, o, rows, changedDir(data), tag, changed)
	}
	return e.importOnce(ctx, o, rows, data, tag, fresh)
}

// What an import finds in the tables: none of its rows, all of them, or all of them with some to change.
type finds int

const (
	fresh finds = iota
	present
	changed
)

// importOnce imports the files of data once into whatever the tables hold: none of its rows, or every row.
func (e *modeEnv) importOnce(ctx context.Context, o options, rows int, data, tag string, finds finds) (measure, error) {
	// Each run starts on a quiet server: InnoDB writes the last run's pages in the background, and the next run,
	// whatever its mode, would pay for them.
	if _, err := labdb.Settle(ctx, e.lab, o.prefix, 30*time.Second); err != nil {
		return measure{}, err
	}
	if e.mode == modeLesson5 {
		return e.lesson5Once(ctx, rows, o.stored, data)
	}
	if err := e.workerLost(); err != nil {
		return measure{}, err
	}
	runCtx, release := e.whileWorkersLive(ctx)
	defer release()
	var cmd *exec.Cmd
	if isLoader(e.mode) {
		var opts []string
		if e.mode == "mysqlimport-threads" {
			opts = append(opts, "--use-threads=2")
		}
		if finds == changed {
			opts = append(opts, "--replace")
		}
		cmd = e.mysqlimport(runCtx, data, opts...)
	} else {
		args := []string{"--redis", o.redisURL, "--mysql", e.cfg.FormatDSN(),
			"--queue", e.queue, "--run-id", e.queue + "_r" + tag, "--chunk-rows", strconv.Itoa(o.chunkRows), "--json", "--quiet",
			"--keep-results", "1h"} // the bench's results key is checked at once; it need not stay for 30 days
		if finds == changed {
			args = append(args, "--update")
		}
		cmd = exec.CommandContext(runCtx, filepath.Join(e.bin, "enqueue"), append(args, data)...)
	}
	var out, errOut strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errOut
	srv, workers := serverPIDs(), make([]int, len(e.workers))
	for i, w := range e.workers {
		workers[i] = w.Process.Pid
	}
	cpuBefore := readCPU(srv, workers)
	start := time.Now()
	err := cmd.Run()
	secs := time.Since(start).Seconds()
	m := measure{secs: secs, cpu: readCPU(srv, workers).since(cpuBefore)}
	if ps := cmd.ProcessState; ps != nil {
		name := procEnqueue
		if isLoader(e.mode) {
			name = procMysqlimport
		}
		m.cpu[name] = (ps.UserTime() + ps.SystemTime()).Seconds()
	}
	var exit *exec.ExitError
	if errors.As(err, &exit) && exit.ExitCode() == cli.ExitRejected && o.gen.RepeatEvery > 1 {
		err = nil // the repeated keys are rejected rows, as they should be
	}
	if lost := e.workerLost(); err != nil && lost != nil {
		return measure{}, lost
	}
	if err != nil {
		return measure{}, fmt.Errorf("%s: %w\n%s", cmd.Path, err, errOut.String())
	}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok && !isLoader(e.mode) {
		e.enqueueRSS = max(e.enqueueRSS, ru.Maxrss)
	}
	return m, e.check(ctx, o, gen.Distinct(rows, o.gen), out.String(), finds)
}

// lesson5Once imports the files of data the lesson-5 way, in this process, whose CPU it is charged with.
func (e *modeEnv) lesson5Once(ctx context.Context, rows, stored int, data string) (measure, error) {
	srv := serverPIDs()
	cpuBefore, selfBefore := readCPU(srv, nil), selfCPU()
	start := time.Now()
	_, err := lesson5.Import(ctx, e.lab, data)
	m := measure{secs: time.Since(start).Seconds(), cpu: readCPU(srv, nil).since(cpuBefore)}
	m.cpu[procLesson5] = selfCPU() - selfBefore
	if err != nil {
		return measure{}, err
	}
	return m, e.check(ctx, options{stored: stored}, rows, "", fresh)
}

// check confirms that the run stored every row, so a fast failure cannot pass for a fast import, and that an
// import of ours reported the tuples it should: every row added to the stored ones, or, when every row was
// present, none. The tables are counted by reading them, apart from the counts the run reported. After changed
// rows, each table holds exactly the changed ones, and our run counted them updated.
func (e *modeEnv) check(ctx context.Context, o options, rows int, out string, finds finds) error {
	stored := o.stored
	if !isLoader(e.mode) {
		var rep coordinator.Report
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			return fmt.Errorf("enqueue printed no results: %w", err)
		}
		want := coordinator.Tuple{Processed: int64(rows), Before: int64(stored), After: int64(stored + rows)}
		if finds != fresh {
			want = coordinator.Tuple{Before: int64(stored + rows), After: int64(stored + rows)}
		}
		for i, f := range rep.Files {
			if finds == changed && f.Updated != int64(rows/o.changeEvery) {
				return fmt.Errorf("%s: enqueue --update counted %d rows updated, want %d", record.Kinds[i], f.Updated, rows/o.changeEvery)
			}
		}
		if len(rep.Results) != len(record.Kinds) {
			return fmt.Errorf("enqueue reported %d tuples, want %d", len(rep.Results), len(record.Kinds))
		}
		for i, k := range record.Kinds {
			got := rep.Results[i]
			if got.Processed != want.Processed || got.Before != want.Before || got.After != want.After {
				return fmt.Errorf("%s: enqueue reported (%d, %d, %d), want (%d, %d, %d)", k, got.Processed, got.Before, got.After,
					want.Processed, want.Before, want.After)
			}
		}
		// Linear mode is one worker at concurrency 1, and the report says which mode ran every task.
		if wantMode := map[bool]string{true: "linear", false: "parallel"}[e.concurrency == 1 && len(e.workers) == 1]; rep.Mode != wantMode {
			return fmt.Errorf("enqueue reported a %s run, want %s", rep.Mode, wantMode)
		}
	}
	for _, k := range record.Kinds {
		n, err := e.db.ScanCount(ctx, k)
		if err != nil {
			return err
		}
		if n != int64(stored+rows) {
			return fmt.Errorf("%s holds %d rows after the run, want %d", k.Table(), n, stored+rows)
		}
		if finds == changed {
			n, err := labdb.CountChanged(ctx, e.lab, k.Table(), gen.Changed)
			if err != nil {
				return err
			}
			if n != int64(rows/o.changeEvery) {
				return fmt.Errorf("%s holds %d changed rows after the run, want %d", k.Table(), n, rows/o.changeEvery)
			}
		}
	}
	return nil
}

// mysqlimport loads both files with MariaDB's bulk loader in one command, as a DBA would, as RFC 4180 CSV: a comma
// between fields, optional double quotes, and no backslash escapes. Each file goes into the table of its name,
// whose columns are the file's, in order. Plain, it loads one file after the other on one connection; threads
// loads them at once, a connection each (--use-threads=2); opts adds such options.
func (e *modeEnv) mysqlimport(ctx context.Context, data string, opts ...string) *exec.Cmd {
	host, port, _ := strings.Cut(e.cfg.Addr, ":")
	args := []string{"--local", "--host", host, "--port", cmp.Or(port, "3306"), "--user", e.cfg.User,
		"--fields-terminated-by=,", `--fields-optionally-enclosed-by="`, "--fields-escaped-by=", "--ignore-lines=1"}
	args = append(append(args, opts...), e.cfg.DBName)
	for _, k := range record.Kinds {
		args = append(args, filepath.Join(data, k.FileName()))
	}
	cmd := exec.CommandContext(ctx, "mysqlimport", args...)
	cmd.Env = append(os.Environ(), "MYSQL_PWD="+e.cfg.Passwd) // not on the command line, where ps shows it
	return cmd
}

// workerShape is the mode's worker processes and the concurrency of each, as "2 × 4", or "-" for a loader.
func (e *modeEnv) workerShape() string {
	if len(e.workers) == 0 {
		return "-"
	}
	return fmt.Sprintf("%d × %d", len(e.workers), e.concurrency)
}

// peakRSS reports the largest resident set of the enqueue command and of each worker process.
func (e *modeEnv) peakRSS() string {
	if isLoader(e.mode) {
		return "-"
	}
	parts := []string{fmt.Sprintf("enqueue %d MiB", e.enqueueRSS>>10)}
	for i, w := range e.workers {
		parts = append(parts, fmt.Sprintf("worker%d %s", i+1, vmHWM(w.Process.Pid)))
	}
	return strings.Join(parts, ", ")
}

// vmHWM reads a running process's peak resident set from /proc.
func vmHWM(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return "?"
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err == nil {
				return fmt.Sprintf("%d MiB", kb>>10)
			}
		}
	}
	return "?"
}

func (e *modeEnv) close(redisURL string) {
	lost := e.workerLost() // before the workers are told to stop: a log that tells why one went is kept
	for i, w := range e.workers {
		_ = w.Process.Signal(syscall.SIGTERM)
		<-e.exited[i]
	}
	if lost == nil {
		for _, log := range e.logs {
			os.Remove(log)
		}
	}
	if len(e.workers) > 0 {
		// The mode's queue was the bench's own; its keys go with it.
		if opt, err := redis.ParseURL(redisURL); err == nil {
			rdb := redis.NewClient(opt)
			in := asynq.NewInspectorFromRedisClient(rdb)
			queue := tasks.QueueFor(e.queue, e.db.ID)
			if err := in.DeleteQueue(queue, true); err != nil && !errors.Is(err, asynq.ErrQueueNotFound) {
				fmt.Fprintln(os.Stderr, "bench:", err)
			}
			// DeleteQueue leaves the queue's counters of processed and failed tasks, the total ones with no expiry.
			// The runs' results keys were checked when each run ended; they need not wait out their hour.
			for _, pattern := range []string{"asynq:{" + queue + "}:*", ledger.ResultsKey(e.queue + "_r*")} {
				if err := deleteMatching(rdb, pattern); err != nil {
					fmt.Fprintln(os.Stderr, "bench:", err)
				}
			}
			in.Close()
			rdb.Close()
		}
	}
	if e.lab != nil {
		if err := labdb.Drop(context.Background(), e.lab); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
		}
		e.lab.Close()
	}
	if e.db != nil {
		e.db.Close()
	}
}

func median(xs []float64) float64 {
	s := slices.Sorted(slices.Values(xs))
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// byRound is the median, with its range, of num[i] / den[i] over the rounds i, each ratio taken within one
// round; "" when the two do not hold a value for every round alike.
func byRound(num, den []float64) string {
	if len(num) == 0 || len(num) != len(den) {
		return ""
	}
	ratios := make([]float64, len(num))
	for i := range num {
		if num[i] <= 0 || den[i] <= 0 {
			return ""
		}
		ratios[i] = num[i] / den[i]
	}
	return fmt.Sprintf("; round by round %.2f× (%.2f–%.2f, %d rounds)", median(ratios), slices.Min(ratios), slices.Max(ratios), len(ratios))
}

// mariaDB is MariaDB's CPU-seconds in each run, or nil when some run lacks them: byRound pairs runs by round.
func mariaDB(runs []cpuUse) []float64 {
	xs := values(runs, process(procMariaDB))
	if len(xs) != len(runs) {
		return nil
	}
	return xs
}

func showTimes(xs []float64) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = strconv.FormatFloat(x, 'f', 3, 64)
	}
	return strings.Join(parts, " ")
}

// parseRows reads a flag's comma-separated row counts, each at least least.
func parseRows(flag, list string, least int) ([]int, error) {
	var out []int
	for f := range strings.SplitSeq(list, ",") {
		if f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n < least {
			return nil, &cli.UsageError{Msg: fmt.Sprintf("%s: %q is not a number of rows of at least %d", flag, f, least)}
		}
		out = append(out, n)
	}
	return out, nil
}

// Bytes per pair of rows (a customer and a product), with room to spare: in the generated files, and in MariaDB's
// tables, indexes and logs, per mode's database.
const fileBytesPerRow, tableBytesPerRow = 200, 600

// checkDisk refuses a run whose files and tables would not fit: the files go to the temporary folder, and each
// mode's database holds the stored rows and a run's rows at once. MariaDB's folder is checked where it is on this
// machine.
func checkDisk(ctx context.Context, o options, modes int) error {
	rows := o.rows
	for _, n := range o.sizes {
		rows = max(rows, n)
	}
	need := map[string]uint64{os.TempDir(): uint64(rows) * fileBytesPerRow}
	server, err := sql.Open("mysql", o.mysqlDSN)
	if err != nil {
		return errors.New("--mysql cannot be parsed")
	}
	defer server.Close()
	var datadir string
	if err := server.QueryRowContext(ctx, "SELECT @@datadir").Scan(&datadir); err != nil {
		return err
	}
	if _, err := os.Stat(datadir); err == nil {
		need[datadir] += uint64(modes) * uint64(rows+slices.Max(o.storedLevels)) * tableBytesPerRow
	}
	for dir, n := range need {
		var st syscall.Statfs_t
		if err := syscall.Statfs(dir, &st); err != nil {
			return fmt.Errorf("free disk space in %s: %w", dir, err)
		}
		if free := st.Bavail * uint64(st.Bsize); free < n {
			return fmt.Errorf("2 × %d rows in %d modes need about %.1f GB free in %s, which has %.1f GB; free some space, or run fewer rows or modes", rows, modes, float64(n)/1e9, dir, float64(free)/1e9)
		}
	}
	return nil
}

// deleteMatching deletes the Redis keys that match pattern.
func deleteMatching(rdb *redis.Client, pattern string) error {
	ctx := context.Background()
	iter := rdb.Scan(ctx, 0, pattern, 1000).Iterator()
	for iter.Next(ctx) {
		if err := rdb.Del(ctx, iter.Val()).Err(); err != nil {
			return err
		}
	}
	return iter.Err()
}
