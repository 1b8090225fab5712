package worker

import (
	"context"
	"errors"
	"io"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/hibiken/asynq"

	"hpnorton/internal/record"
	"hpnorton/internal/testenv"
)

// scrape returns what Prometheus would read from m.
func scrape(t *testing.T, m *Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	if rec.Code != 200 {
		t.Fatalf("GET /metrics: %d %s", rec.Code, body)
	}
	return string(body)
}

// TestMetrics checks each family the worker exposes: asynq's queue metrics, read from Redis, and the worker's own
// rows, redeliveries and task latencies.
func TestMetrics(t *testing.T) {
	t.Parallel()
	ns := testenv.Namespace(t)
	rdb := testenv.Redis(t, ns)
	client := asynq.NewClientFromRedisClient(rdb)
	for range 3 {
		if _, err := client.Enqueue(asynq.NewTask("import:customers", nil), asynq.Queue(ns)); err != nil {
			t.Fatal(err)
		}
	}
	inspector := asynq.NewInspectorFromRedisClient(rdb)
	defer inspector.Close()
	m := NewMetrics(inspector)

	m.Rows(record.Customers, record.Counts{Added: 5, Present: 2}, false)
	m.Rows(record.Customers, record.Counts{Added: 5, Present: 2}, true) // a redelivery: its rows were counted the first time
	// An update-mode task: two of its three present rows changed.
	m.Rows(record.Products, record.Counts{Added: 1, Present: 3, Updated: 2, Unchanged: 1}, false)
	ok := m.Middleware(asynq.HandlerFunc(func(context.Context, *asynq.Task) error { return nil }))
	failing := m.Middleware(asynq.HandlerFunc(func(context.Context, *asynq.Task) error { return errors.New("MySQL down") }))
	task := asynq.NewTask("import:products", nil)
	for _, h := range []asynq.Handler{ok, ok, failing} {
		_ = h.ProcessTask(context.Background(), task) // the error is the failing handler's; only its status counts
	}

	got := scrape(t, m)
	for _, want := range []string{
		`asynq_queue_size{queue="` + ns + `"} 3`,
		`asynq_tasks_enqueued_total{queue="` + ns + `",state="pending"} 3`,
		`hpnorton_rows_total{kind="customers",outcome="added"} 5`,
		`hpnorton_rows_total{kind="customers",outcome="present"} 2`,
		`hpnorton_rows_total{kind="products",outcome="present"} 3`,
		`hpnorton_rows_updated_total{kind="products"} 2`,
		`hpnorton_tasks_redelivered_total{kind="customers"} 1`,
		`hpnorton_task_duration_seconds_count{status="ok",type="import:products"} 2`,
		`hpnorton_task_duration_seconds_count{status="error",type="import:products"} 1`,
		`go_goroutines `,
		`process_resident_memory_bytes `,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	if t.Failed() {
		t.Logf("metrics:\n%s", got)
	}
}

// TestCountersStartAtZero: before any task, every series of the worker's own counters is exposed at 0, as
// Prometheus advises, so that the first redelivery is a change from 0 rather than a series that appears.
func TestCountersStartAtZero(t *testing.T) {
	t.Parallel()
	ns := testenv.Namespace(t)
	inspector := asynq.NewInspectorFromRedisClient(testenv.Redis(t, ns))
	defer inspector.Close()
	got := scrape(t, NewMetrics(inspector))
	for _, k := range record.Kinds {
		for _, want := range []string{
			`hpnorton_rows_total{kind="` + k.String() + `",outcome="added"} 0`,
			`hpnorton_rows_total{kind="` + k.String() + `",outcome="present"} 0`,
			`hpnorton_rows_updated_total{kind="` + k.String() + `"} 0`,
			`hpnorton_tasks_redelivered_total{kind="` + k.String() + `"} 0`,
			`hpnorton_task_duration_seconds_count{status="error",type="import:` + k.String() + `"} 0`,
			`hpnorton_task_duration_seconds_count{status="ok",type="import:` + k.String() + `"} 0`,
		} {
			if !strings.Contains(got, want+"\n") {
				t.Errorf("metrics lack %q before any task", want)
			}
		}
	}
	if t.Failed() {
		t.Logf("metrics:\n%s", got)
	}
}
