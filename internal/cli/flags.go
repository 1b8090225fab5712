package cli

import (
	"cmp"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"runtime"
	"runtime/debug"
	"strings"
	"time"
)

// ErrVersion is what Parse returns for --version: the command prints Version and exits 0.
var ErrVersion = errors.New("version requested")

// UsageError is a mistake in the command line or the environment; commands print it in one line, point at
// --help, and exit with ExitUsage.
type UsageError struct{ Msg string }

func (e *UsageError) Error() string { return e.Msg }

// envIn finds the environment variable a flag's usage names, "(env HPNORTON_…)": the usage is the one place it is
// said, so --help, Parse and the deployment test (deploy_test.go) cannot disagree.
var envIn = regexp.MustCompile(`\(env (HPNORTON_[A-Z_]+)\)`)

// envOf returns the environment variable that sets flag f when no flag does, or "".
func envOf(f *flag.Flag) string {
	if m := envIn.FindStringSubmatch(f.Usage); m != nil {
		return m[1]
	}
	return ""
}

// Parse parses args into fs as GNU-style tools do: --name or -name, --name=value or --name value, flags before
// and after the arguments (enqueue DIR --json), and "--" ending them. -h and --help return flag.ErrHelp, --version
// ErrVersion. Then each flag not given takes its environment variable, when set (envOf). Every mistake is a
// *UsageError of one line naming the flag or variable and the form it wants. The flag package alone stops at the
// first argument, writes its own errors, and names flags with one dash.
func Parse(fs *flag.FlagSet, args []string) error {
	fs.SetOutput(io.Discard)
	var positional []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			positional = append(positional, args[i+1:]...)
			break
		}
		if len(a) < 2 || a[0] != '-' {
			positional = append(positional, a)
			continue
		}
		name, value, hasValue := strings.Cut(strings.TrimPrefix(a[1:], "-"), "=")
		f := fs.Lookup(name)
		switch {
		case f == nil && (name == "h" || name == "help"):
			return flag.ErrHelp
		case f == nil && name == "version":
			return ErrVersion
		case f == nil:
			return &UsageError{Msg: unknownFlag(fs, name)}
		case !hasValue && isBool(f):
			value = "true"
		case !hasValue && i+1 == len(args):
			return &UsageError{Msg: fmt.Sprintf("--%s needs a value: %s", name, expected(f))}
		case !hasValue:
			i++
			value = args[i]
		}
		if err := fs.Set(name, value); err != nil {
			return &UsageError{Msg: fmt.Sprintf("--%s %q: want %s", name, value, expected(f))}
		}
	}
	if err := fromEnvironment(fs); err != nil {
		return err
	}
	// fs.Args() is what the last Parse left; parsing "--" and the arguments sets it to the arguments.
	return fs.Parse(append([]string{"--"}, positional...))
}

// fromEnvironment sets each flag that the command line left alone from its environment variable. It sets the
// value and not the flag, so fs.Visit still lists only the flags given, which tells Invalid where a value came from.
func fromEnvironment(fs *flag.FlagSet) error {
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		env := envOf(f)
		v := os.Getenv(env)
		if err != nil || env == "" || v == "" || given[f.Name] {
			return
		}
		if f.Value.Set(v) != nil {
			err = &UsageError{Msg: fmt.Sprintf("%s=%q: want %s", env, v, expected(f))}
		}
	})
	return err
}

// Invalid is the usage error for a flag whose value parsed but cannot be used, such as --concurrency 0. It names
// where the value came from, the flag or its environment variable, followed by msg, which says what is wanted.
func Invalid(fs *flag.FlagSet, name, msg string) *UsageError {
	src := "--" + name
	given := false
	fs.Visit(func(f *flag.Flag) { given = given || f.Name == name })
	if f := fs.Lookup(name); !given && f != nil && envOf(f) != "" && os.Getenv(envOf(f)) != "" {
		src = envOf(f)
	}
	return &UsageError{Msg: src + ": " + msg}
}

func isBool(f *flag.Flag) bool {
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

// expected says what form a flag's value takes, for the message that refuses one.
func expected(f *flag.Flag) string {
	if g, ok := f.Value.(flag.Getter); ok {
		switch g.Get().(type) {
		case bool:
			return "true or false"
		case time.Duration:
			return "a duration with its unit, such as 90s, 30m or 720h"
		case int, int64:
			return "a whole number"
		case uint, uint64:
			return "a whole number, 0 or more"
		case float64:
			return "a number"
		}
	}
	if name, _ := flag.UnquoteUsage(f); name != "" && name != "value" {
		return "--" + f.Name + " " + name
	}
	return "--" + f.Name + " VALUE"
}

// unknownFlag says that no flag is called name and, when one is called nearly so, which one was meant.
func unknownFlag(fs *flag.FlagSet, name string) string {
	best, bestDist := "", 3 // more than two edits away is no suggestion
	fs.VisitAll(func(f *flag.Flag) {
		d := editDistance(name, f.Name)
		if strings.HasPrefix(f.Name, name) && len(name) >= 3 {
			d = min(d, 1)
		}
		if d < bestDist {
			best, bestDist = f.Name, d
		}
	})
	for _, builtin := range []string{"help", "version"} {
		if d := editDistance(name, builtin); d < bestDist {
			best, bestDist = builtin, d
		}
	}
	if best != "" {
		return fmt.Sprintf("unknown flag --%s; did you mean --%s?", name, best)
	}
	return fmt.Sprintf("unknown flag --%s", name)
}

// editDistance is the Levenshtein distance between a and b: the fewest letters inserted, deleted or replaced.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

// Usage writes the command's help, as --help shows it: the synopsis, then every flag with two dashes, its
// value's name, what it does and its default.
func Usage(w io.Writer, fs *flag.FlagSet, synopsis string) {
	fmt.Fprintf(w, "Usage: %s\n\nFlags:\n", synopsis)
	fs.VisitAll(func(f *flag.Flag) {
		name, usage := flag.UnquoteUsage(f)
		line := "  --" + f.Name
		if name != "" {
			line += " " + name
		}
		fmt.Fprintf(w, "%s\n      %s", line, usage)
		if f.DefValue != "" && f.DefValue != "0" && f.DefValue != "false" {
			fmt.Fprintf(w, " (default %s)", f.DefValue)
		}
		fmt.Fprintln(w)
	})
	fmt.Fprintln(w, "  -h, --help\n      show this help and exit\n  --version\n      print the version and exit")
	fmt.Fprintln(w, "\nA flag overrides its environment variable, which overrides the default.")
}

// Version is what --version prints: the command, the module's version and the commit it was built from, when the
// build recorded them (go build in a git checkout does, unless -buildvcs=false), and the Go release.
func Version(prog string) string {
	info, _ := debug.ReadBuildInfo()
	return versionOf(prog, info)
}

func versionOf(prog string, info *debug.BuildInfo) string {
	v, rev, modified := "(devel)", "", false
	if info != nil {
		v = cmp.Or(info.Main.Version, v)
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
	}
	line := fmt.Sprintf("%s (hpnorton) %s", prog, v)
	if rev != "" {
		line += ", commit " + rev
		if modified {
			line += " with uncommitted changes"
		}
	}
	return line + ", " + runtime.Version()
}
