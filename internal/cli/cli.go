// Package cli holds what the commands share: the connection flags and their environment defaults, parsing and
// help (flags.go), opening Redis, setting up slog, and the exit statuses (exit.go).
package cli

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/go-sql-driver/mysql"
	"github.com/redis/go-redis/v9"

	"hpnorton/repo"
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
func (c Conn) WorkerCommand() string { return c.Command(Sibling("worker")) }

// Sibling is how a person starts the command prog installed beside this one: bin/worker when this command runs as
// bin/enqueue, as make build puts them, and plain worker when this one was found on the PATH or has no such
// neighbour (go run, go test).
func Sibling(prog string) string {
	self := os.Args[0]
	if !strings.ContainsRune(self, filepath.Separator) {
		return prog
	}
	path := filepath.Join(filepath.Dir(self), prog)
	if _, err := os.Stat(path); err != nil {
		return prog
	}
	if !strings.ContainsRune(path, filepath.Separator) {
		return "./" + path // bin/.. or ./enqueue: a bare name would be looked up on the PATH
	}
	return path
}

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

// AddFlags registers --redis, --mysql, --queue and --log-format on fs. Parse sets each from its environment
// variable, HPNORTON_REDIS_URL, HPNORTON_MYSQL_DSN, HPNORTON_QUEUE and HPNORTON_LOG_FORMAT, when its flag is not
// given; the defaults --help shows are the constants, never a password from the environment.
func (c *Conn) AddFlags(fs *flag.FlagSet) {
	c.AddRedisFlags(fs)
	fs.StringVar(&c.MySQLDSN, "mysql", DefaultMySQLDSN, "MySQL `DSN` to import into; the database is created if absent (env HPNORTON_MYSQL_DSN)")
	fs.StringVar(&c.Queue, "queue", DefaultQueue, "asynq `queue` the import tasks travel on (env HPNORTON_QUEUE)")
}

// AddRedisFlags registers only --redis and --log-format, for a command that needs no MySQL.
func (c *Conn) AddRedisFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.RedisURL, "redis", DefaultRedisURL, "Redis `URL` holding the queue and the results (env HPNORTON_REDIS_URL)")
	fs.StringVar(&c.LogFormat, "log-format", "text", "log `format` on standard error: text or json (env HPNORTON_LOG_FORMAT)")
}

// Check refuses, before anything connects, a Redis URL or MySQL DSN that cannot be parsed or a log format that
// does not exist: usage errors that name the flag or the variable the value came from, and the form wanted. A
// URL's or DSN's value is never repeated, since it may hold a password.
func (c *Conn) Check(fs *flag.FlagSet) error {
	if _, err := redis.ParseURL(c.RedisURL); err != nil {
		return Invalid(fs, "redis", "the Redis URL cannot be parsed; the expected form is redis://[:password@]host:port/db")
	}
	if fs.Lookup("mysql") != nil {
		if _, err := repo.ParseDSN(c.MySQLDSN); err != nil {
			return Invalid(fs, "mysql", err.Error())
		}
	}
	if f := strings.ToLower(c.LogFormat); f != "text" && f != "json" {
		return Invalid(fs, "log-format", fmt.Sprintf("%q: want text or json", c.LogFormat))
	}
	if fs.Lookup("queue") != nil && !queueName.MatchString(c.Queue) {
		return Invalid(fs, "queue", fmt.Sprintf("%q: want a name of letters, digits, '.', '_', '-' or ':'", c.Queue))
	}
	return nil
}

// queueName is what --queue takes. The queue's name is part of Redis keys and of the monitor's pages and URLs, and
// an empty one or one with spaces makes names that nobody types back: ".1f2e3d" or "a b.1f2e3d".
var queueName = regexp.MustCompile(`^[A-Za-z0-9._:-]+$`)

// CheckAddr is the usage error for a listening address that is not host:port with a numeric port, or nil; name is
// its flag. The empty host listens on every interface, as net.Listen has it.
func CheckAddr(fs *flag.FlagSet, name, addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err == nil {
		_, err = strconv.ParseUint(port, 10, 16)
	}
	if err != nil {
		return Invalid(fs, name, fmt.Sprintf("%q: want host:port, such as 127.0.0.1:8080", addr))
	}
	return nil
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
		return nil, &UsageError{Msg: fmt.Sprintf("unknown log format %q: want text or json", format)}
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
