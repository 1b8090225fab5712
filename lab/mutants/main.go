// Command mutants breaks the importer's safeguards on purpose, one at a time, in a scratch copy of the product,
// and runs the tests that should notice. A breakage that every test passes "survived": the rule it breaks has no
// guard. `make mutants` runs it from the top; it takes long, so it is not part of `make test`.
//
// Each breakage replaces one exact piece of source, which must occur once: when the code it names changes, the
// breakage is reported stale, and the list is brought up to date with the code.
//
//	mutants [-only SUBSTRING] [-keep] [PRODUCT_DIR]
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"
)

func main() {
	only := flag.String("only", "", "run only the breakages whose name contains this")
	keep := flag.Bool("keep", false, "keep the scratch copy, and print where it is")
	timeout := flag.Duration("timeout", 15*time.Minute, "longest a breakage's tests may run")
	flag.Parse()
	root := cmpOr(flag.Arg(0), "..")
	if err := run(root, *only, *keep, *timeout); err != nil {
		fmt.Fprintln(os.Stderr, "mutants:", err)
		os.Exit(1)
	}
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func run(root, only string, keep bool, timeout time.Duration) error {
	scratch, err := os.MkdirTemp("", "hpnorton-mutants-")
	if err != nil {
		return err
	}
	if keep {
		fmt.Println("scratch copy:", scratch)
	} else {
		defer os.RemoveAll(scratch)
	}
	if err := copyProduct(root, scratch); err != nil {
		return fmt.Errorf("copy %s: %w", root, err)
	}
	var survived, stale []string
	ran := 0
	for _, m := range breakages {
		if !strings.Contains(m.name, only) {
			continue
		}
		ran++
		start := time.Now()
		verdict, err := try(scratch, m, timeout)
		if err != nil {
			stale = append(stale, m.name)
			fmt.Printf("STALE     %-58s %v\n", m.name, err)
			continue
		}
		if verdict == "" {
			survived = append(survived, m.name)
			fmt.Printf("SURVIVED  %-58s (%s, %s)\n", m.name, strings.Join(m.pkgs, " "), time.Since(start).Round(time.Second))
			continue
		}
		fmt.Printf("caught    %-58s by %s (%s)\n", m.name, verdict, time.Since(start).Round(time.Second))
	}
	fmt.Printf("\n%d breakages: %d caught, %d survived, %d stale\n", ran, ran-len(survived)-len(stale), len(survived), len(stale))
	if len(survived)+len(stale) > 0 {
		return errors.New("some breakages were not caught")
	}
	return nil
}

// try applies one breakage to the scratch copy, runs its tests, and restores the file. The verdict names the
// failing tests, or is empty when every test passed.
func try(scratch string, m breakage, timeout time.Duration) (verdict string, err error) {
	path := filepath.Join(scratch, m.file)
	orig, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	if n := bytes.Count(orig, []byte(m.old)); n != 1 {
		return "", fmt.Errorf("%s holds the code to break %d times, want once", m.file, n)
	}
	if err := os.WriteFile(path, bytes.Replace(orig, []byte(m.old), []byte(m.new), 1), 0o644); err != nil {
		return "", err
	}
	defer os.WriteFile(path, orig, 0o644)

	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	args := []string{"test", "-count=1", "-timeout", timeout.String()}
	if m.run != "" {
		args = append(args, "-run", m.run)
	}
	cmd := exec.CommandContext(ctx, "go", append(args, m.pkgs...)...)
	cmd.Dir = scratch
	out, err := cmd.CombinedOutput()
	if err == nil {
		return "", nil
	}
	if ctx.Err() != nil {
		return "the timeout", nil
	}
	if bytes.Contains(out, []byte("[build failed]")) || bytes.Contains(out, []byte("[setup failed]")) {
		return "", fmt.Errorf("the broken code does not build:\n%s", out)
	}
	var failed []string
	for _, f := range failRE.FindAllSubmatch(out, -1) {
		if name := string(f[1]); !slices.Contains(failed, name) {
			failed = append(failed, name)
		}
	}
	if len(failed) == 0 {
		return "", fmt.Errorf("go test failed without a failing test:\n%s", out)
	}
	return strings.Join(failed, ", "), nil
}

// failRE finds the top-level tests that failed.
var failRE = regexp.MustCompile(`(?m)^--- FAIL: (\S+)`)

// copyProduct copies the product module's tracked source, without the lab, builds or the git history.
func copyProduct(root, dst string) error {
	return filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		if d.IsDir() {
			switch rel {
			case ".git", "lab", "bin", "node_modules":
				return filepath.SkipDir
			}
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, info.Mode().Perm())
	})
}
