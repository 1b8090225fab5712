package main

import (
	"image/png"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestCompareSmall runs the comparison on two small sizes end to end, into empty tables and then into tables that
// hold 300 rows: every mode's times per size, the tables of seconds, gains and CPU, the verdicts, a PNG that
// decodes, and findings that name the command, read the machine, give the small file into full tables against
// empty ones, and claim nothing the run did not measure. The bench checks each run's tuples against the rows stored.
func TestCompareSmall(t *testing.T) {
	t.Parallel()
	e := newBenchEnv(t)
	dir := t.TempDir()
	plotPath, findings := filepath.Join(dir, "compare.png"), filepath.Join(dir, "findings.txt")
	out := e.run("--sizes", "50,200", "--stored", "0,300", "--runs", "1", "--processes", "2", "--plot", plotPath, "--findings", findings)
	for _, want := range []string{
		// Under 100,000 rows per file a size runs 5 × --runs rounds; the lesson-5 style only the first --runs.
		`2 × 50 +into 0 +lesson5 +[0-9.]+\n`, `2 × 50 +into 0 +linear +([0-9.]+ ){4}[0-9.]+\n`, `2 × 200 +into 0 +parallel +([0-9.]+ ){4}[0-9.]+\n`,
		`2 × 200 +into 0 +mysqlimport +([0-9.]+ ){4}[0-9.]+\n`, `2 × 200 +into 300 +parallel +([0-9.]+ ){4}[0-9.]+\n`,
		"filling every table to 300 rows\n", "tables holding 0 rows each", "tables holding 300 rows each",
		`\n +200 +[0-9.]+ \([0-9.]+–[0-9.]+, 1\) +[0-9.]+ \([0-9.]+–[0-9.]+, 5\) `,
		`\n +50 +[0-9.]+× \(rounds [0-9.]+–[0-9.]+\) +[0-9.]+× \(rounds [0-9.]+–[0-9.]+\) +[0-5] of 5 `,
		`\n +200 +parallel +[0-9.]+ +[0-9.]+ +[0-9.]+ +[0-9.]+ +[0-9]+%`,
		`verdicts \(sign test over the rounds, 5% level\): 50: [a-z ]+; 200: `,
	} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("output lacks %s:\n%s", want, out)
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
	for _, want := range []string{"Written by `bench --bin", "What ran, and on what", "cores of", "shared its", "Seconds: median (fastest–slowest, runs), into empty tables",
		"Gains:", "Where the time goes", "Recommendation\n- ", "- Into tables that already held 300 rows each, by the same rule: ", "\nTables that already held 300 rows each\n",
		"The everyday import, 2 × 50 rows into tables that already held 300 rows each: linear ", "What these figures can and cannot carry", "differed by up to"} {
		if !strings.Contains(string(text), want) {
			t.Errorf("findings lack %q:\n%s", want, text)
		}
	}
	// Each level of stored rows says where parallel stood against mysqlimport, not only the empty tables.
	if n := strings.Count(string(text), "- Against mysqlimport --local, in medians: "); n != 2 {
		t.Errorf("findings compare parallel with mysqlimport at %d levels of stored rows, want 2:\n%s", n, text)
	}
	// A ratio of medians over the rounds both modes ran lies within the range of those rounds' own ratios. The
	// lesson-5 style, run in the first round only, was once set against linear's median over all five.
	for _, m := range regexp.MustCompile(`([0-9.]+)× \(rounds ([0-9.]+)–([0-9.]+)\)`).FindAllStringSubmatch(string(text), -1) {
		x, lo, hi := atof(t, m[1]), atof(t, m[2]), atof(t, m[3])
		if x < lo-0.01 || x > hi+0.01 {
			t.Errorf("%q: the ratio is outside its rounds' range", m[0])
		}
	}
	// Claims that no run measures: the file once said "(tested)" and "2 cores (shared, noisy)" whatever ran.
	for _, unwanted := range []string{"(tested)", "(shared, noisy)"} {
		if strings.Contains(string(text), unwanted) {
			t.Errorf("findings still say %q", unwanted)
		}
	}
}

// TestSignP checks the sign test against the binomial tail worked out by hand: 5 wins of 5 rounds is 1/32, 4 of 5
// is 6/32, 18 of 25 is (480,700 + 177,100 + 53,130 + 12,650 + 2,300 + 300 + 25 + 1) / 2^25.
func TestSignP(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		k, n int
		want float64
	}{{5, 5, 1.0 / 32}, {4, 5, 6.0 / 32}, {0, 5, 1}, {18, 25, 726206.0 / (1 << 25)}} {
		if got := signP(c.k, c.n); math.Abs(got-c.want) > 1e-12 {
			t.Errorf("signP(%d, %d) = %v, want %v", c.k, c.n, got, c.want)
		}
	}
}

// sizes makes results whose medians lie on the lines linear = a1 + b1·rows and parallel = a2 + b2·rows, over 5
// rounds each spread by ±1% around the line, in an order that makes every round's winner the median's.
func sizes(a1, b1, a2, b2 float64, rows ...int) []sizeResult {
	var rs []sizeResult
	for _, n := range rows {
		l, p := a1+b1*float64(n), a2+b2*float64(n)
		r := sizeResult{rows: n, times: map[string][]float64{}}
		for _, k := range []float64{1, 0.99, 1.01, 0.995, 1.005} {
			r.times["linear"] = append(r.times["linear"], l*k)
			r.times["parallel"] = append(r.times["parallel"], p*k)
		}
		rs = append(rs, r)
	}
	return rs
}

func TestFit(t *testing.T) {
	t.Parallel()
	rs := sizes(0.02, 1e-5, 0, 0, 1000, 10000, 100000, 1000000)
	if f := fitMode(rs, "linear"); math.Abs(f.fixed-0.02) > 1e-9 || math.Abs(f.perRow-1e-5) > 1e-12 {
		t.Errorf("fit = %+v, want fixed 0.02 and perRow 1e-5", f)
	}
	// The largest size 5% off the line, as a noisy run leaves it: 0.5 s, 25 times the fixed part. Weighted by
	// relative error, the fixed part stays within a tenth of 0.02; unweighted, it falls to 0.002.
	for i := range rs[3].times["linear"] {
		rs[3].times["linear"][i] *= 1.05
	}
	if f := fitMode(rs, "linear"); math.Abs(f.fixed-0.02) > 0.002 {
		t.Errorf("with the largest size 5%% off: fixed %.4f s, want 0.02 within 0.002", f.fixed)
	}
}

// TestRecommendation checks the three decisions on measurements made to order, and the threshold of the middle
// one against the crossing of its two lines worked out by hand: 0.01 + 10e-6·n = 0.03 + 5e-6·n at n = 4,000.
func TestRecommendation(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name    string
		results []sizeResult
		want    string
	}{
		{"faster everywhere", sizes(0.02, 10e-6, 0.015, 6e-6, 1000, 100000, 1000000), "for every import, whatever the file's size"},
		{"slower on small files", sizes(0.01, 10e-6, 0.03, 5e-6, 1000, 10000, 100000), "for files above about 4,000 rows per file"},
		{"slower on large files", sizes(0.02, 5e-6, 0.01, 6e-6, 1000, 100000, 1000000), "Keep the linear import"},
	} {
		got, evidence := recommendation(c.results)
		if !strings.Contains(got, c.want) {
			t.Errorf("%s: recommendation %q, want it to say %q", c.name, got, c.want)
		}
		if len(evidence) == 0 || !strings.Contains(evidence[0], "per 100,000 rows per file") {
			t.Errorf("%s: evidence %q lacks the fitted figures", c.name, evidence)
		}
	}
}

// TestVerdict: a side that wins every one of 5 rounds is beyond the noise, 4 of 5 is not.
func TestVerdict(t *testing.T) {
	t.Parallel()
	r := func(linear ...float64) sizeResult {
		return sizeResult{rows: 1, times: map[string][]float64{"linear": linear, "parallel": {1, 1, 1, 1, 1}}}
	}
	for _, c := range []struct {
		r    sizeResult
		want string
	}{{r(2, 2, 2, 2, 2), faster}, {r(0.5, 0.5, 0.5, 0.5, 0.5), slower}, {r(2, 2, 2, 2, 0.5), noise}} {
		if got := c.r.verdict(); got != c.want {
			t.Errorf("verdict of %v = %q, want %q", c.r.times["linear"], got, c.want)
		}
	}
	if got := roundRows(4049); got != "4,000" {
		t.Errorf("roundRows(4049) = %q, want 4,000", got)
	}
	if got := joinInts([]int{1000, 10000, 1000000}); got != "1,000; 10,000; 1,000,000" {
		t.Errorf("joinInts = %q", got)
	}
}

func atof(t *testing.T, s string) float64 {
	t.Helper()
	x, err := strconv.ParseFloat(s, 64)
	if err != nil {
		t.Fatal(err)
	}
	return x
}
