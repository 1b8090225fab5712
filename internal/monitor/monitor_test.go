package monitor

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"hpnorton/internal/record"
	"hpnorton/internal/testenv"
	"hpnorton/tasks"
)

// startMonitor puts one customers and one products chunk on a queue of the test's own, and serves the monitor.
func startMonitor(t *testing.T) (ns, url string) {
	t.Helper()
	ns = testenv.Namespace(t)
	rdb := testenv.Redis(t, ns)
	client := asynq.NewClientFromRedisClient(rdb)
	for _, k := range []record.Kind{record.Customers, record.Products} {
		p := tasks.ImportPayload{DB: "d", RunID: ns, RunNo: 1, File: k.String() + ".csv", FirstLine: 2, Rows: 2, Bytes: 22}
		task, err := tasks.NewImportTask(k, p)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := client.Enqueue(task, asynq.Queue(ns)); err != nil {
			t.Fatal(err)
		}
	}
	h := New(rdb.Options(), true)
	srv := httptest.NewServer(h)
	t.Cleanup(func() {
		srv.Close()
		h.Close()
	})
	return ns, srv.URL
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	status, body := testenv.FetchFromMonitor(t, func() *http.Request {
		req, err := http.NewRequest(http.MethodGet, url, nil)
		if err != nil {
			t.Fatal(err)
		}
		return req
	})
	if status != http.StatusOK {
		t.Fatalf("GET %s: %d: %s", url, status, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}

// TestAPIListsQueues checks the monitor's API, which its page reads: the import queue with its two pending tasks,
// each shown by its metadata rather than its rows.
func TestAPIListsQueues(t *testing.T) {
	t.Parallel()
	ns, url := startMonitor(t)

	var queues struct {
		Queues []struct {
			Queue   string `json:"queue"`
			Size    int    `json:"size"`
			Pending int    `json:"pending"`
		} `json:"queues"`
	}
	getJSON(t, url+"/api/queues", &queues)
	found := false
	for _, q := range queues.Queues {
		if q.Queue == ns {
			found = true
			if q.Size != 2 || q.Pending != 2 {
				t.Errorf("queue %s: size %d, pending %d; want 2 and 2", ns, q.Size, q.Pending)
			}
		}
	}
	if !found {
		t.Fatalf("GET /api/queues does not list queue %s: %+v", ns, queues)
	}

	var pending struct {
		Tasks []struct {
			Type    string `json:"type"`
			Payload string `json:"payload"`
		} `json:"tasks"`
	}
	getJSON(t, url+"/api/queues/"+ns+"/pending_tasks", &pending)
	if len(pending.Tasks) != 2 {
		t.Fatalf("pending tasks: %+v, want 2", pending.Tasks)
	}
	for _, task := range pending.Tasks {
		if !strings.Contains(task.Payload, " line 2: 2 rows, run "+ns) || strings.Contains(task.Payload, "secret") {
			t.Errorf("task %s shows payload %q, want its metadata without its rows", task.Type, task.Payload)
		}
	}
}

// TestBrowserShowsQueues loads the monitor in headless Chromium, which runs the page's JavaScript, and looks for the
// queue in the rendered page. Chromium comes from Debian's chromium package; .ci/run installs it.
func TestBrowserShowsQueues(t *testing.T) {
	t.Parallel()
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("HPNORTON_REQUIRE_BROWSER") != "" {
			t.Fatal("chromium is not installed (apt-get install chromium)")
		}
		t.Skip("skipping: chromium is not installed (apt-get install chromium); set HPNORTON_REQUIRE_BROWSER=1 to fail instead")
	}
	ns, url := startMonitor(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// The background-networking switches keep Chromium from calling Google's hosts, which this network refuses.
	// --virtual-time-budget lets the page's scripts fetch the API and render before the DOM is printed.
	cmd := exec.CommandContext(ctx, chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
		"--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir="+t.TempDir(), "--virtual-time-budget=10000", "--dump-dom", url+"/")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium: %v", err)
	}
	dom := string(out)
	for _, want := range []string{"Queue Size", ns} {
		if !strings.Contains(dom, want) {
			t.Errorf("the rendered page lacks %q:\n%.2000s", want, dom)
		}
	}
}
