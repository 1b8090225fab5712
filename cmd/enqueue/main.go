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
	"strconv"

	"github.com/hibiken/asynq"

	"hpnorton/internal/cli"
	"hpnorton/internal/coordinator"
	"hpnorton/internal/ledger"
	"hpnorton/internal/record"
	"hpnorton/repo"
	"hpnorton/tasks"
)

const synopsis = `enqueue [--json] [--quiet] [--strict] [--update] [--rejects FILE] [--chunk-rows N] [--max-queued N] [--timeout D]
               [--keep-results D] [--keep-runs D] [--run-id ID] [--cpuprofile FILE]
               [--redis URL] [--mysql DSN] [--queue NAME] [--log-format text|json] [DIR]
       enqueue --resume ID [DIR]
       enqueue --list | --cancel ID

DIR holds customers.csv and products.csv; it defaults to testdata.`

// shownProblems is how many rejected rows the table lists; --json and the results key list more.
const shownProblems = 10

func main() {
	cli.RouteDriverLogs()
	ctx, stop := cli.SignalContext(context.Background())
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run carries out one import and returns the exit status: 0 when every row landed or was already present, 1 when
// any row or file was rejected, and otherwise what cli.ExitCode gives the error.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("enqueue", flag.ContinueOnError)
	var rep *coordinator.Report
	err := cli.Guard(func() (err error) {
		rep, err = enqueue(ctx, fs, args, stdout, stderr)
		return err
	})
	if err != nil {
		return cli.Exit(ctx, stdout, stderr, fs, synopsis, err)
	}
	if !rep.Clean() {
		return cli.ExitRejected
	}
	return cli.ExitOK
}

// options are the command line's, once parsed and checked.
type options struct {
	conn                                        cli.Conn
	cfg                                         coordinator.Config
	asJSON, list, quiet, strict                 *bool
	cancelID, resumeID, rejectsPath, cpuProfile *string
}

// defineFlags registers the command's flags on fs.
func defineFlags(fs *flag.FlagSet) *options {
	o := &options{}
	o.conn.AddFlags(fs)
	cfg := &o.cfg
	o.asJSON = fs.Bool("json", false, "print the results as JSON, as stored under the results key")
	fs.IntVar(&cfg.ChunkRows, "chunk-rows", coordinator.DefaultChunkRows, "most `rows` in one task, 1 to 100000")
	fs.DurationVar(&cfg.Timeout, "timeout", coordinator.DefaultTimeout, "give up when the workers have not finished the run within this `duration`")
	fs.StringVar(&cfg.RunID, "run-id", "", "`ID` for the run; default a new one from the clock")
	o.cancelID = fs.String("cancel", "", "cancel the run `ID`: remove its queued tasks, keep what was stored, and report its counts so far")
	o.list = fs.Bool("list", false, "list the database's 20 newest runs: ID, state (running, interrupted, finished, cancelled), start, and rows added + present so far")
	o.resumeID = fs.String("resume", "", "finish the interrupted run `ID`: DIR, when given, must hold the same files; the chunking and mode are the run's")
	fs.IntVar(&cfg.MaxQueued, "max-queued", coordinator.DefaultMaxQueued, "most `tasks` queued and not yet finished; reading pauses there, which bounds Redis memory")
	fs.DurationVar(&cfg.KeepResults, "keep-results", coordinator.DefaultKeepResults, "how long the run's results key, with its first rejected rows, lasts in Redis, a `duration` (env HPNORTON_KEEP_RESULTS)")
	fs.DurationVar(&cfg.KeepRuns, "keep-runs", coordinator.DefaultKeepRuns, "how long MySQL keeps this run's and its tasks' records, a `duration`; runs and workers prune them after (env HPNORTON_KEEP_RUNS)")
	o.quiet = fs.Bool("quiet", false, "no live progress, even on a terminal")
	fs.BoolVar(&cfg.Update, "update", false, "update mode: a present row whose values differ from the file's takes them; an equal one is left alone")
	o.strict = fs.Bool("strict", false, "read and validate both files first, and enqueue nothing if any row or file is bad")
	o.rejectsPath = fs.String("rejects", "", "write every rejected row to `file` as CSV: file,line,last_line,column,value,reason")
	o.cpuProfile = fs.String("cpuprofile", "", "write the enqueuer's CPU profile to `file`")
	return o
}

// parseArgs parses and checks the command line; every mistake is a usage error naming the flag or variable.
func parseArgs(fs *flag.FlagSet, args []string) (*options, error) {
	o := defineFlags(fs)
	if err := cli.Parse(fs, args); err != nil {
		return nil, err
	}
	cfg := &o.cfg
	switch {
	case fs.NArg() > 1:
		return nil, &cli.UsageError{Msg: fmt.Sprintf("one folder expected, got %d arguments", fs.NArg())}
	case cfg.ChunkRows < 1 || cfg.ChunkRows > tasks.MaxChunkRecords:
		return nil, cli.Invalid(fs, "chunk-rows", fmt.Sprintf("must be 1 to %d, got %d", tasks.MaxChunkRecords, cfg.ChunkRows))
	case cfg.MaxQueued < 1:
		return nil, cli.Invalid(fs, "max-queued", fmt.Sprintf("must be at least 1, got %d", cfg.MaxQueued))
	case cfg.Timeout <= 0:
		return nil, cli.Invalid(fs, "timeout", fmt.Sprintf("must be positive, got %s", cfg.Timeout))
	case cfg.KeepResults <= 0:
		return nil, cli.Invalid(fs, "keep-results", fmt.Sprintf("must be positive, got %s", cfg.KeepResults))
	case modes(*o.list, *o.cancelID != "", *o.resumeID != "") > 1:
		return nil, &cli.UsageError{Msg: "--list, --cancel and --resume each do a thing of their own; give one of them"}
	case (*o.list || *o.cancelID != "") && fs.NArg() > 0:
		return nil, &cli.UsageError{Msg: fmt.Sprintf("--list and --cancel take no folder, got %q", fs.Arg(0))}
	case *o.resumeID != "" && *o.strict:
		return nil, &cli.UsageError{Msg: "--resume carries on a run as it started; --strict applies to new runs only"}
	case cfg.KeepRuns < cfg.Timeout:
		return nil, cli.Invalid(fs, "keep-runs", fmt.Sprintf("(%s) must be at least --timeout (%s): a run's records must outlast it", cfg.KeepRuns, cfg.Timeout))
	}
	if err := o.conn.Check(fs); err != nil {
		return nil, err
	}
	if *o.list || *o.cancelID != "" {
		*o.quiet, *o.strict = true, false // no run: nothing to draw progress for or to check
	}
	cfg.Dir = "testdata"
	if *o.resumeID != "" {
		cfg.Resume, cfg.RunID, cfg.Dir = true, *o.resumeID, "" // the run's own folder, unless DIR names it
	}
	if fs.NArg() == 1 {
		cfg.Dir = fs.Arg(0)
	}
	cfg.Queue = o.conn.Queue
	// The run's ID is settled here, so that a run that stops early can say how to resume it.
	cfg.RunID = cmp.Or(cfg.RunID, coordinator.NewRunID())
	cfg.ResumeCommand = o.conn.Command(cli.Sibling("enqueue"), "--resume", cfg.RunID)
	cfg.WorkerCommand = o.conn.WorkerCommand()
	return o, nil
}

func enqueue(ctx context.Context, fs *flag.FlagSet, args []string, stdout, stderr io.Writer) (rep *coordinator.Report, err error) {
	o, err := parseArgs(fs, args)
	if err != nil {
		return nil, err
	}
	cfg := o.cfg
	var rejects *rejectsFile
	if *o.rejectsPath != "" {
		// Created now, so that a path that cannot be written fails the command before any work.
		if rejects, err = createRejects(*o.rejectsPath); err != nil {
			return nil, fmt.Errorf("--rejects: %w", err)
		}
		defer rejects.f.Close()
		cfg.Rejects = rejects.write
	}
	logOut := stderr
	var bars *progressBars
	if !*o.quiet && isTerminal(stderr) {
		bars = newProgressBars(stderr)
		defer bars.Close()
		cfg.Progress, logOut = bars.Update, bars
	}
	if cfg.Logger, err = cli.NewLogger(logOut, o.conn.LogFormat); err != nil {
		return nil, err
	}
	if *o.cpuProfile != "" {
		stop, err := cli.StartCPUProfile(*o.cpuProfile)
		if err != nil {
			return nil, err
		}
		defer stop()
	}
	if *o.strict {
		// All or nothing: the run starts only once every row is known to be good.
		rep, err := coordinator.Check(ctx, cfg)
		if err != nil {
			return nil, err
		}
		if !rep.Clean() {
			return rep, refuse(stdout, cfg.Dir, rep, *o.asJSON, rejects)
		}
	}
	return connectAndRun(ctx, o, cfg, bars, rejects, stdout)
}

// connectAndRun opens Redis and MySQL, then lists or cancels runs, or carries out the run and prints its report.
func connectAndRun(ctx context.Context, o *options, cfg coordinator.Config, bars *progressBars, rejects *rejectsFile, stdout io.Writer) (*coordinator.Report, error) {
	rdb, err := cli.OpenRedis(ctx, o.conn.RedisURL)
	if err != nil {
		return nil, err
	}
	defer rdb.Close()
	db, err := repo.Open(ctx, o.conn.MySQLDSN)
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
	case *o.list:
		runs, err := coordinator.List(ctx, deps, 20)
		if err != nil {
			return nil, err
		}
		return &coordinator.Report{}, printRuns(stdout, runs, *o.asJSON)
	case *o.cancelID != "":
		info, err := coordinator.Cancel(ctx, deps, o.conn.Queue, *o.cancelID)
		if err != nil {
			return nil, err
		}
		return &coordinator.Report{}, printRuns(stdout, []coordinator.RunInfo{info}, *o.asJSON)
	}

	rep, err := coordinator.Run(ctx, deps, cfg)
	if bars != nil {
		bars.Close() // the bars stop before the results print below them
	}
	if err != nil {
		return nil, err
	}
	if err := rejects.close(); err != nil {
		return nil, err
	}
	if *o.asJSON {
		// One line, byte for byte what the results key holds.
		return rep, json.NewEncoder(stdout).Encode(rep)
	}
	return rep, printTable(stdout, rep, *o.rejectsPath)
}

// rejectsFile is the --rejects file: a header, then one CSV record per problem, with the first and last line of
// the rejected record. A problem with a whole file has lines 0 and empty column and value. Problems are written
// as the run hands them over, so the file holds all of them without the command holding them in memory.
type rejectsFile struct {
	f *os.File
	w *csv.Writer
}

// path is the file's name as given, or "" when there is none.
func (r *rejectsFile) path() string {
	if r == nil {
		return ""
	}
	return r.f.Name()
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

// modes counts the ways of their own that the command line asks for.
func modes(asked ...bool) int {
	n := 0
	for _, a := range asked {
		if a {
			n++
		}
	}
	return n
}
