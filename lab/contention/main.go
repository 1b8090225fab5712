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
// It works in a database of its own, made with a new name on the server that --mysql names and dropped at the end,
// and removes its Redis keys: it never touches the imports' tables.
//
// The failing sides speak SQL and Redis directly, since they show what repo and ledger exist to prevent; the safe
// sides call repo and ledger themselves. Barriers between goroutines fix the interleaving that goes wrong, so the
// failure does not depend on luck or on the machine's speed.
package main

import (
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/go-sql-driver/mysql"
	"github.com/redis/go-redis/v9"

	"hpnorton/internal/cli"
	"hpnorton/internal/coordinator"
	"hpnorton/internal/ledger"
	"hpnorton/repo"
)

const synopsis = "contention [--mysql DSN] [--redis URL]   (works in a database of its own, made and dropped on the DSN's server)"

func main() {
	cli.RouteDriverLogs()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("contention", flag.ContinueOnError)
	err := cli.Guard(func() error { return demo(ctx, fs, args, stdout) })
	return cli.Exit(ctx, stdout, stderr, fs, synopsis, err)
}

func demo(ctx context.Context, fs *flag.FlagSet, args []string, stdout io.Writer) (err error) {
	var conn cli.Conn
	conn.AddFlags(fs)
	if err := cli.Parse(fs, args); err != nil {
		return err
	}
	rdb, err := cli.OpenRedis(ctx, conn.RedisURL)
	if err != nil {
		return err
	}
	defer rdb.Close()
	// Run IDs, Redis keys and the database's name are new each time, and all contain id.
	id := "contention-" + coordinator.NewRunID()
	dsn, drop, err := ownDatabase(ctx, conn.MySQLDSN, "hpnorton_"+strings.ReplaceAll(id, "-", "_"))
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, drop()) }()
	defer func() { err = errors.Join(err, removeKeys(context.WithoutCancel(ctx), rdb, id)) }()
	db, err := repo.Open(ctx, dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	raw, err := sql.Open("mysql", dsn)
	if err != nil {
		return err
	}
	defer raw.Close()
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

// ownDatabase creates a database of the given name, which must not exist yet, on the server the DSN names, and
// returns a DSN for it and a function that drops it. The demonstrations empty and fill their tables, so they never
// work in the DSN's own database, whatever it is: an operator's HPNORTON_MYSQL_DSN names the imports' database.
func ownDatabase(ctx context.Context, dsn, name string) (string, func() error, error) {
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return "", nil, errors.New("the MySQL DSN cannot be parsed; the expected form is user:password@tcp(host:port)/database")
	}
	cfg.DBName = ""
	server, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		return "", nil, err
	}
	// Plain CREATE DATABASE: a database of that name, however unlikely, is someone else's and stays untouched.
	if _, err := server.ExecContext(ctx, "CREATE DATABASE `"+name+"` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"); err != nil {
		server.Close()
		return "", nil, fmt.Errorf("create the demonstrations' database %s: %w", name, err)
	}
	drop := func() error {
		defer server.Close()
		if _, err := server.ExecContext(context.Background(), "DROP DATABASE `"+name+"`"); err != nil {
			return fmt.Errorf("drop the demonstrations' database %s: %w", name, err)
		}
		return nil
	}
	cfg.DBName = name
	return cfg.FormatDSN(), drop, nil
}

// removeKeys deletes every Redis key that contains id: the demonstrations' results keys and their runs' ledgers.
func removeKeys(ctx context.Context, rdb *redis.Client, id string) error {
	iter := rdb.Scan(ctx, 0, "*"+id+"*", 1000).Iterator()
	for iter.Next(ctx) {
		if err := rdb.Del(ctx, iter.Val()).Err(); err != nil {
			return fmt.Errorf("remove the demonstrations' keys: %w", err)
		}
	}
	return iter.Err()
}
