package coordinator

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/hibiken/asynq"

	"hpnorton/internal/gen"
	"hpnorton/internal/ledger"
	"hpnorton/internal/record"
	"hpnorton/internal/testenv"
	"hpnorton/internal/worker"
	"hpnorton/repo"
	"hpnorton/tasks"
)

type testBundle struct {
	ns   string
	dsn  string // the test's own database
	deps Deps
}

// setup gives the test its own queue and database, the connections a run needs, and a worker at the given
// concurrency serving the queue until the test ends.
func setup(t *testing.T, concurrency int) *testBundle {
	t.Helper()
	return setupPoll(t, concurrency, 0)
}

// setupPoll is setup with a worker that waits poll between looks at an idle queue; 0 is the worker's default.
func setupPoll(t *testing.T, concurrency int, poll time.Duration) *testBundle {
	t.Helper()
	ns := testenv.Namespace(t)
	rdb := testenv.Redis(t, ns)
	dsn := testenv.MySQL(t, ns)
	db, err := repo.Open(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	client := asynq.NewClientFromRedisClient(rdb)
	inspector := asynq.NewInspectorFromRedisClient(rdb)
	w, err := worker.Start(rdb, db, worker.Config{Concurrency: concurrency, Queue: ns, Name: "w", PollInterval: poll})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		w.Shutdown()
		inspector.Close()
		client.Close()
		db.Close()
	})
	return &testBundle{ns: ns, dsn: dsn, deps: Deps{Repo: db, Ledger: ledger.New(rdb), Client: client, Inspector: inspector}}
}

// TestManyChunksManyTasksInFlight imports files cut into many chunks with a worker running several tasks at once:
// every chunk is a task, every task is counted once, and before + processed == after for each file.
func TestManyChunksManyTasksInFlight(t *testing.T) {
	t.Parallel()
	b := setup(t, 3)
	ns, deps := b.ns, b.deps

	dir := t.TempDir()
	if err := gen.WriteDir(dir, 2500, gen.Options{CRLF: true}); err != nil {
		t.Fatal(err)
	}
	// A first, smaller run leaves rows behind, so the second must count before and after around them.
	small := t.TempDir()
	if err := gen.WriteDir(small, 700, gen.Options{}); err != nil {
		t.Fatal(err)
	}
	if _, err := Run(t.Context(), deps, Config{Dir: small, Queue: ns, RunID: ns + "-a", ChunkRows: 1000}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	rep, err := Run(ctx, deps, Config{Dir: dir, Queue: ns, RunID: ns + "-b", ChunkRows: 100})
	if err != nil {
		t.Fatal(err)
	}
	for i, k := range record.Kinds {
		f, tu := rep.Files[i], rep.Results[i]
		if f.Tasks != 25 || f.Read != 2500 || f.Added != 1800 || f.Present != 700 || f.Rejected != 0 {
			t.Errorf("%v: %+v; want 25 tasks, 2500 read = 1800 added + 700 present", k, f)
		}
		if tu.Before != 700 || tu.After != 2500 || tu.Processed != 1800 {
			t.Errorf("%v tuple %+v, want [1800 700 2500 s]", k, tu)
		}
	}
	if rep.Mode != "parallel" {
		t.Errorf("mode %q with concurrency 3, want parallel", rep.Mode)
	}
}

// TestRunAnnouncesItsTasks: a run's tasks wake a worker that would not look at its idle queue again for an hour.
func TestRunAnnouncesItsTasks(t *testing.T) {
	t.Parallel()
	b := setupPoll(t, 2, time.Hour)
	dir := t.TempDir()
	if err := gen.WriteDir(dir, 300, gen.Options{}); err != nil {
		t.Fatal(err)
	}
	rep, err := Run(t.Context(), b.deps, Config{Dir: dir, Queue: b.ns, RunID: b.ns, ChunkRows: 100, Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	for i, k := range record.Kinds {
		if tu := rep.Results[i]; tu.Processed != 300 || tu.After != 300 {
			t.Errorf("%v tuple %+v, want 300 processed and after", k, tu)
		}
	}
}

// TestDiagnoseFailedTask: a task of the run that asynq archived, here one whose payload cannot be read, ends the
// wait with the task's own error instead of letting it run into the timeout, even when the queue holds more
// archived tasks of other runs than one page of asynq's list.
func TestDiagnoseFailedTask(t *testing.T) {
	t.Parallel()
	b := setup(t, 1)
	ns, client, inspector := b.ns, b.deps.Client, b.deps.Inspector
	queue := tasks.QueueFor(ns, b.deps.Repo.ID)

	// Other runs' failures, archived before this run's: 1,001 of them, scheduled far off so that the worker leaves
	// them alone, then archived at once.
	for i := range 1001 {
		other := asynq.NewTask(tasks.TypeProductImport, []byte("x"))
		if _, err := client.Enqueue(other, asynq.Queue(queue), asynq.ProcessIn(time.Hour), asynq.TaskID(fmt.Sprintf("%s-old:products:%d", ns, i+2))); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := inspector.ArchiveAllScheduledTasks(queue); err != nil || n != 1001 {
		t.Fatalf("archived %d old tasks, %v; want 1001", n, err)
	}
	id := ns + ":products:2"
	if _, err := client.Enqueue(asynq.NewTask(tasks.TypeProductImport, []byte("not a payload")), asynq.Queue(queue), asynq.TaskID(id)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		info, err := inspector.GetTaskInfo(queue, id)
		if err == nil && info.State == asynq.TaskStateArchived {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("task not archived within 30 s: %+v, %v", info, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	sent := &taskIDs{ids: map[string]record.Kind{id: record.Products}}
	wt := &waiter{d: b.deps, cfg: Config{RunID: ns, Queue: ns}, queue: queue, sent: sent, log: slog.New(slog.DiscardHandler)}
	err := wt.diagnose(t.Context())
	if !errors.Is(err, ErrStalled) || !strings.Contains(err.Error(), "task "+id+" failed for good: tasks: payload: invalid character") {
		t.Errorf("diagnose = %v, want ErrStalled naming the task and its error", err)
	}
}

// TestFileSecondsEndWithTheFilesLastTask gives one file a single record and the other hundreds of tasks, run one at
// a time: each file's seconds end when its own last task finishes, not when the run does. The check is an order,
// not a margin of time: MySQL's record of each task tells how many products tasks finished after the customers
// task, and with that many still to run, the customers file must be reported done first.
func TestFileSecondsEndWithTheFilesLastTask(t *testing.T) {
	t.Parallel()
	b := setup(t, 1)
	dir := t.TempDir()
	for k, rows := range map[record.Kind]int{record.Customers: 1, record.Products: 30_000} {
		f, err := os.Create(filepath.Join(dir, k.FileName()))
		if err != nil {
			t.Fatal(err)
		}
		if err := gen.Write(f, k, rows, gen.Options{}); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	rep, err := Run(t.Context(), b.deps, Config{Dir: dir, Queue: b.ns, RunID: b.ns, ChunkRows: 100})
	if err != nil {
		t.Fatal(err)
	}
	c, p := rep.Results[0].Seconds, rep.Results[1].Seconds
	sqlDB, err := sql.Open("mysql", b.dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer sqlDB.Close()
	var later int
	err = sqlDB.QueryRowContext(t.Context(), `SELECT COUNT(*) FROM import_tasks c JOIN import_tasks p ON p.run_id = c.run_id
		WHERE c.run_id = ? AND c.kind = 'customers' AND p.kind = 'products' AND p.finished_at > c.finished_at`, b.ns).Scan(&later)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("customers %.3f s, products %.3f s; %d of %d products tasks finished after the customers task", c, p, later, rep.Files[1].Tasks)
	// The one customers task waits behind at most the products tasks queued before it, a few of 300.
	if later < 100 {
		t.Fatalf("only %d products tasks finished after the customers task, want 100 or more: it was not queued early", later)
	}
	if c >= p {
		t.Errorf("customers reported %.3f s and products %.3f s; want customers done first, at its own last task", c, p)
	}
}

// TestQueueBoundAndProgress lets only two tasks of the run wait in the queue at a time: reading pauses until tasks
// finish, the run still completes, and the progress reports grow to the exact totals.
func TestQueueBoundAndProgress(t *testing.T) {
	t.Parallel()
	b := setup(t, 2)
	dir := t.TempDir()
	if err := gen.WriteDir(dir, 1000, gen.Options{}); err != nil {
		t.Fatal(err)
	}
	var reports [][]FileProgress
	var mu sync.Mutex
	progress := func(files []FileProgress) {
		mu.Lock()
		defer mu.Unlock()
		reports = append(reports, files)
	}
	highest := 0
	stop := make(chan struct{})
	var watch sync.WaitGroup
	watch.Go(func() {
		// The queue's pending tasks never exceed the bound. Active ones are not counted: a task frees its slot when
		// it records its outcome, a moment before asynq marks it done.
		for {
			select {
			case <-stop:
				return
			case <-time.After(2 * time.Millisecond):
			}
			info, err := b.deps.Inspector.GetQueueInfo(b.ns)
			if err == nil {
				highest = max(highest, info.Pending)
			}
		}
	})
	rep, err := Run(t.Context(), b.deps, Config{Dir: dir, Queue: b.ns, RunID: b.ns + "-a", ChunkRows: 50, MaxQueued: 2, Progress: progress})
	close(stop)
	watch.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if rep.Files[0].Tasks != 20 || rep.Results[0].Processed != 1000 || rep.Results[1].Processed != 1000 {
		t.Fatalf("report %+v, want 20 tasks and 1000 rows per file", rep.Files)
	}
	if highest > 2 {
		t.Errorf("%d tasks of the run were pending at once, want at most 2", highest)
	}
	mu.Lock()
	defer mu.Unlock()
	last := reports[len(reports)-1]
	for i, f := range last {
		if !f.Done || !f.Exact || f.Rows != 1000 || f.Total != 1000 || f.Enqueued != 1000 || f.Kind != record.Kinds[i] {
			t.Errorf("last progress of %v = %+v, want done and exact at 1000 rows", record.Kinds[i], f)
		}
	}
	for i := 1; i < len(reports); i++ {
		for j := range reports[i] {
			if reports[i][j].Rows < reports[i-1][j].Rows {
				t.Fatalf("progress went back: %+v after %+v", reports[i][j], reports[i-1][j])
			}
		}
	}
	if len(reports) < 5 {
		t.Errorf("%d progress reports for 40 tasks, want one as tasks finish", len(reports))
	}
}

// TestCountsOutlastAnOutage: MySQL goes away just as the coordinator counts, after every row has landed. The count
// is retried, as the workers retry their writes, and returns once MySQL is back, instead of failing the run.
func TestCountsOutlastAnOutage(t *testing.T) {
	t.Parallel()
	ns := testenv.Namespace(t)
	cfg, err := mysql.ParseDSN(testenv.MySQL(t, ns))
	if err != nil {
		t.Fatal(err)
	}
	proxy := testenv.StartProxy(t, cfg.Addr)
	cfg.Addr = proxy.Addr()
	db, err := repo.Open(t.Context(), cfg.FormatDSN())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	run, err := db.StartRun(t.Context(), ns, repo.DefaultKeepRuns)
	if err != nil {
		t.Fatal(err)
	}
	data := repo.AppendRow(nil, [][]byte{[]byte("P1"), []byte("desk"), []byte("office"), []byte("1")})
	if _, err := db.ImportTask(t.Context(), repo.Task{ID: ns + ":products:2", RunID: ns, RunNo: run, Kind: record.Products, Rows: 1, Data: data}); err != nil {
		t.Fatal(err)
	}
	proxy.Cut(true)
	var logs testenv.Buffer
	restored := make(chan struct{})
	go func() {
		// MySQL comes back once the count has failed and said it tries again.
		defer close(restored)
		for deadline := time.Now().Add(time.Minute); !strings.Contains(logs.String(), "trying again"); time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				break // the test fails below, on the missing retry
			}
		}
		proxy.Cut(false)
	}()
	n, err := counts(t.Context(), db, slog.New(slog.NewTextHandler(&logs, nil)))
	<-restored
	if err != nil || len(n) != 2 || n[0] != 0 || n[1] != 1 {
		t.Fatalf("counts through an outage = %v, %v; want [0 1]", n, err)
	}
	if !strings.Contains(logs.String(), "cannot count the rows; trying again") {
		t.Errorf("no retry was logged, so the outage was missed:\n%s", logs.String())
	}
	// A cancelled run does not wait for MySQL.
	proxy.Cut(true)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := counts(ctx, db, slog.New(slog.DiscardHandler)); err == nil {
		t.Error("counts of a cancelled run succeeded with MySQL down")
	}
}
