# The README's two commands are `make run` (the main job) and `make test` (lint, then every test with -race).
GO          ?= go
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
CONCURRENCY ?= 4
DATA        ?= testdata

ROWS        ?= 300000
RUNS        ?= 5
STORED      ?= 0
ETA_ROWS    ?= 1000000

.PHONY: build lab-build run test lint bench bench-e2e bench-reimport bench-memory testdata screenshot contention profile compare mutants counts eta machine bench-scale bench-update fresh-run-test compose-test

# The product's commands. The lab (lab/, a Go module of its own) studies them: lab-build adds bin/bench.
build:
	$(GO) build -o bin/ ./cmd/...

lab-build: build
	$(GO) -C lab build -o ../bin/ ./bench

# One worker at CONCURRENCY (1 is linear mode) and one enqueue of DATA, printing the result tuples.
run: build
	CONCURRENCY=$(CONCURRENCY) scripts/run-local $(DATA)

# check-tracked fails on a tracked executable or a tracked file over 5 MB. gofmt reads the lab too; vet,
# staticcheck and the tests run in each module.
lint:
	scripts/check-tracked
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt would reformat:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...
	$(GO) -C lab vet ./...
	$(GO) -C lab run $(STATICCHECK) ./...

test: lint
	$(GO) test -race -count=1 ./...
	$(GO) -C lab test -race -count=1 ./...

# End-to-end seconds and rows/s of linear and parallel mode at 2 x 1,000 and 2 x 300,000 rows, in-process worker.
# STORED=N adds the 2 x 1,000-row parallel run into tables that already hold N rows each (filled once per round).
bench:
	HPNORTON_BENCH_STORED=$(STORED) $(GO) test -run '^$$' -bench BenchmarkImport -benchtime 3x -count 3 ./cmd/enqueue

# Linear, parallel and mysqlimport --local in turn on 2 x ROWS rows, RUNS rounds: medians, ratios, peak memory.
# STORED=N imports into tables that already hold N rows each.
bench-e2e: lab-build
	bin/bench -rows $(ROWS) -runs $(RUNS) -stored $(STORED)

# What each way of counting a table exactly costs: COUNT(*) and a narrow index's count of a table of STORED rows
# (5,000,000 unless set) against repo's kept count, and what the counting triggers cost a 300,000-row load.
counts:
	$(GO) -C lab run ./counts -rows $(if $(filter 0,$(STORED)),5000000,$(STORED)) -runs $(RUNS)

# How honest the bars' time left is: RUNS real runs of 2 x ETA_ROWS rows (1,000,000 unless set) through one worker at
# CONCURRENCY, with each estimate from a file's 10% mark against the real time left, and the worst errors.
eta: build
	$(GO) -C lab run ./eta -bin ../bin -rows $(ETA_ROWS) -runs $(RUNS) -concurrency $(CONCURRENCY)

# What the kernel charges a process here: a system call, a page fault, a switch between threads (docs/machines.md).
machine:
	$(GO) -C lab run ./machine -runs $(RUNS)

# 2 x 10,000,000 rows imported fresh, linear, parallel and mysqlimport --local, once each, then a 2 x 100,000 round
# of the same modes, for the peak memory to compare: wall time, rows/s, CPU per process and every process's peak RSS.
# The bench refuses at once if the files and tables would not fit on the disk (about 12 GB with its databases).
bench-scale: lab-build
	bin/bench -rows 10000000 -runs 1 -modes linear,parallel,mysqlimport
	bin/bench -rows 100000 -runs 1 -modes linear,parallel,mysqlimport

# A fresh parallel import against a re-import of the same 2 x ROWS rows, all present, RUNS rounds in turn. BEFORE=DIR
# also runs an earlier version's binaries from DIR, in turn, and prints now against before.
bench-reimport: lab-build
	bin/bench -modes parallel,reimport -rows $(ROWS) -runs $(RUNS) $(if $(BEFORE),-before $(BEFORE))

# An import in update mode of 2 x ROWS rows already stored, every tenth changed, RUNS rounds in turn with a fresh
# import of the same rows and with mysqlimport --replace of the changed rows over the same stored rows.
bench-update: lab-build
	bin/bench -modes parallel,update,mysqlimport-replace -rows $(ROWS) -runs $(RUNS) -stored $(STORED)

# The enqueuer's peak memory at 2 x 100,000 and 2 x 1,000,000 rows, with and without repeated keys.
bench-memory: lab-build
	lab/memory

# Breaks each safeguard on purpose in a scratch copy, one at a time, and runs the tests that should catch it; prints
# which breakages survived. Takes long, so it is not part of `make test`. ONLY=text runs the breakages named so.
mutants:
	$(GO) -C lab run ./mutants $(if $(ONLY),-only '$(ONLY)') ..

# Regenerates the shipped sample data; TestShippedTestdata keeps it equal to this output.
testdata:
	$(GO) run ./cmd/gendata --rows 1000 testdata

# `make run` on a fresh Debian machine, as root: a minimal bookworm in a namespace of its own, with no Redis, no
# MariaDB and no view of this machine's servers, in which `make run` must install both and print the tuples. Needs
# root; slow (a few minutes), so it is not part of `make test`.
fresh-run-test:
	scripts/fresh-run-test

# The real docker-compose.yml and Dockerfile in a Docker engine of the test's own (Debian's docker.io, in network
# and mount namespaces of its own), with stand-ins of the pinned images made from Debian's packages: up --build,
# cached rebuilds, three workers with one killed mid-run, the monitor through a moved port, a Redis restart. Needs
# root; slow (5 to 9 minutes; the first time 4 more, and 12 to build Compose), so it is not part of `make test`.
compose-test:
	scripts/compose-test

# docs/monitor.png and docs/monitor-queue.png: the web monitor in headless Chromium during a real run.
screenshot:
	scripts/monitor-screenshot

# The three contention failures (deadlock, counts, lost update) and how the system avoids each, in a database the
# demonstration makes for itself and drops.
contention:
	$(GO) -C lab run ./contention

# pprof text of the linear import (sample data and 2 x 300,000 rows, CPU and allocations) and of the lesson-5 style,
# under docs/.
profile:
	lab/profile

# Linear against parallel (2 worker processes at CONCURRENCY), mysqlimport --local and the original row-by-row import
# at 1,000 to 1,000,000 rows per file: medians with their spread, gains, verdicts, CPU per process, docs/compare.png
# and a regenerated findings.txt.
compare: lab-build
	bin/bench -sizes 1000,10000,100000,300000,1000000 -stored 0,5000000 -runs $(RUNS) -processes 2 -concurrency $(CONCURRENCY) -plot docs/compare.png -findings findings.txt
