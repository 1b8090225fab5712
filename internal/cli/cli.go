// Package cli holds what the enqueue and worker commands share: the connection flags and their environment
// defaults, opening Redis, setting up slog, and the exit statuses.
package cli

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"runtime/pprof"
	"strings"
	"sync/atomic"

	"github.com/go-sql-driver/mysql"
	"github.com/redis/go-redis/v9"
)

// Exit statuses, the same for every command.
const (
	// ExitOK: the work is done; for enqueue, every row landed or was already present.
	ExitOK = 0
	// ExitRejected: the run finished, but some rows or files were rejected.
	ExitRejected = 1
	// ExitError: a usage error, or an infrastructure failure such as an unreachable Redis or MySQL.
	ExitError = 2
)

// Defaults, each overridden by its environment variable and then by its flag.
const (
	DefaultRedisURL = "redis://127.0.0.1:6379/0"
	DefaultMySQLDSN = "root@tcp(127.0.0.1:3306)/hpnorton"
	DefaultQueue    = "hpnorton"
)

// Conn holds the connection settings both commands take.
type Conn struct {
	RedisURL string
	MySQLDSN string
	Queue    string
	// LogFormat is "text" or "json".
	LogFormat string
}

// WorkerCommand is the command line that starts a worker on the same Redis, MySQL database and queue, with the
// passwords masked, for hints that a person copies.
func (c Conn) WorkerCommand() string { return c.Command("worker") }

// Command is the command line of prog on the same Redis, MySQL database and queue, then args, with the passwords
// masked and every value quoted for a shell.
func (c Conn) Command(prog string, args ...string) string {
	redisURL := c.RedisURL
	if u, err := url.Parse(redisURL); err == nil {
		redisURL = u.Redacted()
	}
	dsn := c.MySQLDSN
	if cfg, err := mysql.ParseDSN(dsn); err == nil {
		if cfg.Passwd != "" {
			cfg.Passwd = "xxxxx"
		}
		dsn = cfg.FormatDSN()
	}
	quote := func(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }
	line := fmt.Sprintf("%s --redis %s --mysql %s --queue %s", prog, quote(redisURL), quote(dsn), quote(c.Queue))
	for _, a := range args {
		if strings.HasPrefix(a, "--") {
			line += " " + a
		} else {
			line += " " + quote(a)
		}
	}
	return line
}

// AddFlags registers --redis, --mysql, --queue and --log-format on fs, with defaults from HPNORTON_REDIS_URL,
// HPNORTON_MYSQL_DSN, HPNORTON_QUEUE and HPNORTON_LOG_FORMAT.
func (c *Conn) AddFlags(fs *flag.FlagSet) {
	c.AddRedisFlags(fs)
	fs.StringVar(&c.MySQLDSN, "mysql", DefaultMySQLDSN, "MySQL `DSN` to import into; the database is created if absent (env HPNORTON_MYSQL_DSN)")
	c.MySQLDSN = cmp.Or(os.Getenv("HPNORTON_MYSQL_DSN"), c.MySQLDSN) // after the flag, so -h never shows its password
	fs.StringVar(&c.Queue, "queue", cmp.Or(os.Getenv("HPNORTON_QUEUE"), DefaultQueue), "asynq `queue` the import tasks travel on (env HPNORTON_QUEUE)")
}

// AddRedisFlags registers only --redis and --log-format, for a command that needs no MySQL.
func (c *Conn) AddRedisFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.RedisURL, "redis", DefaultRedisURL, "Redis `URL` holding the queue and the results (env HPNORTON_REDIS_URL)")
	c.RedisURL = cmp.Or(os.Getenv("HPNORTON_REDIS_URL"), c.RedisURL) // after the flag, so -h never shows its password
	fs.StringVar(&c.LogFormat, "log-format", cmp.Or(os.Getenv("HPNORTON_LOG_FORMAT"), "text"), "log `format` on standard error: text or json (env HPNORTON_LOG_FORMAT)")
}

// UsageError is a mistake in the command line; commands print it with their usage and exit with ExitError.
type UsageError struct{ Msg string }

func (e *UsageError) Error() string { return e.Msg }

// Parse parses args into fs and turns its failures into a *UsageError, or flag.ErrHelp for -h. Flags may come
// before and after the arguments, as people type them (enqueue DIR --json); "--" ends the flags, and everything
// after it is an argument. The standard flag package alone stops at the first argument.
func Parse(fs *flag.FlagSet, args []string) error {
	fs.SetOutput(io.Discard) // the caller prints usage once, where it prints every other error
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return err
			}
			return &UsageError{Msg: err.Error()}
		}
		rest := fs.Args()
		if len(rest) == 0 {
			break
		}
		if used := len(args) - len(rest); used > 0 && args[used-1] == "--" {
			positional = append(positional, rest...) // after "--", all are arguments
			break
		}
		positional, args = append(positional, rest[0]), rest[1:]
	}
	// fs.Args() is what the last Parse left; parsing "--" and the arguments sets it to the arguments.
	return fs.Parse(append([]string{"--"}, positional...))
}

// EnvDefault sets flag name from the environment variable env when it is set, so that the command line still
// overrides it; a malformed value is a usage error naming the variable.
func EnvDefault(fs *flag.FlagSet, name, env string) error {
	v := os.Getenv(env)
	if v == "" {
		return nil
	}
	if err := fs.Set(name, v); err != nil {
		return &UsageError{Msg: fmt.Sprintf("%s=%q: %v", env, v, err)}
	}
	return nil
}

// WantsUsage reports whether err calls for the command's usage: -h, or a usage error.
func WantsUsage(err error) bool {
	var uerr *UsageError
	return errors.Is(err, flag.ErrHelp) || errors.As(err, &uerr)
}

// Usage writes fs's flags to w, as -h shows them.
func Usage(w io.Writer, fs *flag.FlagSet, synopsis string) {
	fmt.Fprintf(w, "usage: %s\n", synopsis)
	fs.SetOutput(w)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
}

// NewLogger returns a slog logger writing to w in the given format. After RouteDriverLogs, the Redis and MySQL
// clients' own messages, such as a failed dial, go to it too, at warning level.
func NewLogger(w io.Writer, format string) (*slog.Logger, error) {
	var log *slog.Logger
	switch strings.ToLower(format) {
	case "text", "":
		log = slog.New(slog.NewTextHandler(w, nil))
	case "json":
		log = slog.New(slog.NewJSONHandler(w, nil))
	default:
		return nil, &UsageError{Msg: fmt.Sprintf("unknown log format %q (want text or json)", format)}
	}
	if routeDrivers.Load() {
		driverLog.Store(log)
	}
	return log, nil
}

// RouteDriverLogs makes NewLogger's logger receive the Redis and MySQL clients' messages. Each client has one
// logger per process, so only a command's main calls it; tests that run several commands in one process leave the
// messages with slog's default logger.
func RouteDriverLogs() { routeDrivers.Store(true) }

var (
	routeDrivers atomic.Bool
	// driverLog is where the clients' messages go; until a command makes its logger, slog's default.
	driverLog atomic.Pointer[slog.Logger]
)

// The clients keep their logger in a plain variable that every connection reads, so it is set once, here, before
// any connection exists, and the logger behind it changes through driverLog.
func init() {
	redis.SetLogger(driverLogger{})
	_ = mysql.SetLogger(driverLogger{}) // refuses only a nil logger
}

// driverLogger routes go-redis's (Printf) and the MySQL driver's (Print) messages to slog.
type driverLogger struct{}

func (driverLogger) logger() *slog.Logger { return cmp.Or(driverLog.Load(), slog.Default()) }

// Printf is go-redis's; its messages start with "redis: ". During a command's first contact with Redis they are
// left out: a Redis that is down made each command print four "failed to dial" warnings before the one error that
// says so.
func (d driverLogger) Printf(ctx context.Context, format string, v ...any) {
	if firstContact.Load() {
		return
	}
	d.logger().WarnContext(ctx, fmt.Sprintf(format, v...))
}

// firstContact is set while OpenRedis waits for Redis's first answer.
var firstContact atomic.Bool

// Print is the MySQL driver's.
func (d driverLogger) Print(v ...any) { d.logger().Warn("mysql: " + fmt.Sprint(v...)) }

// OpenRedis connects to the Redis URL and checks that it answers. Errors never repeat the URL, which may hold a
// password.
func OpenRedis(ctx context.Context, url string) (*redis.Client, error) {
	opt, err := redis.ParseURL(url)
	if err != nil {
		return nil, &UsageError{Msg: "the Redis URL cannot be parsed; the expected form is redis://[:password@]host:port/db"}
	}
	rdb := redis.NewClient(opt)
	firstContact.Store(true)
	err = rdb.Ping(ctx).Err()
	if err != nil {
		rdb.Close() // before the warnings come back: its pool dials no more
	}
	firstContact.Store(false)
	if err != nil {
		return nil, fmt.Errorf("cannot reach Redis at %s (db %d): %w", opt.Addr, opt.DB, err)
	}
	return rdb, nil
}

// Guard calls fn and turns a panic into an error, so that a bug ends the command with a one-line message and
// ExitError instead of a stack trace.
func Guard(fn func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("internal error, please report it: %v", r)
		}
	}()
	return fn()
}

// Exit prints a command's error the one way every command does, with the usage when the error calls for it, and
// returns the exit status.
func Exit(stderr io.Writer, fs *flag.FlagSet, synopsis string, err error) int {
	code, msg := ExitCode(err)
	if msg != "" {
		fmt.Fprintf(stderr, "%s: %s\n", fs.Name(), msg)
	}
	if WantsUsage(err) {
		Usage(stderr, fs, synopsis)
	}
	return code
}

// ExitCode maps an error from a command's run to its exit status and the message to print, if any.
func ExitCode(err error) (int, string) {
	var uerr *UsageError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return ExitOK, ""
	case errors.As(err, &uerr):
		return ExitError, "usage error: " + uerr.Msg
	}
	return ExitError, "error: " + err.Error()
}

// StartCPUProfile writes a CPU profile of the process to path until the returned stop is called.
func StartCPUProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}
