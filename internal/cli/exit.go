package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"hpnorton/internal/coordinator"
)

// Exit statuses, the same for every command. This file is the one place that maps errors to them (ExitCode).
const (
	// ExitOK: the work is done; for enqueue, every row landed or was already present. --help and --version too.
	ExitOK = 0
	// ExitRejected: the run finished, but some rows or files were rejected; or --strict found such and enqueued
	// nothing.
	ExitRejected = 1
	// ExitError: an infrastructure failure, such as an unreachable Redis or MySQL, or a task that failed for good.
	ExitError = 2
	// ExitUsage: a mistake in the command line or the environment. It is 2, as grep's and the go command's are.
	ExitUsage = 2
	// ExitCancelled: enqueue --cancel, from anywhere, stopped the run this enqueuer waited for.
	ExitCancelled = 3
	// ExitTimedOut: the run did not finish within --timeout; 124 as timeout(1) has it.
	ExitTimedOut = 124
	// ExitInterrupted is 128 + SIGINT (Ctrl-C), as a shell reports a command the signal ended; SIGTERM gives
	// 128 + 15 = 143.
	ExitInterrupted = 128 + int(syscall.SIGINT)
)

// Signalled is the cause of a context that SignalContext cancelled.
type Signalled struct{ Signal os.Signal }

func (s *Signalled) Error() string { return s.Signal.String() }

// Status is 128 plus the signal's number, as a shell reports a command that the signal ended.
func (s *Signalled) Status() int {
	if n, ok := s.Signal.(syscall.Signal); ok {
		return 128 + int(n)
	}
	return ExitInterrupted
}

// SignalContext returns a context that SIGINT or SIGTERM cancels with a *Signalled cause, so that the exit
// status can say which ended the command. A second signal gets the default action: a second Ctrl-C ends a command
// that is slow to stop.
func SignalContext(parent context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancelCause(parent)
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	go func() {
		select {
		case s := <-ch:
			signal.Stop(ch)
			cancel(&Signalled{Signal: s})
		case <-ctx.Done():
		}
	}()
	return ctx, func() {
		signal.Stop(ch)
		cancel(nil)
	}
}

// ExitCode maps what a command's run returned, under ctx, to its exit status.
func ExitCode(ctx context.Context, err error) int {
	var sig *Signalled
	var uerr *UsageError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp), errors.Is(err, ErrVersion):
		return ExitOK
	case errors.As(err, &uerr):
		return ExitUsage
	case errors.As(context.Cause(ctx), &sig), errors.As(err, &sig):
		return sig.Status()
	case errors.Is(err, coordinator.ErrTimedOut):
		return ExitTimedOut
	case errors.Is(err, coordinator.ErrCancelled):
		return ExitCancelled
	}
	return ExitError
}

// Exit ends a command the one way every command does, and returns its exit status. --help prints the usage and
// --version the version, on stdout. An error is one line on stderr, "prog: error: …" or "prog: usage error: …"
// followed by where the usage is; with --log-format json it is a JSON log record instead, as every other line of
// stderr is.
func Exit(ctx context.Context, stdout, stderr io.Writer, fs *flag.FlagSet, synopsis string, err error) int {
	code := ExitCode(ctx, err)
	switch {
	case err == nil:
		return code
	case errors.Is(err, flag.ErrHelp):
		Usage(stdout, fs, synopsis)
		return code
	case errors.Is(err, ErrVersion):
		fmt.Fprintln(stdout, Version(fs.Name()))
		return code
	}
	var uerr *UsageError
	msg, help := "error: "+err.Error(), ""
	if errors.As(err, &uerr) {
		msg, help = "usage error: "+uerr.Msg, fmt.Sprintf("Run '%s --help' for usage.", fs.Name())
	}
	if jsonLog(fs) {
		attrs := []any{"command", fs.Name(), "exit_status", code}
		if help != "" {
			attrs = append(attrs, "help", help)
		}
		slog.New(slog.NewJSONHandler(stderr, nil)).Error(msg, attrs...)
		return code
	}
	fmt.Fprintf(stderr, "%s: %s\n", fs.Name(), msg)
	if help != "" {
		fmt.Fprintln(stderr, help)
	}
	return code
}

// jsonLog tells whether the command logs JSON: --log-format json, or HPNORTON_LOG_FORMAT=json when the flag is not
// given. A mistake on the command line stops Parse before it reads the environment, so the variable is read here
// too: its error is then JSON like every other line of a JSON log.
func jsonLog(fs *flag.FlagSet) bool {
	f := fs.Lookup("log-format")
	if f == nil {
		return false
	}
	given := false
	fs.Visit(func(v *flag.Flag) { given = given || v == f })
	if !given && envOf(f) != "" && os.Getenv(envOf(f)) != "" {
		return strings.EqualFold(os.Getenv(envOf(f)), "json")
	}
	return strings.EqualFold(f.Value.String(), "json")
}
