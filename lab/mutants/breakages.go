package main

// breakage is one rule broken on purpose: old, which must occur once in file, becomes new. pkgs are the packages
// whose tests should catch it, run with -run when run is set.
type breakage struct {
	name     string
	file     string
	old, new string
	pkgs     []string
	run      string
}

// breakages are the safeguards the README and the code promise, each broken in the smallest way that defeats it.
var breakages = []breakage{
	// The worker's counts and settings.
	{
		name: "metrics: added and present swapped",
		file: "internal/worker/metrics.go",
		old:  `m.rows.WithLabelValues(k.String(), "added").Add(float64(c.Added))`,
		new:  `m.rows.WithLabelValues(k.String(), "added").Add(float64(c.Present))`,
		pkgs: []string{"./internal/worker"},
	},
	{
		name: "metrics: a redelivery's rows counted again",
		file: "internal/worker/metrics.go",
		old:  "\t\tm.redelivered.WithLabelValues(k.String()).Inc()\n\t\treturn\n",
		new:  "\t\tm.redelivered.WithLabelValues(k.String()).Inc()\n",
		pkgs: []string{"./internal/worker"},
	},
	{
		name: "retry: a flat 20 s backoff",
		file: "internal/worker/worker.go",
		old:  "d := min(time.Second<<min(n, 6), time.Minute)",
		new:  "d := 20 * time.Second",
		pkgs: []string{"./internal/worker"},
	},
	{
		name: "worker: default concurrency 1, not 4",
		file: "cmd/worker/main.go",
		old:  "const defaultConcurrency = 4",
		new:  "const defaultConcurrency = 1",
		pkgs: []string{"./cmd/worker"},
	},
	// The row counts (repo/counts.go).
	{
		name: "counts: a task's rows left out of the count",
		file: "repo/counts.go",
		old:  "return addToCount(ctx, tx, t.Kind.Table(), int(w.Added))",
		new:  "return addToCount(ctx, tx, t.Kind.Table(), 0)",
		pkgs: []string{"./repo", "./internal/coordinator"},
		run:  "Count",
	},
	{
		name: "counts: another program's deletes not counted",
		file: "repo/counts.go",
		old:  `body("DELETE", "- 1")`,
		new:  `body("DELETE", "- 0")`,
		pkgs: []string{"./repo", "./internal/coordinator"},
		run:  "Count",
	},
	{
		name: "counts: hpnorton's own rows counted twice, by the triggers too",
		file: "repo/repo.go",
		old:  `cfg.Params[countedVar] = "1"`,
		new:  `cfg.Params["@unused"] = "1"`,
		pkgs: []string{"./repo", "./internal/coordinator"},
		run:  "Count",
	},
	{
		name: "counts: a table counted afresh while writers go on",
		file: "repo/counts.go",
		old:  `"LOCK TABLES "+quoteIdent(table)+" WRITE, import_counts WRITE"`,
		new:  `"DO 1"`,
		pkgs: []string{"./repo"},
		run:  "CountTakenAfresh",
	},
	// The run's wait and report.
	{
		name: "wait: a task failed for good is never diagnosed",
		file: "internal/coordinator/coordinator.go",
		old:  "if err := w.diagnose(ctx); err != nil {",
		new:  "if err := error(nil); err != nil {",
		pkgs: []string{"./internal/coordinator", "./cmd/enqueue"},
		run:  "Diagnose|TaskLandsOnly|NoWorker",
	},
	{
		name: "wait: tasks that vanished from Redis counted as done",
		file: "internal/coordinator/stall.go",
		old:  "\t\t\tif !recorded {\n",
		new:  "\t\t\tif !recorded && false {\n",
		pkgs: []string{"./cmd/enqueue"},
		run:  "TasksVanish",
	},
	{
		name: "run: a missing or empty folder starts a run",
		file: "internal/coordinator/coordinator.go",
		old:  "\tif err := checkDir(cfg.Dir); err != nil {\n\t\treturn nil, err\n\t}\n\tlog := cfg.Logger",
		new:  "\tlog := cfg.Logger",
		pkgs: []string{"./cmd/enqueue"},
		run:  "MissingOrEmptyFolder",
	},
	{
		name: "report: problems listed bounded at 3, not 100",
		file: "internal/coordinator/coordinator.go",
		old:  "maxListedProblems = 100",
		new:  "maxListedProblems = 3",
		pkgs: []string{"./internal/coordinator", "./cmd/enqueue"},
		run:  "Problem|Hostile|Table|Strict",
	},
	{
		name: "ledger: Finish leaves the run's working keys",
		file: "internal/ledger/ledger.go",
		old:  "\t\tp.Del(ctx, append(workingKeys(runID), aliveKey(runID))...)\n",
		new:  "",
		pkgs: []string{"./internal/ledger", "./cmd/enqueue"},
		run:  "Tuple|Record|LinearImportTwice|TableOutput",
	},
	// Logs.
	{
		name: "cli: MySQL driver's messages not routed to the command's logger",
		file: "internal/cli/cli.go",
		old:  "_ = mysql.SetLogger(driverLogger{})",
		new:  "_ = mysql.Logger(driverLogger{})",
		pkgs: []string{"./internal/cli"},
	},
	{
		name: "cli: go-redis's messages not routed to the command's logger",
		file: "internal/cli/cli.go",
		old:  "\tredis.SetLogger(driverLogger{})\n",
		new:  "",
		pkgs: []string{"./internal/cli"},
	},
	{
		name: "cli: the Redis client's dial warnings shown before the error that says it",
		file: "internal/cli/cli.go",
		old:  "\tfirstContact.Store(true)\n",
		new:  "",
		pkgs: []string{"./cmd/enqueue"},
		run:  "FirstContact",
	},
	// Validation.
	{
		name: "record: no length check on key columns",
		file: "internal/record/record.go",
		old:  "case len(v) > c.MaxChars && utf8.RuneCount(v) > c.MaxChars:",
		new:  "case !c.Key && len(v) > c.MaxChars && utf8.RuneCount(v) > c.MaxChars:",
		pkgs: []string{"./internal/record", "./cmd/enqueue"},
		run:  "Validate|Plain|Oracle",
	},
	{
		name: "record: keys with leading whitespace accepted",
		file: "internal/record/record.go",
		old:  "case c.Key && (v[0] == ' ' || v[len(v)-1] == ' ' || !p && len(bytes.TrimSpace(v)) != len(v)):",
		new:  "case c.Key && (v[len(v)-1] == ' ' || !p && len(bytes.TrimRight(v, \" \\t\\r\\n\")) != len(v)):",
		pkgs: []string{"./internal/record", "./cmd/enqueue"},
		run:  "Validate|Plain|Oracle",
	},
	{
		name: "record: every field said plain, its escapes left out of the row",
		file: "internal/record/record.go",
		old:  "\t\tif p {\n\t\t\tplain |= 1 << i\n\t\t}\n",
		new:  "\t\tplain |= 1 << i\n",
		pkgs: []string{"./internal/record", "./cmd/enqueue"},
		run:  "Validate|Oracle|Verbatim",
	},
	{
		name: "repo: a carriage return in a field left unescaped",
		file: "repo/import.go",
		old:  "return ((x-ones*0x0E)&^x | (bs-ones)&^bs) & highs",
		new:  "return ((x-ones*0x0D)&^x | (bs-ones)&^bs) & highs",
		pkgs: []string{"./repo", "./cmd/enqueue"},
		run:  "Escape|AppendRow|Oracle|Verbatim",
	},
	{
		name: "read: a plain row's key taken one byte short, so a chunk out of key order goes unsorted",
		file: "internal/coordinator/read.go",
		old:  "\t\tb = a + len(fields[c.key])\n",
		new:  "\t\tb = a + len(fields[c.key]) - 1\n",
		pkgs: []string{"./internal/coordinator"},
		run:  "KeyOrder|Repeats",
	},
	{
		name: "worker: an update-mode task that holds a key twice retried for minutes",
		file: "internal/worker/handler.go",
		old:  " || errors.Is(err, repo.ErrRepeatedKey) {",
		new:  " {",
		pkgs: []string{"./internal/worker"},
		run:  "FailsForGood",
	},
	{
		name: "repo: the DSN's character set kept, so MySQL converts the rows from it",
		file: "repo/repo.go",
		old:  "\tif err := cfg.Apply(mysql.Charset(\"utf8mb4\", \"\")); err != nil {",
		new:  "\tif err := cfg.Apply(); err != nil {",
		pkgs: []string{"./repo"},
		run:  "DSN",
	},
	{
		name: "csvread: a record's line is its last, not its first",
		file: "internal/csvread/csvread.go",
		old:  "rec := Record{Line: raw.line, LastLine: raw.lastLine}",
		new:  "rec := Record{Line: raw.lastLine, LastLine: raw.lastLine}",
		pkgs: []string{"./internal/csvread", "./internal/coordinator", "./cmd/enqueue"},
		run:  "Read|Repeats|Oracle",
	},
	// Repeated keys.
	{
		name: "read: repeated keys not settled",
		file: "internal/coordinator/read.go",
		old:  "if r.seen.testAndAdd(key, rec.Fields) {",
		new:  "if r.seen.testAndAdd(key, rec.Fields) && false {",
		pkgs: []string{"./internal/coordinator", "./cmd/enqueue"},
		run:  "Repeats|Second|OutOfOrder|Chunk|Oracle",
	},
	{
		name: "read: a key equal to the one before counts as ascending",
		file: "internal/coordinator/read.go",
		old:  "if last == nil || bytes.Compare(key, last) > 0 {",
		new:  "if last == nil || bytes.Compare(key, last) >= 0 {",
		pkgs: []string{"./internal/coordinator", "./cmd/enqueue"},
		run:  "Repeats|Second|OutOfOrder|Chunk|Oracle",
	},
	{
		name: "read: the keys before the first out of order are not added",
		file: "internal/coordinator/read.go",
		old:  "\t\t\tr.seen.testAndAdd(rec.Fields[r.kind.KeyIndex()], rec.Fields)\n",
		new:  "",
		pkgs: []string{"./internal/coordinator", "./cmd/enqueue"},
		run:  "Repeats|Second|OutOfOrder|Chunk|Oracle",
	},
	{
		name: "read: the start read again is not checked against the first reading",
		file: "internal/coordinator/read.go",
		old:  "again.n != n || again.h.Sum32() != sum {",
		new:  "again.n != n && sum == 0 {",
		pkgs: []string{"./internal/coordinator", "./cmd/enqueue"},
		run:  "Repeats|Second|OutOfOrder|Chunk|Oracle",
	},
	{
		name: "read: rows sent in file order, not key order",
		file: "internal/coordinator/read.go",
		old:  "\t\tc.unsorted = true\n",
		new:  "",
		pkgs: []string{"./internal/coordinator", "./cmd/enqueue"},
		run:  "Repeats|Second|OutOfOrder|Chunk|Oracle",
	},
	// Writing.
	{
		name: "repo: LOAD DATA warnings ignored",
		file: "repo/import.go",
		old:  "if skipped := t.Rows - int(n); warnings > skipped {",
		new:  "if skipped := t.Rows - int(n); warnings > skipped && false {",
		pkgs: []string{"./repo"},
	},
	{
		name: "repo: LOAD DATA reads the rows as Latin-1 rather than as bytes",
		file: "repo/import.go",
		old:  "CHARACTER SET binary FIELDS",
		new:  "CHARACTER SET latin1 FIELDS",
		pkgs: []string{"./repo"},
		run:  "StoredVerbatim|StrictMode",
	},
	{
		name: "repo: the task's record written after the commit",
		file: "repo/import.go",
		old: `	if err = recordTask(ctx, tx, t, w); err != nil {
		return Written{}, err
	}
	if err = tx.Commit(); err != nil {
		return Written{}, fmt.Errorf("repo: commit task %s: %w", t.ID, err)
	}`,
		new: `	if err = tx.Commit(); err != nil {
		return Written{}, fmt.Errorf("repo: commit task %s: %w", t.ID, err)
	}
	if err = recordTask(ctx, d.db, t, w); err != nil {
		return Written{}, err
	}`,
		pkgs: []string{"./repo"},
	},
	{
		name: "worker: a task MySQL would alter is retried for minutes",
		file: "internal/worker/handler.go",
		old:  " || errors.Is(err, repo.ErrAltered) || ",
		new:  " || ",
		pkgs: []string{"./internal/worker"},
	},
	// Update mode.
	{
		name: "update: every present row counted as updated",
		file: "repo/update.go",
		old:  "\treturn added, updated, true, nil\n",
		new:  "\treturn added, t.Rows - added + 0*updated, true, nil\n",
		pkgs: []string{"./repo", "./cmd/enqueue"},
		run:  "Update|Oracle",
	},
	{
		name: "update: an absent key another program adds after the locking read is counted added, and keeps its values",
		file: "repo/update.go",
		old:  "\t\tif err != nil || added != absent.Rows {\n",
		new:  "\t\tif err != nil {\n",
		pkgs: []string{"./repo"},
		run:  "Update",
	},
	{
		name: "update: a trailing space added or removed compares equal, and is lost",
		file: "repo/update.go",
		old:  "\t\tif !bytes.Equal(stored[i], fields[i]) {\n",
		new:  "\t\tif !bytes.Equal(bytes.TrimRight(stored[i], \" \"), bytes.TrimRight(fields[i], \" \")) {\n",
		pkgs: []string{"./repo"},
		run:  "Update",
	},
	{
		name: "update: the worker loads an update-mode task as a plain import",
		file: "internal/worker/handler.go",
		old:  "Data: data, Update: p.Update})",
		new:  "Data: data})",
		pkgs: []string{"./cmd/enqueue"},
		run:  "Oracle",
	},
	// Resume.
	{
		name: "resume: files changed since the run started are read anyway",
		file: "internal/coordinator/resume.go",
		old:  "if now != p.Files[i] {",
		new:  "if false && now != p.Files[i] {",
		pkgs: []string{"./cmd/enqueue"},
		run:  "Resume",
	},
	{
		name: "resume: a finished run is not marked finished, and can be resumed again",
		file: "internal/coordinator/coordinator.go",
		old:  "\tif err := d.Repo.FinishRun(ctx, cfg.RunID); err != nil {\n\t\treturn nil, err\n\t}\n",
		new:  "",
		pkgs: []string{"./cmd/enqueue"},
		run:  "Resume",
	},
	{
		name: "resume: a task that failed for good is not run again",
		file: "internal/coordinator/coordinator.go",
		old:  "info.State == asynq.TaskStateArchived {",
		new:  "info.State == asynq.TaskStateArchived && false {",
		pkgs: []string{"./cmd/enqueue"},
		run:  "Resume",
	},
	{
		name: "cancel: the run's queued tasks are left in the queue",
		file: "internal/coordinator/runs.go",
		old:  "if err := in.DeleteTask(queue, id); err != nil && !errors.Is(err, asynq.ErrTaskNotFound) {",
		new:  "if err := error(nil); id == \"\" && err != nil && !errors.Is(err, asynq.ErrTaskNotFound) {",
		pkgs: []string{"./cmd/enqueue"},
		run:  "Cancel",
	},
	{
		name: "cancel: a live enqueuer is not asked to stop",
		file: "internal/coordinator/coordinator.go",
		old:  "\t\t\tif cancelled {\n",
		new:  "\t\t\tif cancelled && false {\n",
		pkgs: []string{"./cmd/enqueue"},
		run:  "Cancel",
	},
	// The worker between commit and outcome.
	{
		name: "worker: the outcome not recorded when the commit was a redelivery's",
		file: "internal/worker/handler.go",
		old:  "o := ledger.Outcome{TaskID: id, FirstLine: p.FirstLine, Counts: w.Counts, Worker: h.worker, Concurrency: h.concurrency, Redelivered: w.Redelivered}",
		new:  "o := ledger.Outcome{TaskID: id, FirstLine: p.FirstLine, Counts: w.Counts, Worker: h.worker, Concurrency: h.concurrency}",
		pkgs: []string{"./internal/worker", "./cmd/enqueue"},
		run:  "Crash|Dies|Redeliver|Handler",
	},
}
