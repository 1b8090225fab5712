package ledger

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"hpnorton/internal/record"
	"hpnorton/internal/testenv"
)

func TestRecordIsIdempotentAndWakes(t *testing.T) {
	t.Parallel()
	ns := testenv.Namespace(t)
	rdb := testenv.Redis(t, ns)
	l := New(rdb)
	ctx := t.Context()

	if used, err := l.Used(ctx, ns); err != nil || used {
		t.Fatalf("Used before anything = %v, %v; want false", used, err)
	}
	woke, err := l.Wait(ctx, ns, time.Second) // Redis blocks for whole seconds at the least
	if err != nil || woke {
		t.Fatalf("Wait before any outcome = %v, %v; want a timeout", woke, err)
	}
	o := Outcome{TaskID: ns + ":products:2", FirstLine: 2, Counts: record.Counts{Added: 2, Present: 1}}
	for range 2 {
		if err := l.Record(ctx, ns, record.Products, o); err != nil {
			t.Fatal(err)
		}
	}
	if used, err := l.Used(ctx, ns); err != nil || !used {
		t.Fatalf("Used after an outcome = %v, %v; want true", used, err)
	}
	if woke, err := l.Wait(ctx, ns, time.Second); err != nil || !woke {
		t.Fatalf("Wait after an outcome = %v, %v; want a wake-up", woke, err)
	}
	got, err := l.Finished(ctx, ns)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]Done{{}, {Tasks: 1, Rows: 3}}, got); diff != "" {
		t.Fatalf("Finished (-want, +got): one outcome and its rows per task however often it is recorded:\n%s", diff)
	}

	if err := l.Touch(ctx, ns); err != nil {
		t.Fatal(err)
	}
	if ttl := rdb.TTL(ctx, outcomesKey(ns, record.Products)).Val(); ttl < keyTTL-time.Minute || ttl > keyTTL {
		t.Errorf("outcomes expire in %s after Touch, want %s", ttl, keyTTL)
	}
	if err := l.Finish(ctx, ns, []byte(`{"run_id":"x"}`), 30*time.Hour); err != nil {
		t.Fatal(err)
	}
	// The results last as long as they were given; the working keys, with rejected rows' values, go at once.
	if ttl := rdb.TTL(ctx, ResultsKey(ns)).Val(); ttl < 30*time.Hour-time.Minute || ttl > 30*time.Hour {
		t.Errorf("results expire in %s, want 30h", ttl)
	}
	if n := rdb.Exists(ctx, workingKeys(ns)...).Val(); n != 0 {
		t.Errorf("%d working keys remain after Finish, want 0", n)
	}
	if err := l.Finish(ctx, ns, nil, 0); err == nil {
		t.Error("Finish with no retention succeeded, want an error: the results would never expire")
	}
	b, err := l.Results(ctx, ns)
	if err != nil || string(b) != `{"run_id":"x"}` {
		t.Fatalf("Results = %s, %v", b, err)
	}
	if got := ResultsKey("abc"); got != "hpnorton:results:abc" {
		t.Errorf("ResultsKey = %q", got)
	}
}
