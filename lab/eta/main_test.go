package main

import (
	"bytes"
	"context"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"hpnorton/internal/cli"
	"hpnorton/internal/testenv"
)

// TestMain gives back the package's test database of Redis when its tests end.
func TestMain(m *testing.M) { testenv.MainNoLeaks(m) }

// TestMeasuresBothFiles runs two small imports through a real worker and checks that the command prints each file's
// estimates at its tenths and its worst errors, for each run.
func TestMeasuresBothFiles(t *testing.T) {
	t.Parallel()
	ns := testenv.Namespace(t)
	testenv.Redis(t, ns) // removes the command's keys, all named after ns, when the test ends
	dsn := testenv.MySQL(t, ns)
	bin := filepath.Dir(testenv.Build(t, "worker"))
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	trace := filepath.Join(t.TempDir(), "trace.jsonl")
	args := []string{"--bin", bin, "--redis", testenv.RedisURL(), "--mysql", dsn, "--prefix", ns,
		"--rows", "4000", "--chunk-rows", "200", "--runs", "2", "--trace", trace}
	if code := run(ctx, args, &stdout, &stderr); code != cli.ExitOK {
		t.Fatalf("exit %d\n%s%s", code, stdout.String(), stderr.String())
	}
	out := stdout.String()
	for _, want := range []string{
		`(?m)^ +run 1 +file +done`, `(?m)^ +customers +[0-9]+% +[0-9.]+ +[0-9.]+ `, `(?m)^ +products +[0-9]+% `,
		`run 1 customers: done at [0-9.]+ s; from the 10% mark, [0-9]+ estimates: eta's worst error ([-+][0-9]+%|none known of [0-9]+)`,
		`run 2 products: done at [0-9.]+ s; `, `[0-9]+ of [0-9]+ within ±25% \([0-9]+ more within the tenth of a second the bars show\)`,
		`the whole-run estimate's worst [-+][0-9]+%`,
	} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("output lacks %s:\n%s", want, out)
		}
	}

	// The trace gives the same runs back: each file done at the same instant, with as many estimates.
	var replayed bytes.Buffer
	if code := run(ctx, []string{"--replay", trace}, &replayed, &stderr); code != cli.ExitOK {
		t.Fatalf("replay: exit %d\n%s", code, stderr.String())
	}
	summary := regexp.MustCompile(`(?m)^run [0-9]+ [a-z]+: done at [0-9.]+ s; from the 10% mark, [0-9]+ estimates`)
	want, got := summary.FindAllString(out, -1), summary.FindAllString(replayed.String(), -1)
	if len(want) != 4 || strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("replayed summaries\n%s\nwant those of the runs\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
