// Command enqueue imports a folder's customers.csv and products.csv: it cuts them into chunk tasks on the asynq
// queue, waits for the workers to finish them, and prints and stores the run's result tuples.
package main

import (
	"cmp"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"text/tabwriter"

	"github.com/hibiken/asynq"

	"hpnorton/internal/cli"
	"hpnorton/internal/coordinator"
	"hpnorton/internal/ledger"
	"hpnorton/internal/record"
	"hpnorton/repo"
	"hpnorton/tasks"
)

const synopsis = "enqueue [flags] [DIR]   (DIR holds customers.csv and products.csv; default testdata)"

// shownProblems is how many rejected rows the table lists; --json and the results key list more.
const shownProblems = 10

func main() {
	cli.RouteDriverLogs()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run carries out one import and returns the exit status: 0 when every row landed or was already present, 1 when
// any row or file was rejected, 2 on a usage or infrastructure error.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("enqueue", flag.ContinueOnError)
	var rep *coordinator.Report
	err := cli.Guard(func() (err error) {
		rep, err = enqueue(ctx, fs, args, stdout, stderr)
		return err
	})
	if err != nil {
		return cli.Exit(stderr, fs, synopsis, err)
	}
	if !rep.Clean() {
		return cli.ExitRejected
	}
	return cli.ExitOK
}

func enqueue(ctx context.Context, fs *flag.FlagSet, args []string, stdout, stderr io.Writer) (rep *coordinator.Report, err error) {
	var conn cli.Conn
	conn.AddFlags(fs)
	var cfg coordinator.Config
	asJSON := fs.Bool("json", false, "print the results as JSON, as stored under the results key")
	fs.IntVar(&cfg.ChunkRows, "chunk-rows", coordinator.DefaultChunkRows, "most `rows` in one task")
	fs.DurationVar(&cfg.Timeout, "timeout", coordinator.DefaultTimeout, "give up when the workers have not finished the run within this `duration`")
	fs.StringVar(&cfg.RunID, "run-id", "", "`ID` for the run; default a new one from the clock")
	cancelID := fs.String("cancel", "", "cancel the run `ID`: remove its queued tasks, keep what was stored, and report its counts so far")
	list := fs.Bool("list", false, "list the database's recent runs: ID, state (running, interrupted, finished, cancelled), folder and counts so far")
	resumeID := fs.String("resume", "", "finish the interrupted run `ID`: DIR, when given, must hold the same files; the chunking and mode are the run's")
	fs.IntVar(&cfg.MaxQueued, "max-queued", coordinator.DefaultMaxQueued, "most `tasks` queued and not yet finished; reading pauses there, which bounds Redis memory")
	fs.DurationVar(&cfg.KeepResults, "keep-results", coordinator.DefaultKeepResults, "how long the run's results key, with its first rejected rows, lasts in Redis (env HPNORTON_KEEP_RESULTS)")
	fs.DurationVar(&cfg.KeepRuns, "keep-runs", coordinator.DefaultKeepRuns, "how long MySQL keeps this run's and its tasks' records; runs and workers prune them after (env HPNORTON_KEEP_RUNS)")
	for name, env := range map[string]string{"keep-results": "HPNORTON_KEEP_RESULTS", "keep-runs": "HPNORTON_KEEP_RUNS"} {
		if err := cli.EnvDefault(fs, name, env); err != nil {
			return nil, err
		}
	}
	quiet := fs.Bool("quiet", false, "no live progress, even on a terminal")
	fs.BoolVar(&cfg.Update, "update", false, "update mode: a present row whose values differ from the file's takes them; an equal one is left alone")
	strict := fs.Bool("strict", false, "read and validate both files first, and enqueue nothing if any row or file is bad")
	rejectsPath := fs.String("rejects", "", "write every rejected row to `file` as CSV: file,line,last_line,column,value,reason")
	cpuProfile := fs.String("cpuprofile", "", "write the enqueuer's CPU profile to `file`")
	if err := cli.Parse(fs, args); err != nil {
		return nil, err
	}
	switch {
	case fs.NArg() > 1:
		return nil, &cli.UsageError{Msg: fmt.Sprintf("one folder expected, got %d arguments", fs.NArg())}
	case cfg.ChunkRows < 1 || cfg.ChunkRows > tasks.MaxChunkRecords:
		return nil, &cli.UsageError{Msg: fmt.Sprintf("--chunk-rows must be 1 to %d, got %d", tasks.MaxChunkRecords, cfg.ChunkRows)}
	case cfg.MaxQueued < 1:
		return nil, &cli.UsageError{Msg: fmt.Sprintf("--max-queued must be at least 1, got %d", cfg.MaxQueued)}
	case cfg.Timeout <= 0:
		return nil, &cli.UsageError{Msg: "--timeout must be positive"}
	case cfg.KeepResults <= 0:
		return nil, &cli.UsageError{Msg: "--keep-results must be positive"}
	case *resumeID != "" && *strict:
		return nil, &cli.UsageError{Msg: "--resume carries on a run as it started; --strict applies to new runs only"}
	case cfg.KeepRuns < cfg.Timeout:
		return nil, &cli.UsageError{Msg: fmt.Sprintf("--keep-runs (%s) must be at least --timeout (%s): a run's records must outlast it", cfg.KeepRuns, cfg.Timeout)}
	}
	if *list || *cancelID != "" {
		*quiet, *strict = true, false // no run: nothing to draw progress for or to check
	}
	cfg.Dir = "testdata"
	if *resumeID != "" {
		cfg.Resume, cfg.RunID, cfg.Dir = true, *resumeID, "" // the run's own folder, unless DIR names it
	}
	if fs.NArg() == 1 {
		cfg.Dir = fs.Arg(0)
	}
	cfg.Queue = conn.Queue
	// The run's ID is settled here, so that a run that stops early can say how to resume it.
	cfg.RunID = cmp.Or(cfg.RunID, coordinator.NewRunID())
	cfg.ResumeCommand = conn.Command("enqueue", "--resume", cfg.RunID)
	cfg.WorkerCommand = conn.WorkerCommand()
	var rejects *rejectsFile
	if *rejectsPath != "" {
		// Created now, so that a path that cannot be written fails the command before any work.
		if rejects, err = createRejects(*rejectsPath); err != nil {
			return nil, &cli.UsageError{Msg: fmt.Sprintf("--rejects: %v", err)}
		}
		defer rejects.f.Close()
		cfg.Rejects = rejects.write
	}
	logOut := stderr
	var bars *progressBars
	if !*quiet && isTerminal(stderr) {
		bars = newProgressBars(stderr)
		defer bars.Close()
		cfg.Progress, logOut = bars.Update, bars
	}
	log, err := cli.NewLogger(logOut, conn.LogFormat)
	if err != nil {
		return nil, err
	}
	cfg.Logger = log
	if *cpuProfile != "" {
		stop, err := cli.StartCPUProfile(*cpuProfile)
		if err != nil {
			return nil, err
		}
		defer stop()
	}

	if *strict {
		// All or nothing: the run starts only once every row is known to be good.
		rep, err := coordinator.Check(ctx, cfg)
		if err != nil {
			return nil, err
		}
		if !rep.Clean() {
			return rep, refuse(stdout, cfg.Dir, rep, *asJSON, rejects)
		}
	}

	rdb, err := cli.OpenRedis(ctx, conn.RedisURL)
	if err != nil {
		return nil, err
	}
	defer rdb.Close()
	db, err := repo.Open(ctx, conn.MySQLDSN)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	client := asynq.NewClientFromRedisClient(rdb)
	defer client.Close()
	inspector := asynq.NewInspectorFromRedisClient(rdb)
	defer inspector.Close()
	deps := coordinator.Deps{Repo: db, Ledger: ledger.New(rdb), Client: client, Inspector: inspector}

	switch {
	case *list:
		runs, err := coordinator.List(ctx, deps, 20)
		if err != nil {
			return nil, err
		}
		return &coordinator.Report{}, printRuns(stdout, runs, *asJSON)
	case *cancelID != "":
		info, err := coordinator.Cancel(ctx, deps, conn.Queue, *cancelID)
		if err != nil {
			return nil, err
		}
		return &coordinator.Report{}, printRuns(stdout, []coordinator.RunInfo{info}, *asJSON)
	}

	rep, err = coordinator.Run(ctx, deps, cfg)
	if bars != nil {
		bars.Close() // the bars stop before the results print below them
	}
	if err != nil {
		return nil, err
	}
	if err := rejects.close(); err != nil {
		return nil, err
	}
	if *asJSON {
		// One line, byte for byte what the results key holds.
		return rep, json.NewEncoder(stdout).Encode(rep)
	}
	return rep, printTable(stdout, rep)
}

// printRuns writes runs as a table of 80 columns, or as JSON, one array.
func printRuns(w io.Writer, runs []coordinator.RunInfo, asJSON bool) error {
	if asJSON {
		return json.NewEncoder(w).Encode(runs)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "run\tstate\tstarted (UTC)\tcustomers\tproducts\t")
	for _, r := range runs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t", r.RunID, r.State, r.StartedAt.Format("2006-01-02 15:04:05"))
		for _, f := range r.Files {
			fmt.Fprintf(tw, "%d+%d\t", f.Added, f.Present)
		}
		fmt.Fprintln(tw)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w, "customers and products: rows added + present by the tasks that committed")
	return nil
}

// refuse ends a --strict run that found problems: it reports them as a run would, and enqueues nothing.
func refuse(stdout io.Writer, dir string, rep *coordinator.Report, asJSON bool, rejects *rejectsFile) error {
	if err := rejects.close(); err != nil {
		return err
	}
	if asJSON {
		return json.NewEncoder(stdout).Encode(rep)
	}
	fmt.Fprintf(stdout, "--strict: nothing was enqueued; %s holds rows or files that would be rejected\n", dir)
	printProblems(stdout, rep)
	return nil
}

// rejectsFile is the --rejects file: a header, then one CSV record per problem, with the first and last line of
// the rejected record. A problem with a whole file has lines 0 and empty column and value. Problems are written
// as the run hands them over, so the file holds all of them without the command holding them in memory.
type rejectsFile struct {
	f *os.File
	w *csv.Writer
}

func createRejects(path string) (*rejectsFile, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	w := csv.NewWriter(f)
	_ = w.Write([]string{"file", "line", "last_line", "column", "value", "reason"}) // csv.Writer keeps the first error for Error
	return &rejectsFile{f: f, w: w}, nil
}

func (r *rejectsFile) write(p record.Problem) error {
	return r.w.Write([]string{p.File, strconv.Itoa(p.Line), strconv.Itoa(max(p.Line, p.LastLine)), p.Column, p.Value, p.Reason})
}

// close flushes and closes the file, when there is one.
func (r *rejectsFile) close() error {
	if r == nil {
		return nil
	}
	r.w.Flush()
	if err := errors.Join(r.w.Error(), r.f.Close()); err != nil {
		return fmt.Errorf("--rejects: %w", err)
	}
	return nil
}

// printTable writes the report for a person: the tuples first, then the per-file account and the first problems.
func printTable(w io.Writer, rep *coordinator.Report) error {
	tuples, err := json.Marshal(rep.Results)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "run %s: %s, %s, %.3f s; results in Redis at %s\n", rep.RunID, rep.Mode, coordinator.Plural(len(rep.Workers), "worker"), rep.Seconds, rep.ResultsKey)
	fmt.Fprintf(w, "results (processed, before, after, seconds): %s\n\n", tuples)
	// The counts before and after are in the tuples above; without them the table fits 80 columns for files of
	// millions of rows.
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "file\tlines\tread\tadded\tpresent\trejected\tseconds\ttasks\t")
	for _, f := range rep.Files {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%.3f\t%d\t\n", f.File, f.Lines, f.Read, f.Added, f.Present, f.Rejected, f.Seconds, f.Tasks)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if rep.Update {
		// Update mode splits the present rows; a line a file keeps the table within 80 columns.
		for _, f := range rep.Files {
			fmt.Fprintf(w, "  %s: of %d present, %d updated, %d unchanged\n", f.File, f.Present, f.Updated, f.Unchanged)
		}
	}
	printProblems(w, rep)
	return nil
}

// printProblems lists the first problems of a report, if it has any.
func printProblems(w io.Writer, rep *coordinator.Report) {
	if rep.ProblemCount > 0 {
		fmt.Fprintf(w, "\n%s:\n", coordinator.Plural(rep.ProblemCount, "problem"))
		for i, p := range rep.Problems {
			if i == shownProblems {
				fmt.Fprintf(w, "  ... and %d more (--rejects FILE lists them all)\n", rep.ProblemCount-shownProblems)
				break
			}
			fmt.Fprintf(w, "  %s\n", p)
		}
	}
}
