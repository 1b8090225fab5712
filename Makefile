# The README's two commands are `make run` (the main job) and `make test` (lint, then every test with -race).
GO          ?= go
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
CONCURRENCY ?= 4
DATA        ?= testdata

.PHONY: build run test lint bench testdata

build:
	$(GO) build -o bin/ ./cmd/...

# One worker at CONCURRENCY (1 is linear mode) and one enqueue of DATA, printing the result tuples.
run: build
	CONCURRENCY=$(CONCURRENCY) scripts/run-local $(DATA)

lint:
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt would reformat:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

test: lint
	$(GO) test -race -count=1 ./...

# End-to-end seconds and rows/s of the linear mode at 2 x 1,000 and 2 x 300,000 rows, three runs of three imports each.
bench:
	$(GO) test -run '^$$' -bench BenchmarkLinear -benchtime 3x -count 3 ./cmd/enqueue

# Regenerates the shipped sample data; TestShippedTestdata keeps it equal to this output.
testdata:
	$(GO) run ./cmd/gendata -rows 1000 testdata
