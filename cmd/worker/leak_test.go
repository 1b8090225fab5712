package main

import (
	"testing"

	"hpnorton/internal/testenv"
)

// TestMain gives back the package's test database of Redis, and fails the package when a test leaves a goroutine
// running: a worker, pool or wait that outlives its test.
func TestMain(m *testing.M) { testenv.MainNoLeaks(m) }
