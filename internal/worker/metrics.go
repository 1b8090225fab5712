package worker

// A worker's Prometheus metrics: asynq's queue metrics, read from Redis at each scrape, and the worker's own rows
// and task latencies, counted as its tasks finish.

import (
	"context"
	"net/http"
	"time"

	"github.com/hibiken/asynq"
	asynqmetrics "github.com/hibiken/asynq/x/metrics"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"hpnorton/internal/record"
	"hpnorton/tasks"
)

// Metrics is one worker process's registry. Every worker of a run serves the same queue metrics, because they come
// from the shared Redis; the row counts and latencies are this process's own, so a dashboard sums them over
// workers.
type Metrics struct {
	reg         *prometheus.Registry
	rows        *prometheus.CounterVec
	updated     *prometheus.CounterVec
	redelivered *prometheus.CounterVec
	latency     *prometheus.HistogramVec
}

// NewMetrics registers the Go runtime, process and asynq queue collectors and the worker's own metrics. The inspector
// must stay open while the metrics are served.
func NewMetrics(inspector *asynq.Inspector) *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		rows: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hpnorton_rows_total",
			Help: "Rows of finished import tasks, by kind and outcome: added (written by this worker) or present (already stored). A redelivered task counts once; rejected rows never reach a worker.",
		}, []string{"kind", "outcome"}),
		updated: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hpnorton_rows_updated_total",
			Help: "Present rows that an update-mode task changed (enqueue --update), by kind: part of hpnorton_rows_total's present.",
		}, []string{"kind"}),
		redelivered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hpnorton_tasks_redelivered_total",
			Help: "Import tasks delivered again after an earlier delivery had committed; their rows were not counted again.",
		}, []string{"kind"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "hpnorton_task_duration_seconds",
			Help: "Time from a task's start on this worker to its end, by task type and status (ok or error).",
			// A 20,000-row chunk takes about 0.1 to 1 s; a small run's chunk a few milliseconds.
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 12),
		}, []string{"type", "status"}),
	}
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		asynqmetrics.NewQueueMetricsCollector(inspector),
		m.rows, m.updated, m.redelivered, m.latency,
	)
	// Every series exists from the start, at 0, as Prometheus advises: a series that appears only at its first
	// event makes rate() and alerts blind to that event, and a scrape cannot tell 0 from a missing worker.
	for _, k := range record.Kinds {
		m.rows.WithLabelValues(k.String(), "added")
		m.rows.WithLabelValues(k.String(), "present")
		m.updated.WithLabelValues(k.String())
		m.redelivered.WithLabelValues(k.String())
	}
	for _, typ := range []string{tasks.TypeCustomerImport, tasks.TypeProductImport} {
		for _, status := range []string{"ok", "error"} {
			m.latency.WithLabelValues(typ, status)
		}
	}
	return m
}

// Handler serves the registry in the Prometheus exposition format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// Rows counts one finished task's rows. A redelivered task wrote nothing now and its rows were counted when it
// first ran, so only the redelivery is counted.
func (m *Metrics) Rows(k record.Kind, c record.Counts, redelivered bool) {
	if redelivered {
		m.redelivered.WithLabelValues(k.String()).Inc()
		return
	}
	m.rows.WithLabelValues(k.String(), "added").Add(float64(c.Added))
	m.rows.WithLabelValues(k.String(), "present").Add(float64(c.Present))
	m.updated.WithLabelValues(k.String()).Add(float64(c.Updated))
}

// Middleware times every task the worker runs.
func (m *Metrics) Middleware(next asynq.Handler) asynq.Handler {
	return asynq.HandlerFunc(func(ctx context.Context, t *asynq.Task) error {
		start := time.Now()
		err := next.ProcessTask(ctx, t)
		status := "ok"
		if err != nil {
			status = "error"
		}
		m.latency.WithLabelValues(t.Type(), status).Observe(time.Since(start).Seconds())
		return err
	})
}
