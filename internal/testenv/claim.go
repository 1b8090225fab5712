package testenv

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"
)

// Each test process (one per package) works in a Redis database of its own, so that what lists a whole database
// (the monitor's queue list, asynq's server list) sees that package's tests only. Databases 1 to 15 of the test
// Redis are leased: the first free one is taken with SET NX and a short expiry, which a goroutine renews while the
// process lives. Main gives it back when the package's tests end; a process that dies without Main lets it expire.
const (
	leaseKey     = "hpnorton:test:lease"
	leaseTTL     = 15 * time.Second
	leaseRenew   = 3 * time.Second
	firstLeased  = 1
	lastLeased   = 15
	leaseTimeout = 5 * time.Minute // only a guard: more test processes than databases wait for one to end
)

// renewLease extends the lease only while it is still this process's.
var renewLease = redis.NewScript(`if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("PEXPIRE", KEYS[1], ARGV[2]) end return 0`)

// releaseLease deletes the lease only while it is still this process's.
var releaseLease = redis.NewScript(`if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("DEL", KEYS[1]) end return 0`)

type lease struct {
	url    string // the test Redis URL, naming the leased database
	err    error
	client *redis.Client
	token  string
	stop   chan struct{}
	done   chan struct{}
}

var (
	leaseMu sync.Mutex
	held    *lease
)

// baseRedisURL is the test Redis as configured, before a database is leased.
func baseRedisURL() string { return cmp.Or(os.Getenv("HPNORTON_TEST_REDIS_URL"), DefaultRedisURL) }

// RedisURL is the Redis the tests use: the configured server, on the database this test process leased. When no
// database can be leased (the server is down, say), it is the configured URL, and Redis reports why.
func RedisURL() string {
	l := claim()
	if l.err != nil {
		return baseRedisURL()
	}
	return l.url
}

func claim() *lease {
	leaseMu.Lock()
	defer leaseMu.Unlock()
	if held == nil || (held.err != nil && held.client == nil) {
		held = takeLease(baseRedisURL())
	}
	return held
}

// takeLease leases the first free database of the server that base names. While every one is leased it waits for
// one to be given back or to expire.
func takeLease(base string) *lease {
	opt, err := redis.ParseURL(base)
	if err != nil {
		return &lease{err: fmt.Errorf("HPNORTON_TEST_REDIS_URL: %w", err)}
	}
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	token := fmt.Sprintf("%d-%s", os.Getpid(), hex.EncodeToString(b[:]))
	ctx := context.Background()
	deadline := time.Now().Add(leaseTimeout)
	for {
		last := lastLeased
		for db := firstLeased; db <= last; db++ {
			o := *opt
			o.DB = db
			c := redis.NewClient(&o)
			ok, err := c.SetNX(ctx, leaseKey, token, leaseTTL).Result()
			switch {
			case err != nil && strings.Contains(err.Error(), "DB index is out of range"):
				c.Close()
				last = db - 1
			case err != nil:
				c.Close()
				return &lease{err: err}
			case ok:
				u, err := withDB(base, db)
				if err != nil {
					c.Close()
					return &lease{err: fmt.Errorf("HPNORTON_TEST_REDIS_URL: %w", err)}
				}
				l := &lease{url: u, client: c, token: token, stop: make(chan struct{}), done: make(chan struct{})}
				go l.renew()
				return l
			default:
				c.Close()
			}
		}
		if last < firstLeased {
			return &lease{err: fmt.Errorf("the test Redis has no database %d to %d to lease", firstLeased, lastLeased)}
		}
		if time.Now().After(deadline) {
			return &lease{err: fmt.Errorf("every test database %d to %d of the test Redis stayed leased for %v", firstLeased, last, leaseTimeout)}
		}
		time.Sleep(100 * time.Millisecond) // a lease ends when its process's tests end, or leaseTTL after it died
	}
}

// withDB is base with its path, which names the database, set to db.
func withDB(base string, db int) (string, error) {
	u, err := url.Parse(base)
	if err != nil {
		return "", err
	}
	u.Path = "/" + strconv.Itoa(db)
	return u.String(), nil
}

func (l *lease) renew() {
	defer close(l.done)
	tick := time.NewTicker(leaseRenew)
	defer tick.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-tick.C:
			renewLease.Run(context.Background(), l.client, []string{leaseKey}, l.token, leaseTTL.Milliseconds())
		}
	}
}

// release gives back the database this process leased, if any.
func release() {
	leaseMu.Lock()
	defer leaseMu.Unlock()
	if held != nil {
		held.giveBack()
		held = nil
	}
}

// giveBack stops renewing the lease and deletes it, so that another test process may take the database at once.
func (l *lease) giveBack() {
	if l.client == nil {
		return
	}
	close(l.stop)
	<-l.done
	releaseLease.Run(context.Background(), l.client, []string{leaseKey}, l.token)
	l.client.Close()
	l.client = nil
}

// Main runs a package's tests, then gives back the Redis database they leased. A package whose tests use the test
// Redis calls it from its TestMain.
func Main(m *testing.M) {
	code := m.Run()
	release()
	os.Exit(code)
}

// MainNoLeaks is Main, and then fails the package if a goroutine outlived its tests, as goleak.VerifyTestMain does.
// The lease's own goroutine has ended by then.
func MainNoLeaks(m *testing.M) {
	code := m.Run()
	release()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: errors on successful test run: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}
