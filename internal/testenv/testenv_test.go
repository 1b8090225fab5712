package testenv

import (
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/redis/go-redis/v9"
)

// TestVanishedQueue holds vanishedQueue to asynqmon's answer for a queue read after it was removed, as asynq's
// inspector words it, and to nothing else.
func TestVanishedQueue(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		status int
		body   string
		want   bool
	}{
		{500, `NOT_FOUND: queue "hpnorton_x" does not exist` + "\n", true},
		{500, "dial tcp 127.0.0.1:6379: connect: connection refused\n", false},
		{200, `{"queues":[]} queue does not exist`, false},
	} {
		if got := vanishedQueue(tc.status, []byte(tc.body)); got != tc.want {
			t.Errorf("vanishedQueue(%d, %q) = %v, want %v", tc.status, tc.body, got, tc.want)
		}
	}
}

// TestFetchFromMonitorAsksAgain serves the vanished-queue answer a number of times before a good one: the fetch
// gets the good one after two, and gives up with the last answer after five.
func TestFetchFromMonitorAsksAgain(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		vanished, wantStatus, wantAsks int
	}{{2, http.StatusOK, 3}, {9, http.StatusInternalServerError, 5}} {
		var asks atomic.Int32
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if int(asks.Add(1)) <= tc.vanished {
				http.Error(w, `NOT_FOUND: queue "q" does not exist`, http.StatusInternalServerError)
				return
			}
			w.Write([]byte(`{"queues":[]}`))
		}))
		status, _ := FetchFromMonitor(t, func() *http.Request {
			req, err := http.NewRequest(http.MethodGet, srv.URL, nil)
			if err != nil {
				t.Fatal(err)
			}
			return req
		})
		srv.Close()
		if status != tc.wantStatus || int(asks.Load()) != tc.wantAsks {
			t.Errorf("%d vanished answers: status %d after %d asks, want %d after %d", tc.vanished, status, asks.Load(), tc.wantStatus, tc.wantAsks)
		}
	}
}

// TestLeasesADatabaseEach: two leases on one server get two databases of 1 to 15, each marked as held, and a lease
// given back frees its database.
func TestLeasesADatabaseEach(t *testing.T) {
	a := takeLease(baseRedisURL())
	if a.err != nil {
		unavailable(t, "a test database on the Redis at "+baseRedisURL(), a.err)
	}
	defer a.giveBack()
	b := takeLease(baseRedisURL())
	if b.err != nil {
		t.Fatal(b.err)
	}
	defer b.giveBack()
	dbOf := func(l *lease) int {
		opt, err := redis.ParseURL(l.url)
		if err != nil {
			t.Fatal(err)
		}
		return opt.DB
	}
	if da, db := dbOf(a), dbOf(b); da == db || da < firstLeased || da > lastLeased || db < firstLeased || db > lastLeased {
		t.Fatalf("leased databases %d and %d, want two different ones of %d to %d", da, db, firstLeased, lastLeased)
	}
	if got := a.client.Get(t.Context(), leaseKey).Val(); got != a.token {
		t.Errorf("lease key of %s = %q, want the lease's token %q", a.url, got, a.token)
	}
	opt, err := redis.ParseURL(a.url)
	if err != nil {
		t.Fatal(err)
	}
	check := redis.NewClient(opt)
	defer check.Close()
	token := a.token
	a.giveBack()
	// Another package's test process may lease the freed database at once, but never under this token.
	if got := check.Get(t.Context(), leaseKey).Val(); got == token {
		t.Errorf("lease key of %s still holds the given-back token %q", a.url, got)
	}
}
