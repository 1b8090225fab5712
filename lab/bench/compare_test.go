package main

import (
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCompareSmall runs the comparison on two small sizes end to end: a table row per size, a crossover line, a
// PNG that decodes, and findings naming the command and the measured sizes.
func TestCompareSmall(t *testing.T) {
	t.Parallel()
	e := newBenchEnv(t)
	dir := t.TempDir()
	plotPath, findings := filepath.Join(dir, "compare.png"), filepath.Join(dir, "findings.txt")
	out := e.run("--sizes", "50,200", "--runs", "1", "--processes", "2", "--plot", plotPath, "--findings", findings)
	for _, want := range []string{"2 × 50 ", "2 × 200 ", "crossover:", "speedup"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	f, err := os.Open(plotPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if img, err := png.Decode(f); err != nil || img.Bounds().Dx() < 300 {
		t.Errorf("the plot is not a PNG of some size: %v", err)
	}
	text, err := os.ReadFile(findings)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Written by `bench --bin", "Machine", "cores", "Measured", "Recommendation"} {
		if !strings.Contains(string(text), want) {
			t.Errorf("findings lack %q:\n%s", want, text)
		}
	}
}

func TestCrossover(t *testing.T) {
	t.Parallel()
	r := func(rows int, linear, parallel float64) sizeResult {
		return sizeResult{rows: rows, times: map[string][]float64{"linear": {linear}, "parallel": {parallel}}}
	}
	for _, c := range []struct {
		results []sizeResult
		want    string
	}{
		{[]sizeResult{r(10, 1, 2), r(100, 2, 1), r(1000, 4, 2)}, "from 100 rows per file on (slower or level at 10)"},
		{[]sizeResult{r(10, 2, 1), r(100, 2, 1)}, "faster at every size"},
		{[]sizeResult{r(10, 2, 1), r(100, 1, 2)}, "none; parallel mode was not faster at the largest size"},
		{[]sizeResult{r(10, 1, 2), r(100, 2, 1), r(1000, 1, 1)}, "not faster at the largest size"},
	} {
		if got := crossover(c.results); !strings.Contains(got, c.want) {
			t.Errorf("crossover = %q, want it to say %q", got, c.want)
		}
	}
}
