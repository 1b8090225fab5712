//go:build crashtest

package worker

import (
	"os"
	"strconv"
	"sync/atomic"
	"syscall"
)

// Built with the crashtest tag, and run with HPNORTON_CRASH_AFTER_COMMIT=N, a worker kills itself with SIGKILL
// once its Nth task has committed and before the task's outcome is recorded: the window where a crash leaves rows
// stored and unreported, which no timing of a kill from outside hits on purpose. Tests build such a worker
// (TestWorkerDiesMidRun); the commands are built without the tag, and then the hook is nil.
func init() {
	n, err := strconv.Atoi(os.Getenv("HPNORTON_CRASH_AFTER_COMMIT"))
	if err != nil || n < 1 {
		return
	}
	var committed atomic.Int64
	crashAfterCommit = func() {
		if committed.Add(1) == int64(n) {
			_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {} // the signal takes the process before anything else runs here
		}
	}
}
