// Package testenv gives each test its own slice of the real Redis and MySQL: a fresh MySQL database, and a Redis key
// namespace that serves as both the asynq queue name and the run ID prefix. Everything is removed when the test
// ends.
//
// The servers' addresses come from HPNORTON_TEST_REDIS_URL and HPNORTON_TEST_MYSQL_DSN, defaulting to the local
// ones. A test whose server cannot be reached is skipped with the reason, unless HPNORTON_REQUIRE_SERVICES is set,
// as CI sets it: then it fails.
package testenv

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/redis/go-redis/v9"
)

// Defaults for the test servers: the local ones this machine and CI run. The Redis URL names the server; each test
// process leases one of its databases 1 to 15 (claim.go), away from the default database 0 that a user's own runs
// use.
const (
	DefaultRedisURL = "redis://127.0.0.1:6379/15"
	DefaultMySQLDSN = "root@tcp(127.0.0.1:3306)/"
)

func unavailable(tb testing.TB, what string, err error) {
	tb.Helper()
	if os.Getenv("HPNORTON_REQUIRE_SERVICES") != "" {
		tb.Fatalf("%s is required (HPNORTON_REQUIRE_SERVICES is set) but unreachable: %v", what, err)
	}
	tb.Skipf("skipping: %s unreachable (%v); set HPNORTON_REQUIRE_SERVICES=1 to fail instead", what, err)
}

var unsafeChars = regexp.MustCompile(`[^a-zA-Z0-9]+`)

// Namespace returns a name unique to this test, usable as an asynq queue, a run ID prefix and a database name.
func Namespace(tb testing.TB) string {
	var b [4]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	name := strings.ToLower(strings.Trim(unsafeChars.ReplaceAllString(tb.Name(), "_"), "_"))
	if len(name) > 40 {
		name = name[:40]
	}
	return "t_" + name + "_" + hex.EncodeToString(b[:])
}

// Redis returns a client on the test Redis. When the test ends it deletes every key that contains ns, which
// covers the asynq queues whose names start with ns and the runs whose IDs start with ns.
func Redis(tb testing.TB, ns string) *redis.Client {
	tb.Helper()
	l := claim()
	if l.err != nil {
		unavailable(tb, "a test database on the Redis at "+baseRedisURL(), l.err)
	}
	opt, err := redis.ParseURL(l.url)
	if err != nil {
		tb.Fatalf("HPNORTON_TEST_REDIS_URL: %v", err)
	}
	rdb := redis.NewClient(opt)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := rdb.Ping(ctx).Err(); err != nil {
		rdb.Close()
		unavailable(tb, "Redis at "+opt.Addr, err)
	}
	tb.Cleanup(func() {
		ctx := context.Background()
		iter := rdb.Scan(ctx, 0, "*"+ns+"*", 1000).Iterator()
		for iter.Next(ctx) {
			rdb.Del(ctx, iter.Val())
		}
		if err := iter.Err(); err != nil {
			tb.Errorf("clean up Redis keys of %s: %v", ns, err)
		}
		// Queues are named ns, or ns.<database> as the tasks package names a database's queue.
		queues, err := rdb.SMembers(ctx, "asynq:queues").Result()
		if err != nil {
			tb.Errorf("clean up the queues of %s: %v", ns, err)
		}
		for _, q := range queues {
			if strings.Contains(q, ns) {
				rdb.SRem(ctx, "asynq:queues", q)
			}
		}
		rdb.Close()
	})
	return rdb
}

// FetchFromMonitor sends the request newReq makes to a monitor and returns the answer's status and body. It asks
// again, up to 5 times in all, while the answer is vanishedQueue's.
func FetchFromMonitor(tb testing.TB, newReq func() *http.Request) (status int, body []byte) {
	tb.Helper()
	for try := 1; ; try++ {
		resp, err := http.DefaultClient.Do(newReq())
		if err != nil {
			tb.Fatal(err)
		}
		body, err = io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			tb.Fatalf("read the monitor's answer: %v", err)
		}
		if try == 5 || !vanishedQueue(resp.StatusCode, body) {
			return resp.StatusCode, body
		}
	}
}

// vanishedQueue reports whether a monitor's answer is asynqmon failing to read a queue that vanished while it
// listed them. The monitor lists every queue of its Redis database, then reads each; on the test database, another
// package's test may end in between and remove its queue, and the read fails with 500 (seen in make test). That is
// the shared database, not the monitor, so a test may ask again.
func vanishedQueue(status int, body []byte) bool {
	return status == http.StatusInternalServerError && bytes.Contains(body, []byte("queue")) &&
		(bytes.Contains(body, []byte("not found")) || bytes.Contains(body, []byte("does not exist")))
}

// MySQL creates a database named ns on the test MySQL and returns a DSN for it; the database is dropped when the
// test ends.
func MySQL(tb testing.TB, ns string) string {
	tb.Helper()
	cfg, err := mysql.ParseDSN(cmp.Or(os.Getenv("HPNORTON_TEST_MYSQL_DSN"), DefaultMySQLDSN))
	if err != nil {
		tb.Fatalf("HPNORTON_TEST_MYSQL_DSN: %v", err)
	}
	cfg.DBName = ""
	connector, err := mysql.NewConnector(cfg)
	if err != nil {
		tb.Fatalf("HPNORTON_TEST_MYSQL_DSN: %v", err)
	}
	db := sql.OpenDB(connector)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		unavailable(tb, "MySQL at "+cfg.Addr, err)
	}
	if _, err := db.ExecContext(ctx, "CREATE DATABASE `"+ns+"`"); err != nil {
		db.Close()
		tb.Fatalf("create test database: %v", err)
	}
	tb.Cleanup(func() {
		if _, err := db.Exec("DROP DATABASE IF EXISTS `" + ns + "`"); err != nil {
			tb.Errorf("drop test database %s: %v", ns, err)
		}
		db.Close()
	})
	cfg.DBName = ns
	return cfg.FormatDSN()
}

// Buffer is a bytes.Buffer that a command's goroutines may write while the test reads it.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *Buffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *Buffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Build compiles the named commands of cmd/ into one temporary folder, removed when the test ends, and returns
// the path of the first. It builds in the product's own module, so that the lab's tests can build them too.
func Build(tb testing.TB, commands ...string) string {
	tb.Helper()
	return BuildTags(tb, "", commands...)
}

// BuildTags is Build with build tags, such as crashtest, which arms a worker's crash hook.
func BuildTags(tb testing.TB, tags string, commands ...string) string {
	tb.Helper()
	dir := tb.TempDir()
	_, self, _, _ := runtime.Caller(0) // this file, internal/testenv/testenv.go
	root := filepath.Join(filepath.Dir(self), "..", "..")
	for _, c := range commands {
		build := exec.Command("go", "build", "-tags", tags, "-o", filepath.Join(dir, c), "./cmd/"+c)
		build.Dir = root
		out, err := build.CombinedOutput()
		if err != nil {
			tb.Fatalf("go build cmd/%s: %v\n%s", c, err, out)
		}
	}
	return filepath.Join(dir, commands[0])
}
