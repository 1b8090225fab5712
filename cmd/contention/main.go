// Command contention shows three ways a parallel import fails through contention, each made to happen for
// certain, and then the way the running system avoids it, succeeding on the same work:
//
//  1. two workers insert overlapping keys in opposite orders inside transactions, and MySQL kills one with
//     deadlock error 1213; repo.ImportTask sorts each chunk's keys, so the same two chunks queue on each other's
//     locks instead, and it retries a deadlock anyway;
//  2. workers count a table before and after their own writes while another worker writes, and find
//     before + processed != after; the coordinator counts once before the run and once after every task, and
//     each task reports only what it processed;
//  3. workers read the shared results, add their count and write them back, and one update is lost; the ledger
//     adds a task's count inside Redis, atomically, once per task.
//
// The failing sides speak SQL and Redis directly, since they show what repo and ledger exist to prevent; the safe
// sides call repo and ledger themselves. Barriers between goroutines fix the interleaving that goes wrong, so the
// failure does not depend on luck or on the machine's speed.
package main

import (
	"context"
	"database/sql"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"hpnorton/internal/cli"
	"hpnorton/internal/coordinator"
	"hpnorton/internal/ledger"
	"hpnorton/repo"
)

const synopsis = "contention [--mysql DSN] [--redis URL]   (the database hpnorton_contention by default; it empties its tables)"

// defaultDSN is the demonstrations' own database, so that they never empty the imports' tables.
const defaultDSN = "root@tcp(127.0.0.1:3306)/hpnorton_contention"

func main() {
	cli.RouteDriverLogs()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("contention", flag.ContinueOnError)
	return cli.Exit(stderr, fs, synopsis, cli.Guard(func() error { return demo(ctx, fs, args, stdout) }))
}

func demo(ctx context.Context, fs *flag.FlagSet, args []string, stdout io.Writer) error {
	var conn cli.Conn
	conn.AddFlags(fs)
	// Its own database by default: the demonstrations empty their tables.
	if os.Getenv("HPNORTON_MYSQL_DSN") == "" {
		conn.MySQLDSN = defaultDSN
	}
	if err := cli.Parse(fs, args); err != nil {
		return err
	}
	rdb, err := cli.OpenRedis(ctx, conn.RedisURL)
	if err != nil {
		return err
	}
	defer rdb.Close()
	db, err := repo.Open(ctx, conn.MySQLDSN)
	if err != nil {
		return err
	}
	defer db.Close()
	raw, err := sql.Open("mysql", conn.MySQLDSN) // repo.Open has created the database
	if err != nil {
		return err
	}
	defer raw.Close()
	// Run IDs and keys start with the queue's name, as an import's do, and are new each time.
	id := conn.Queue + "-contention-" + coordinator.NewRunID()
	s := &stage{db: db, raw: raw, rdb: rdb, ledger: ledger.New(rdb), runPrefix: id, keyPrefix: "hpnorton:" + id + ":"}

	d, err := s.deadlock(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "1. Overlapping keys in opposite orders, in two transactions\n")
	fmt.Fprintf(stdout, "   unsafe: %s\n", d.Unsafe)
	fmt.Fprintf(stdout, "   safe:   %s\n\n", d.Safe)

	c, err := s.counts(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "2. Counting before and after while others write\n")
	fmt.Fprintf(stdout, "   unsafe: %s\n", c.Unsafe)
	fmt.Fprintf(stdout, "   safe:   %s\n\n", c.Safe)

	l, err := s.lostUpdate(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "3. Read, modify and write of a shared results key\n")
	fmt.Fprintf(stdout, "   unsafe: %s\n", l.Unsafe)
	fmt.Fprintf(stdout, "   safe:   %s\n", l.Safe)
	return nil
}
