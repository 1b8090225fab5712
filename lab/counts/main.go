// Command counts measures the ways a run can count a table's rows exactly, and what each costs a load: COUNT(*)
// through the clustered index, COUNT(*) through a narrow secondary index, and repo's count (import_counts, kept by
// the tasks and by triggers for other writers). It prints the median of several rounds of each, with the range.
//
// The counts are taken on a table that holds -rows rows; the loads are LOAD DATA of a generated file of -load rows
// into an empty table, with no trigger, with repo's triggers as hpnorton's connections meet them (the session
// variable set, so the triggers only test it), with the triggers counting each row (another program's load), and
// with no trigger but the narrow index. The modes take turns within each round. Every database it makes is dropped.
package main

import (
	"cmp"
	"context"
	"database/sql"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/go-sql-driver/mysql"

	"hpnorton/internal/gen"
	"hpnorton/internal/record"
	"hpnorton/lab/labdb"
	"hpnorton/repo"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "counts:", err)
		os.Exit(1)
	}
}

type options struct {
	dsn              string
	rows, load, runs int
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	var o options
	fs := flag.NewFlagSet("counts", flag.ContinueOnError)
	fs.StringVar(&o.dsn, "mysql", cmp.Or(os.Getenv("HPNORTON_MYSQL_DSN"), "root@tcp(127.0.0.1:3306)/"), "MySQL `DSN` of the server; the study makes databases of its own there")
	fs.IntVar(&o.rows, "rows", 5_000_000, "rows of the table that is counted")
	fs.IntVar(&o.load, "load", 300_000, "rows of each load")
	fs.IntVar(&o.runs, "runs", 5, "rounds")
	if err := fs.Parse(args); err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "hpnorton-counts-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if err := gen.WriteDir(dir, o.load, gen.Options{}); err != nil {
		return err
	}
	file := filepath.Join(dir, record.Customers.FileName())
	mysql.RegisterLocalFile(file)

	prefix := fmt.Sprintf("hpnorton_lab_counts_%d_", os.Getpid())
	dbs := map[string]*sql.DB{}
	defer func() {
		for _, db := range dbs {
			_ = labdb.Drop(context.WithoutCancel(ctx), db)
			db.Close()
		}
	}()
	open := func(name string) (*sql.DB, error) {
		cfg, err := mysql.ParseDSN(o.dsn)
		if err != nil {
			return nil, err
		}
		cfg.DBName = prefix + name
		r, err := repo.Open(ctx, cfg.FormatDSN()) // the schema
		if err != nil {
			return nil, err
		}
		defer r.Close()
		if err := r.KeepCounts(ctx); err != nil { // the counting triggers, on the empty tables
			return nil, err
		}
		db, err := labdb.Open(cfg.FormatDSN())
		if err != nil {
			return nil, err
		}
		dbs[name] = db
		return db, nil
	}
	counted, err := open("counted")
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "filling a table with %d rows…\n", o.rows)
	start := time.Now()
	if err := labdb.Prefill(ctx, counted, "customers", o.rows); err != nil {
		return err
	}
	if _, err := counted.ExecContext(ctx, "ALTER TABLE customers ADD INDEX lab_narrow (zip_code)"); err != nil {
		return err
	}
	if _, err := labdb.Settle(ctx, counted, prefix, time.Minute); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "filled and indexed in %.1f s\n\n", time.Since(start).Seconds())
	counts, err := countStudy(ctx, counted, o)
	if err != nil {
		return err
	}

	loads := map[string]*sql.DB{}
	for _, name := range []string{"plain", "triggers", "narrow"} {
		db, err := open(name)
		if err != nil {
			return err
		}
		loads[name] = db
	}
	for _, name := range []string{"plain", "narrow"} {
		if err := labdb.DropCountTriggers(ctx, loads[name]); err != nil {
			return err
		}
	}
	if _, err := loads["narrow"].ExecContext(ctx, "ALTER TABLE customers ADD INDEX lab_narrow (zip_code)"); err != nil {
		return err
	}
	loadTimes, err := loadStudy(ctx, loads, file, o)
	if err != nil {
		return err
	}
	return report(stdout, o, counts, loadTimes)
}

// countStudy times each way of counting the filled table, in turn, once a round.
func countStudy(ctx context.Context, db *sql.DB, o options) (map[string][]float64, error) {
	ways := []struct{ name, query string }{
		{"COUNT(*), clustered index", "SELECT COUNT(*) FROM customers FORCE INDEX (PRIMARY)"},
		{"COUNT(*), narrow index", "SELECT COUNT(*) FROM customers FORCE INDEX (lab_narrow)"},
		{"import_counts (repo.Count)", "SELECT COALESCE(SUM(n), 0) FROM import_counts WHERE tbl = 'customers'"},
	}
	times := map[string][]float64{}
	for range o.runs {
		for _, w := range ways {
			var n int64
			start := time.Now()
			if err := db.QueryRowContext(ctx, w.query).Scan(&n); err != nil {
				return nil, fmt.Errorf("%s: %w", w.name, err)
			}
			times[w.name] = append(times[w.name], time.Since(start).Seconds())
			if n != int64(o.rows) {
				return nil, fmt.Errorf("%s counted %d rows, want %d", w.name, n, o.rows)
			}
		}
	}
	return times, nil
}

// loadModes are the loads, each into an empty table of the database named.
// counted is whether the load's connection sets @hpnorton_counted; countedBy is whether the triggers count its
// rows.
var loadModes = []struct {
	name, db           string
	counted, countedBy bool
}{
	{"no trigger", "plain", false, false},
	{"triggers, hpnorton's load (skipped)", "triggers", true, false},
	{"triggers, another program's load (counted)", "triggers", false, true},
	{"no trigger, narrow index", "narrow", false, false},
}

// loadStudy times LOAD DATA of the file in each mode, in turn, and every other round in reverse.
func loadStudy(ctx context.Context, dbs map[string]*sql.DB, file string, o options) (map[string][]float64, error) {
	times := map[string][]float64{}
	for r := range o.runs {
		order := slices.Clone(loadModes)
		if r%2 == 1 {
			slices.Reverse(order)
		}
		for _, m := range order {
			s, err := loadOnce(ctx, dbs[m.db], file, m.counted, m.countedBy, o.load)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", m.name, err)
			}
			times[m.name] = append(times[m.name], s)
		}
	}
	return times, nil
}

func loadOnce(ctx context.Context, db *sql.DB, file string, counted, countedBy bool, rows int) (float64, error) {
	if err := labdb.Reset(ctx, db); err != nil {
		return 0, err
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	set := "SET @hpnorton_counted = NULL"
	if counted {
		set = "SET @hpnorton_counted = 1"
	}
	if _, err := conn.ExecContext(ctx, set); err != nil {
		return 0, err
	}
	start := time.Now()
	res, err := conn.ExecContext(ctx, "LOAD DATA LOCAL INFILE '"+file+"' INTO TABLE customers CHARACTER SET utf8mb4 "+
		`FIELDS TERMINATED BY ',' OPTIONALLY ENCLOSED BY '"' ESCAPED BY '' LINES TERMINATED BY '\n' IGNORE 1 LINES`)
	if err != nil {
		return 0, err
	}
	took := time.Since(start).Seconds()
	if n, err := res.RowsAffected(); err != nil || n != int64(rows) {
		return 0, cmp.Or(err, fmt.Errorf("loaded %d rows, want %d", n, rows))
	}
	// The triggers counted the rows of the load they count, and no other.
	var sum int64
	if err := conn.QueryRowContext(ctx, "SELECT COALESCE(SUM(n), 0) FROM import_counts WHERE tbl = 'customers'").Scan(&sum); err != nil {
		return 0, err
	}
	if want := map[bool]int64{true: int64(rows)}[countedBy]; sum != want {
		return 0, fmt.Errorf("the count after the load is %d, want %d", sum, want)
	}
	return took, nil
}

func median(xs []float64) float64 {
	s := slices.Sorted(slices.Values(xs))
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func report(w io.Writer, o options, counts, loads map[string][]float64) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "count of %d rows\tmedian ms\tfastest–slowest ms\truns\t\n", o.rows)
	for _, name := range []string{"COUNT(*), clustered index", "COUNT(*), narrow index", "import_counts (repo.Count)"} {
		t := counts[name]
		fmt.Fprintf(tw, "%s\t%.2f\t%.2f–%.2f\t%d\t\n", name, 1000*median(t), 1000*slices.Min(t), 1000*slices.Max(t), len(t))
	}
	fmt.Fprintln(tw, "\t\t\t\t")
	base := median(loads[loadModes[0].name])
	fmt.Fprintf(tw, "LOAD DATA of %d rows into an empty table\tmedian ms\tfastest–slowest ms\tvs no trigger\t\n", o.load)
	for _, m := range loadModes {
		t := loads[m.name]
		fmt.Fprintf(tw, "%s\t%.0f\t%.0f–%.0f\t%+.0f%%\t\n", m.name, 1000*median(t), 1000*slices.Min(t), 1000*slices.Max(t), 100*(median(t)/base-1))
	}
	return tw.Flush()
}
