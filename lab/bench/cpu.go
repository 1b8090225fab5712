package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"
)

// A run's CPU-seconds are taken per process, so that what we spend (enqueuer, workers, Redis) stands apart from
// what the database spends, and each can be set against mysqlimport's. The servers and the workers run on before
// and after a run, so theirs is the difference of two readings of /proc; the enqueue and mysqlimport commands are
// children that exit, so theirs is the rusage that wait returns.

// clockTicks is USER_HZ, the unit of /proc/PID/stat's times: 100 on every Linux architecture Go builds for here.
const clockTicks = 100

// Process groups, in the order the table prints them. Workers are numbered after them: worker1, worker2…
const (
	procEnqueue     = "enqueue"
	procMysqlimport = "mysqlimport"
	procRedis       = "redis-server"
	procMariaDB     = "mariadbd"
	// procLesson5 is the bench's own process while it imports the lesson-5 way.
	procLesson5 = "lesson5"
)

// servers names the server processes whose CPU a run is charged with, by their command name in /proc. MySQL's
// server is mysqld where MariaDB's is not installed.
var servers = map[string][]string{procRedis: {"redis-server"}, procMariaDB: {"mariadbd", "mysqld"}}

// cpuUse is the CPU-seconds of one run, per process group.
type cpuUse map[string]float64

// ours is what the queue itself spends: the enqueuer, the workers and Redis.
func (u cpuUse) ours() float64 { return u[procEnqueue] + u.workers() + u[procRedis] }

// workers is every worker process's CPU together.
func (u cpuUse) workers() float64 {
	s := 0.0
	for name, v := range u {
		if strings.HasPrefix(name, "worker") {
			s += v
		}
	}
	return s
}

// selfCPU is the user and system CPU-seconds this process has spent so far.
func selfCPU() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

// processCPU reads a process's user and system CPU-seconds so far from /proc/PID/stat.
func processCPU(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name, field 2, is in parentheses and may hold spaces; utime and stime are fields 14 and 15,
	// the 12th and 13th after it.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields after the name", pid, len(f))
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: times %q %q", pid, f[11], f[12])
	}
	return float64(utime+stime) / clockTicks, nil
}

// serverPIDs finds each server's processes by command name. A group is missing when no such process runs, or
// when it runs as another user and /proc hides it.
func serverPIDs() map[string][]int {
	found := map[string][]int{}
	comms, _ := filepath.Glob("/proc/[0-9]*/comm")
	for _, c := range comms {
		b, err := os.ReadFile(c)
		if err != nil {
			continue // it exited
		}
		name := strings.TrimSpace(string(b))
		for group, names := range servers {
			if slices.Contains(names, name) {
				pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(c)))
				found[group] = append(found[group], pid)
			}
		}
	}
	return found
}

// cpuReading is the CPU-seconds so far of the processes that outlive a run.
type cpuReading map[string]float64

// readCPU reads the servers' CPU and each worker's, named worker1, worker2….
func readCPU(srv map[string][]int, workers []int) cpuReading {
	r := cpuReading{}
	for group, pids := range srv {
		for _, pid := range pids {
			if s, err := processCPU(pid); err == nil {
				r[group] += s
			}
		}
	}
	for i, pid := range workers {
		if s, err := processCPU(pid); err == nil {
			r["worker"+strconv.Itoa(i+1)] = s
		}
	}
	return r
}

// since is the CPU each process spent between an earlier reading and this one.
func (r cpuReading) since(earlier cpuReading) cpuUse {
	u := cpuUse{}
	for name, v := range r {
		if e, ok := earlier[name]; ok {
			u[name] = v - e
		}
	}
	return u
}

// writeCPU prints each mode's CPU-seconds per process as the median of its runs with their range, then what the
// queue itself spent (enqueuer, workers, Redis) and that per million rows.
func writeCPU(w io.Writer, modes []string, use map[string][]cpuUse, rows int) error {
	cols := []string{procEnqueue}
	for _, m := range modes {
		for _, u := range use[m] {
			for name := range u {
				if strings.HasPrefix(name, "worker") && !slices.Contains(cols, name) {
					cols = append(cols, name)
				}
			}
		}
	}
	slices.Sort(cols[1:])
	cols = append(cols, procRedis, procMariaDB, procMysqlimport)
	if slices.Contains(modes, modeLesson5) {
		cols = append(cols, procLesson5)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "CPU-s, median (min–max)\t%s\tours\tours per 1M rows\n", strings.Join(cols, "\t"))
	for _, m := range modes {
		fmt.Fprint(tw, m)
		for _, c := range cols {
			fmt.Fprintf(tw, "\t%s", spread(use[m], process(c)))
		}
		ours := func(u cpuUse) (float64, bool) { return u.ours(), !isLoader(m) }
		perM := func(u cpuUse) (float64, bool) { v, ok := ours(u); return v * 1e6 / float64(2*rows), ok }
		fmt.Fprintf(tw, "\t%s\t%s\n", spread(use[m], ours), spread(use[m], perM))
	}
	return tw.Flush()
}

// process is the value of one process group's CPU in a run, where the run has it.
func process(name string) func(cpuUse) (float64, bool) {
	return func(u cpuUse) (float64, bool) { v, ok := u[name]; return v, ok }
}

// values is a value over the runs that have it.
func values(runs []cpuUse, value func(cpuUse) (float64, bool)) []float64 {
	var xs []float64
	for _, u := range runs {
		if v, ok := value(u); ok {
			xs = append(xs, v)
		}
	}
	return xs
}

// spread is the median of a value over runs with its range, or "-" where no run has it.
func spread(runs []cpuUse, value func(cpuUse) (float64, bool)) string {
	xs := values(runs, value)
	if len(xs) == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f (%.2f–%.2f)", median(xs), slices.Min(xs), slices.Max(xs))
}

// medianOf is the median of one process group's CPU over runs, 0 when no run has it.
func medianOf(runs []cpuUse, name string) float64 { return medianOr0(values(runs, process(name))) }

// medianOr0 is the median of xs, 0 when there are none.
func medianOr0(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	return median(xs)
}
