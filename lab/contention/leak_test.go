package main

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package when a test leaves a goroutine running: a transaction or Redis pool that outlives its test.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
