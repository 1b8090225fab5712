package main

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"net"
	"net/url"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/redis/go-redis/v9"
)

// machine describes what the comparison ran on, read from the machine and the servers themselves, and whether
// the servers shared its cores with the commands: they did when they answer on this machine and run here.
func machine(ctx context.Context, o options) []string {
	model, mem := "an unknown CPU", "?"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.Lines(string(b)) {
			if v, ok := strings.CutPrefix(line, "model name"); ok {
				model = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for line := range strings.Lines(string(b)) {
			if v, ok := strings.CutPrefix(line, "MemTotal:"); ok {
				if kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64); err == nil {
					mem = fmt.Sprintf("%.1f GiB", float64(kb)/(1<<20))
				}
			}
		}
	}
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
	lines := []string{
		fmt.Sprintf("%d cores of %s, %s of memory, %s/%s; %s; MySQL server %s; Redis %s.", runtime.NumCPU(), model, mem,
			runtime.GOOS, runtime.GOARCH, runtime.Version(), mariadb, redisVersion),
	}
	srv := serverPIDs()
	local := func(host string, running bool) bool {
		ip := net.ParseIP(host)
		return running && (host == "localhost" || ip != nil && ip.IsLoopback())
	}
	mysqlHost := "?"
	if cfg, err := mysql.ParseDSN(o.mysqlDSN); err == nil {
		mysqlHost, _, _ = strings.Cut(cfg.Addr, ":")
	}
	redisHost := "?"
	if u, err := url.Parse(o.redisURL); err == nil {
		redisHost = u.Hostname()
	}
	if local(mysqlHost, len(srv[procMariaDB]) > 0) && local(redisHost, len(srv[procRedis]) > 0) {
		lines = append(lines, fmt.Sprintf("The database, Redis, the enqueuer and the workers all ran on this machine and shared its %d cores.", runtime.NumCPU()))
	} else {
		lines = append(lines, fmt.Sprintf("MySQL at %s and Redis at %s; the enqueuer and the workers ran on this machine's %d cores.", mysqlHost, redisHost, runtime.NumCPU()))
	}
	return lines
}

// widestSpread is the largest ratio of slowest to fastest run of one mode at one size, and where it was.
func widestSpread(results []sizeResult) (ratio float64, mode string, rows int) {
	for _, r := range results {
		for _, m := range compareModes {
			if ts := r.times[m]; len(ts) > 1 && slices.Max(ts)/slices.Min(ts) > ratio {
				ratio, mode, rows = slices.Max(ts)/slices.Min(ts), m, r.rows
			}
		}
	}
	return ratio, mode, rows
}

// writeFindings regenerates findings.txt from the comparison just run: every figure in it comes from that run,
// and every statement about the machine from reading it.
func writeFindings(ctx context.Context, path string, levels []level, o options, command string) error {
	var b strings.Builder
	results := levels[0].sizes
	indent := func(text string) {
		for line := range strings.Lines(text) {
			b.WriteString("  " + line)
		}
	}
	last := results[len(results)-1]
	fmt.Fprintf(&b, "hpnorton findings: the parallel import against the linear one, the original row-by-row import and mysqlimport\n")
	fmt.Fprintf(&b, "Written by `%s` on %s. Every figure below comes from that run.\n\n", command, time.Now().UTC().Format("2006-01-02 15:04 MST"))

	fmt.Fprintf(&b, "What ran, and on what\n")
	for _, line := range machine(ctx, o) {
		fmt.Fprintf(&b, "- %s\n", line)
	}
	for _, line := range []string{
		"Modes, on the same generated files (cmd/gendata, every key distinct, no bad row), each into tables of its own, " + heldBy(levels) + ":",
		fmt.Sprintf("lesson-5: the original program's way, one autocommitted INSERT per row, one file after the other, up to %s rows per file.", commas(lesson5Max)),
		fmt.Sprintf("linear: one worker process at concurrency 1. parallel: %d worker processes at concurrency %d.", o.processes, o.concurrency),
		"mysqlimport: MariaDB's bulk loader, `mysqlimport --local`, both files on one connection.",
	} {
		fmt.Fprintf(&b, "%s %s\n", map[bool]string{true: "-", false: " "}[strings.HasPrefix(line, "Modes")], wrap(line, "  "))
	}
	fmt.Fprintf(&b, "- %s\n\n", wrap(fmt.Sprintf("End to end: from starting the import to its end, workers already running. The modes take turns within a round: %d rounds a size, %d under %s rows per file, the lesson-5 style in the first %d. After every run the bench counted the tables, and each held every row; every linear and parallel run reported the tuples (rows, stored, stored + rows) for both files, stored being the rows the tables held before it.",
		o.runs, o.runs*smallFactor, commas(smallBelow), o.runs), "  "))

	fmt.Fprintf(&b, "Seconds: median (fastest–slowest, runs), %s\n", into(levels[0].stored))
	var t strings.Builder
	if err := writeTable(&t, results); err != nil {
		return err
	}
	indent(t.String())
	fmt.Fprintf(&b, "\nGains: ratios of medians (the range of the rounds' own ratios)\n")
	t.Reset()
	if err := writeRatios(&t, results); err != nil {
		return err
	}
	indent(t.String())
	fmt.Fprintf(&b, "- Verdict: a sign test over the rounds. \"parallel faster\" means parallel won so many rounds that a coin would do as\n")
	fmt.Fprintf(&b, "  well less than once in twenty; \"inside the noise\" means the rounds do not tell the modes apart.\n")
	if o.plot != "" {
		fmt.Fprintf(&b, "- The plot: %s.\n", o.plot)
	}
	fmt.Fprintln(&b)

	fmt.Fprintf(&b, "Where the time goes: CPU-seconds per process group, medians over the rounds\n")
	t.Reset()
	if err := writeCompareCPU(&t, results); err != nil {
		return err
	}
	indent(t.String())
	lc, pc := last.cpuMedians("linear"), last.cpuMedians("parallel")
	ours := pc.enqueue + pc.workers + pc.redis
	fmt.Fprintf(&b, "- %s\n", wrap(fmt.Sprintf("At %s rows per file, linear kept %.0f%% of the cores busy and parallel %.0f%%. MariaDB took %.2f CPU-s in linear mode and %.2f in parallel mode; our own processes (enqueuer, workers, Redis) took %.2f and %.2f, %.0f%% of parallel mode's CPU.",
		commas(last.rows), 100*lc.busy, 100*pc.busy, lc.mariaDB, pc.mariaDB, lc.enqueue+lc.workers+lc.redis, ours, 100*ours/(ours+pc.mariaDB)), "  "))
	fmt.Fprintf(&b, "- Profiles of the Go side: `make profile` writes pprof text under docs/ (not figures of this run).\n\n")

	fmt.Fprintf(&b, "Recommendation\n")
	decision, evidence := recommendation(results)
	fmt.Fprintf(&b, "- %s\n", wrap(decision, "  "))
	for _, e := range evidence {
		fmt.Fprintf(&b, "- %s\n", wrap(e, "  "))
	}
	writeAgainstMysqlimport(&b, results)
	// Each level's own decision, by the same rule; where they differ, the findings say which applies.
	disagree := false
	for _, l := range levels[1:] {
		d, _ := recommendation(l.sizes)
		disagree = disagree || kindOf(d) != kindOf(decision)
		fmt.Fprintf(&b, "- %s\n", wrap(fmt.Sprintf("%s, by the same rule: %s", sentence(into(l.stored)), lowerFirst(d)), "  "))
	}
	if disagree {
		fmt.Fprintf(&b, "- %s\n", wrap("The two disagree. HP Norton's tables already hold millions of rows, so the full tables' result is the one its imports meet; where it rests on a size whose rounds were inside the noise, more rounds (RUNS=10 make compare) should settle it before anything is switched.", "  "))
	}
	for i := len(results) - 1; i >= 0; i-- {
		if r := results[i]; r.median(modeLesson5) > 0 {
			lesson5, parallel := r.paired(modeLesson5, "parallel")
			text := fmt.Sprintf("Against the original program at %s rows per file, over the %d rounds it ran: %.3f s against %.3f s for parallel, %.0f× the time, and %.0f× linear mode's: batching gives most of the gain",
				commas(r.rows), len(r.times[modeLesson5]), lesson5, parallel, r.ratio(modeLesson5, "parallel"), r.ratio(modeLesson5, "linear"))
			if r.speedup() > 1 {
				text += ", parallelism the rest"
			}
			fmt.Fprintf(&b, "- %s\n", wrap(text+".", "  "))
			break
		}
	}
	for _, l := range levels[1:] {
		if err := writeStoredLevel(&b, levels[0], l); err != nil {
			return err
		}
	}
	fmt.Fprintf(&b, "\nWhat these figures can and cannot carry\n")
	var all []sizeResult
	for _, l := range levels {
		all = append(all, l.sizes...)
	}
	spread, mode, rows := widestSpread(all)
	fmt.Fprintf(&b, "- %s\n", wrap(fmt.Sprintf("The machine is shared: runs of one mode at one size differed by up to %.2f× between the fastest and the slowest (%s at %s rows per file). One run proves little: the verdicts weigh every round instead.", spread, modeName(mode), commas(rows)), "  "))
	fmt.Fprintf(&b, "- %s\n", wrap("One machine, with the database on the same cores as the import: a database host of its own would change the balance, and was not measured.", "  "))
	fmt.Fprintf(&b, "- %s\n", wrap(fmt.Sprintf("Sizes above %s rows per file were not run; the fitted lines extend to them only as an estimate. Files with bad or repeated rows, and re-imports, are measured elsewhere (make bench-reimport, make bench-memory).", commas(last.rows)), "  "))
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

// orNone joins a list of sizes, or says there were none.
func orNone(xs []string) string {
	if len(xs) == 0 {
		return "no size"
	}
	return strings.Join(xs, "; ")
}

// commas writes a whole number with thousands separators, as the prose of the findings quotes sizes.
func commas(n int) string {
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// wrap folds text at 116 columns, continuing lines with indent.
func wrap(text, indent string) string {
	var b bytes.Buffer
	col := 0
	for i, word := range strings.Fields(text) {
		if i > 0 && col+1+len([]rune(word)) > 116 {
			b.WriteString("\n" + indent)
			col = len(indent)
		} else if i > 0 {
			b.WriteByte(' ')
			col++
		}
		b.WriteString(word)
		col += len([]rune(word))
	}
	return b.String()
}

// heldBy says what the tables held before each import, over every level: "empty, then holding 5,000,000 rows".
func heldBy(levels []level) string {
	parts := make([]string, len(levels))
	for i, l := range levels {
		parts[i] = "holding " + commas(l.stored) + " rows"
		if l.stored == 0 {
			parts[i] = "empty"
		}
	}
	return strings.Join(parts, ", then ")
}

// into names a level's tables: "into empty tables", "into tables that already held 5,000,000 rows each".
func into(stored int) string {
	if stored == 0 {
		return "into empty tables"
	}
	return "into tables that already held " + commas(stored) + " rows each"
}

// writeStoredLevel is the findings' section for a level whose tables held rows: its seconds and gains, and the
// small file, the everyday import, against the same file into the first level's tables.
func writeStoredLevel(b *strings.Builder, first, l level) error {
	fmt.Fprintf(b, "\n%s\n", sentence(strings.TrimPrefix(into(l.stored), "into ")))
	fmt.Fprintf(b, "Seconds: median (fastest–slowest, runs)\n")
	var t strings.Builder
	if err := writeTable(&t, l.sizes); err != nil {
		return err
	}
	for line := range strings.Lines(t.String()) {
		b.WriteString("  " + line)
	}
	fmt.Fprintf(b, "Gains: ratios of medians (the range of the rounds' own ratios)\n")
	t.Reset()
	if err := writeRatios(&t, l.sizes); err != nil {
		return err
	}
	for line := range strings.Lines(t.String()) {
		b.WriteString("  " + line)
	}
	small, base := l.sizes[0], first.sizes[0]
	var parts []string
	for _, m := range []string{"linear", "parallel", "mysqlimport"} {
		if small.median(m) > 0 && base.median(m) > 0 {
			parts = append(parts, fmt.Sprintf("%s %.0f ms (%.2f× its %.0f ms %s)", modeName(m), 1000*small.median(m),
				small.median(m)/base.median(m), 1000*base.median(m), into(first.stored)))
		}
	}
	text := fmt.Sprintf("The everyday import, 2 × %s rows %s: %s.", commas(small.rows), into(l.stored), strings.Join(parts, "; "))
	fmt.Fprintf(b, "- %s\n", wrap(text, "  "))
	_, evidence := recommendation(l.sizes) // the decision itself is in the findings' recommendation
	for _, e := range evidence {
		fmt.Fprintf(b, "- %s\n", wrap(e, "  "))
	}
	writeAgainstMysqlimport(b, l.sizes)
	for _, r := range l.sizes {
		if r.verdict() == slower {
			fmt.Fprintf(b, "- %s\n", wrap(fmt.Sprintf("Parallel was slower than linear beyond the noise at %s rows per file (linear / parallel %.2f×).", commas(r.rows), r.speedup()), "  "))
		}
	}
	return nil
}

// writeAgainstMysqlimport says at which sizes parallel mode was faster than mysqlimport and at which slower. Each
// level of stored rows says it: a manager who reads only the bullets must not take the empty tables' result for the
// full tables' one.
func writeAgainstMysqlimport(b *strings.Builder, results []sizeResult) {
	var ahead, behind []string
	for _, r := range results {
		if x := r.ratio("mysqlimport", "parallel"); x >= 1 {
			ahead = append(ahead, fmt.Sprintf("%s rows per file (%.2f×)", commas(r.rows), x))
		} else if x > 0 {
			behind = append(behind, fmt.Sprintf("%s rows per file (%.2f×)", commas(r.rows), x))
		}
	}
	if len(ahead)+len(behind) > 0 {
		text := "Against mysqlimport --local, in medians: parallel was faster at " + orNone(ahead) + ", and slower at " + orNone(behind) + "."
		fmt.Fprintf(b, "- %s\n", wrap(text, "  "))
	}
}

// kindOf is which of recommendation's three decisions d is: its first words.
func kindOf(d string) string {
	switch {
	case strings.HasPrefix(d, "Keep"):
		return "keep"
	case strings.Contains(d, "for every import"):
		return "every"
	}
	return "above"
}

// lowerFirst starts a sentence in lower case, to follow a colon.
func lowerFirst(s string) string {
	if s == "" {
		return ""
	}
	return strings.ToLower(s[:1]) + s[1:]
}
