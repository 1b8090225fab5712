// Command machine measures what the kernel charges a process on this machine: a system call, a first touch of a
// page (a page fault), and a switch between two threads that wake each other. The same bench gives other figures
// on machines of the same size, and these prices are where they differ (docs/machines.md): a run of ours makes
// tens of thousands of each.
//
// Each figure is the median of -runs rounds, and the fastest round is printed beside it.
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"slices"
	"syscall"
	"time"
)

func main() {
	runs := flag.Int("runs", 5, "rounds of each measure")
	flag.Parse()
	if *runs < 1 {
		fmt.Fprintln(os.Stderr, "machine: --runs must be at least 1")
		os.Exit(2)
	}
	for _, m := range []struct {
		name string
		f    func() (time.Duration, int, error)
	}{
		{"system call (getppid)", syscalls},
		{"page fault (first touch of an anonymous page)", faults},
		{"thread switch (two threads taking turns on pipes)", switches},
	} {
		var each []time.Duration
		for range *runs {
			d, n, err := m.f()
			if err != nil {
				fmt.Fprintf(os.Stderr, "machine: %s: %v\n", m.name, err)
				os.Exit(1)
			}
			each = append(each, d/time.Duration(n))
		}
		slices.Sort(each)
		fmt.Printf("%-50s median %8s  fastest %8s  (%d rounds)\n", m.name, each[len(each)/2], each[0], *runs)
	}
}

// syscalls times a million getppid calls, the cheapest system call there is.
func syscalls() (time.Duration, int, error) {
	const n = 1_000_000
	start := time.Now()
	for range n {
		syscall.Getppid()
	}
	return time.Since(start), n, nil
}

// faults maps 256 MiB of fresh memory and writes a byte to each page, which the kernel then zeroes and maps.
func faults() (time.Duration, int, error) {
	const size = 256 << 20
	page := os.Getpagesize()
	b, err := syscall.Mmap(-1, 0, size, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		return 0, 0, err
	}
	defer syscall.Munmap(b)
	start := time.Now()
	for i := 0; i < size; i += page {
		b[i] = 1
	}
	return time.Since(start), size / page, nil
}

// switches passes a byte back and forth between two OS threads through two pipes, 20,000 times: each pass wakes
// the other thread, two switches and four system calls a round trip. It gives the time of one pass.
func switches() (time.Duration, int, error) {
	const n = 20_000
	var ping, pong [2]int
	if err := syscall.Pipe(ping[:]); err != nil {
		return 0, 0, err
	}
	if err := syscall.Pipe(pong[:]); err != nil {
		return 0, 0, err
	}
	defer func() {
		for _, fd := range []int{ping[0], ping[1], pong[0], pong[1]} {
			syscall.Close(fd)
		}
	}()
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		buf := make([]byte, 1)
		for range n {
			if _, err := syscall.Read(ping[0], buf); err != nil {
				done <- err
				return
			}
			if _, err := syscall.Write(pong[1], buf); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	buf := make([]byte, 1)
	start := time.Now()
	for range n {
		if _, err := syscall.Write(ping[1], buf); err != nil {
			return 0, 0, err
		}
		if _, err := syscall.Read(pong[0], buf); err != nil {
			return 0, 0, err
		}
	}
	d := time.Since(start)
	if err := <-done; err != nil {
		return 0, 0, err
	}
	return d, 2 * n, nil
}
