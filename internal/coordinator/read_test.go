package coordinator

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"hpnorton/internal/record"
)

// productsFile writes a random products file and returns what any reading must find, known by construction rather
// than by parsing: the row sent for each key (the first valid occurrence, whose description names its line), and
// for every other line of a record whether it is rejected as bad or as a repeat of which line. Keys come from a
// pool of pool keys, so they repeat; some records are bad; some descriptions span lines. The first ascending
// records take keys spread over the pool in order instead, as in a file sorted by key: ascending, or with a key
// repeated now and then where ascending exceeds pool.
func productsFile(t *testing.T, rng *rand.Rand, records, pool, ascending int) (dir string, sent map[string]string, rejected map[int]int) {
	t.Helper()
	var b strings.Builder
	b.WriteString("product_id,description,product_type,quantity_available\n")
	sent = map[string]string{}
	firstLine := map[string]int{}
	rejected = map[int]int{} // line → the first line it repeats, or 0 for a bad record
	line := 2
	for i := range records {
		key := fmt.Sprintf("P%05d", rng.IntN(pool))
		if i < ascending {
			key = fmt.Sprintf("P%05d", i*pool/ascending)
		}
		desc := fmt.Sprintf("line %d", line)
		span := 1
		if rng.IntN(20) == 0 {
			desc += "\nand the next" // a quoted field over two lines
			span = 2
		}
		qty := "3"
		bad := false
		switch rng.IntN(25) {
		case 0:
			qty, bad = "-1", true
		case 1:
			key, bad = " "+key, true
		}
		fmt.Fprintf(&b, "%s,\"%s\",office,%s\n", key, desc, qty)
		switch first, seen := firstLine[key]; {
		case bad:
			rejected[line] = 0
		case seen:
			rejected[line] = first
		default:
			firstLine[key] = line
			sent[key] = desc
		}
		line += span
	}
	dir = t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "products.csv"), []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir, sent, rejected
}

// TestRepeatsSettledBeforeSending reads random files with repeated keys, bad records and multi-line fields, with
// the filter's false positives at their usual rate and at one key in two, and chunks of 1 to 1,000 rows. Each key
// is sent exactly once, as its first valid occurrence; every other line is rejected, a repeat naming the first
// line; and the counts add up.
func TestRepeatsSettledBeforeSending(t *testing.T) {
	t.Parallel()
	// The last three: a file sorted by key, with more keys than the filter's exact ones; one whose first 6,000 keys
	// ascend before keys from the whole pool repeat them; and one sorted with repeats.
	for _, tc := range []struct{ records, pool, ascending int }{{300, 100, 0}, {9000, 4000, 0}, {9000, 1 << 30, 0}, {6000, 99999, 6000}, {9000, 20000, 6000}, {3000, 2000, 3000}} {
		rng := rand.New(rand.NewPCG(uint64(tc.records), uint64(tc.pool)))
		dir, wantSent, wantRejected := productsFile(t, rng, tc.records, tc.pool, tc.ascending)
		for _, fp := range []float64{0, 0.5} {
			for _, chunkRows := range []int{1, 7, 1000} {
				t.Run(fmt.Sprintf("records=%d/pool=%d/ascending=%d/fp=%g/chunk=%d", tc.records, tc.pool, tc.ascending, fp, chunkRows), func(t *testing.T) {
					got := map[string]string{}
					tasks := 0
					send := func(_ context.Context, k record.Kind, firstLine, rows int, data []byte, _ bool) error {
						tasks++
						lines := bytes.Split(bytes.TrimSuffix(data, []byte{'\n'}), []byte{'\n'})
						if len(lines) != rows || rows > chunkRows {
							t.Errorf("task at line %d: %d rows claimed, %d sent, chunks of %d", firstLine, rows, len(lines), chunkRows)
						}
						keys := make([]string, 0, len(lines))
						for _, l := range lines {
							f := strings.Split(string(l), "\t")
							if _, twice := got[f[0]]; twice {
								t.Errorf("key %s sent twice", f[0])
							}
							got[f[0]] = strings.ReplaceAll(f[1], `\n`, "\n")
							keys = append(keys, f[0])
						}
						if !slices.IsSorted(keys) {
							t.Errorf("task at line %d: rows out of key order", firstLine)
						}
						return nil
					}
					cfg := Config{Dir: dir, ChunkRows: chunkRows, ChunkBytes: DefaultChunkBytes, falsePositives: fp}
					r, fileErr, err := readFile(t.Context(), cfg, record.Products, &feed{}, send)
					if err != nil || fileErr != nil {
						t.Fatalf("readFile: %v, %v", fileErr, err)
					}
					defer r.problems.close()
					defer r.dups.close()
					if tc.ascending == tc.records && tc.pool > tc.records && r.heldRows != 0 {
						t.Errorf("%d rows of a file sorted by key held back for a second read, want none", r.heldRows)
					}
					if diff := cmp.Diff(wantSent, got); diff != "" {
						t.Errorf("rows sent (-want, +got):\n%s", diff)
					}
					gotRejected := map[int]int{}
					if err := merge(&r.problems, &r.dups, func(p record.Problem) error {
						gotRejected[p.Line] = p.FirstLine
						return nil
					}); err != nil {
						t.Fatal(err)
					}
					if diff := cmp.Diff(wantRejected, gotRejected); diff != "" {
						t.Errorf("rejected lines, with the line each repeats (-want, +got):\n%s", diff)
					}
					want := record.Counts{Read: int64(tc.records), Rejected: int64(len(wantRejected))}
					if r.counts != want || r.tasks != tasks || len(wantSent)+len(wantRejected) != tc.records {
						t.Errorf("counts %+v and %d tasks; want %+v and %d", r.counts, r.tasks, want, tasks)
					}
				})
			}
		}
	}
}

// TestSecondReadFindsAChangedFile: a file that changes between the two reads is reported, not settled with rows
// of another file.
func TestSecondReadFindsAChangedFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "products.csv")
	if err := os.WriteFile(path, []byte("product_id,description,product_type,quantity_available\nP1,a,t,1\nP1,b,t,1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	first := true
	send := func(context.Context, record.Kind, int, int, []byte, bool) error {
		if first { // the first read is done with the file once it sends its last chunk
			first = false
			return os.WriteFile(path, []byte("product_id,description,product_type,quantity_available\nP1,a,t,1\nP2,b,t,1\n"), 0o644)
		}
		return nil
	}
	r, fileErr, err := readFile(t.Context(), Config{Dir: dir, ChunkRows: 10, ChunkBytes: DefaultChunkBytes}, record.Products, &feed{}, send)
	if err != nil {
		t.Fatal(err)
	}
	defer r.problems.close()
	defer r.dups.close()
	if fileErr == nil || !strings.Contains(fileErr.Error(), "the file changed while it was read") || !strings.Contains(fileErr.Error(), "1 records held back") {
		t.Errorf("file error = %v, want one saying the file changed and the held row was not imported", fileErr)
	}
	// Line 2 was sent; line 3, held back, is rejected with the file's problem, so every record read is counted.
	if want := (record.Counts{Read: 2, Rejected: 1}); r.counts != want || r.tasks != 1 {
		t.Errorf("counts %+v and %d tasks, want %+v and 1", r.counts, r.tasks, want)
	}
}

// TestKeysOutOfOrderInAChangedFile: the first key out of order reads the file's start again, to add the keys
// that ascended before it; a file changed by then is reported, not settled with another file's keys.
func TestKeysOutOfOrderInAChangedFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "products.csv")
	const header = "product_id,description,product_type,quantity_available\n"
	if err := os.WriteFile(path, []byte(header+"P1,a,t,1\nP2,a,t,1\nP3,a,t,1\nP1,b,t,1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	sends := 0
	send := func(context.Context, record.Kind, int, int, []byte, bool) error {
		if sends++; sends == 1 { // after two rows; the reader holds the whole file by then
			return os.WriteFile(path, []byte(header+"P9,a,t,1\nP2,a,t,1\nP3,a,t,1\nP1,b,t,1\n"), 0o644)
		}
		return nil
	}
	r, fileErr, err := readFile(t.Context(), Config{Dir: dir, ChunkRows: 2, ChunkBytes: DefaultChunkBytes}, record.Products, &feed{}, send)
	if err != nil {
		t.Fatal(err)
	}
	defer r.problems.close()
	defer r.dups.close()
	if fileErr == nil || !strings.Contains(fileErr.Error(), "the file changed while it was read") {
		t.Errorf("file error = %v, want one saying the file changed", fileErr)
	}
	if r.tasks != 1 || r.counts.Read != 4 {
		t.Errorf("%d tasks after %d records, want 1 after 4: the row out of order stays unsent", r.tasks, r.counts.Read)
	}
}

// TestChunksApartOnlyInKeyOrder: a chunk is sent apart (tasks.ImportPayload.Apart) only when its rows came in key
// order and its keys lie above every key sent before it from the file: then no other task of the file reads in
// its range.
func TestChunksApartOnlyInKeyOrder(t *testing.T) {
	t.Parallel()
	keys := func(from, to int, down bool) []int {
		var k []int
		for i := from; i < to; i++ {
			k = append(k, i)
		}
		if down {
			slices.Reverse(k)
		}
		return k
	}
	step := func(from, to, by int) []int {
		var k []int
		for i := from; i < to; i += by {
			k = append(k, i)
		}
		return k
	}
	for _, c := range []struct {
		name  string
		keys  []int
		apart []bool // each chunk of 10 rows's, in the order sent
	}{
		{"in key order", keys(0, 30, false), []bool{true, true, true}},
		{"each chunk descending", slices.Concat(keys(0, 10, true), keys(10, 20, true), keys(20, 30, true)), []bool{false, false, false}},
		{"a second run of keys below the first", slices.Concat(keys(20, 30, false), keys(10, 20, false), keys(30, 40, false)), []bool{true, false, true}},
		{"a chunk among the keys of one before the last", slices.Concat(step(20, 40, 2), keys(10, 20, false), step(21, 41, 2)), []bool{true, false, false}},
		{"a chunk reaching below the last", slices.Concat(keys(10, 20, false), keys(5, 10, false), keys(20, 25, false), keys(25, 35, false)), []bool{true, false, true}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			var b strings.Builder
			b.WriteString("product_id,description,product_type,quantity_available\n")
			for _, k := range c.keys {
				fmt.Fprintf(&b, "P%04d,desk,office,1\n", k)
			}
			if err := os.WriteFile(filepath.Join(dir, "products.csv"), []byte(b.String()), 0o644); err != nil {
				t.Fatal(err)
			}
			var apart []bool
			send := func(_ context.Context, _ record.Kind, _, _ int, _ []byte, a bool) error {
				apart = append(apart, a)
				return nil
			}
			r, fileErr, err := readFile(t.Context(), Config{Dir: dir, ChunkRows: 10, ChunkBytes: DefaultChunkBytes}, record.Products, &feed{}, send)
			if err != nil || fileErr != nil {
				t.Fatal(err, fileErr)
			}
			r.problems.close()
			r.dups.close()
			if !slices.Equal(apart, c.apart) {
				t.Errorf("chunks apart: %v, want %v", apart, c.apart)
			}
		})
	}
}

// TestChunkBounds: a task holds at most ChunkRows rows and ChunkBytes bytes, and the rows of a file in key order
// arrive in file order.
func TestChunkBounds(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	var b strings.Builder
	b.WriteString("product_id,description,product_type,quantity_available\n")
	for i := range 1000 {
		fmt.Fprintf(&b, "P%04d,%s,office,1\n", i, strings.Repeat("x", 240)) // about 256 bytes a row
	}
	if err := os.WriteFile(filepath.Join(dir, "products.csv"), []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	const maxBytes = 64 << 10
	var sizes []int
	var all []byte
	send := func(_ context.Context, _ record.Kind, _, rows int, data []byte, _ bool) error {
		if len(data) > maxBytes || rows > 200 {
			t.Errorf("a task of %d rows and %d bytes; want at most 200 and %d", rows, len(data), maxBytes)
		}
		sizes = append(sizes, rows)
		all = append(all, data...)
		return nil
	}
	r, fileErr, err := readFile(t.Context(), Config{Dir: dir, ChunkRows: 200, ChunkBytes: maxBytes}, record.Products, &feed{}, send)
	if err != nil || fileErr != nil {
		t.Fatal(fileErr, err)
	}
	defer r.problems.close()
	defer r.dups.close()
	// 64 KiB holds 256 rows of 256 bytes, so the row bound cuts first: 5 tasks of 200.
	if diff := cmp.Diff([]int{200, 200, 200, 200, 200}, sizes); diff != "" {
		t.Errorf("rows a task (-want, +got):\n%s", diff)
	}
	r2, _, err := readFile(t.Context(), Config{Dir: dir, ChunkRows: 1000, ChunkBytes: maxBytes}, record.Products, &feed{}, func(_ context.Context, _ record.Kind, _, rows int, data []byte, _ bool) error {
		if len(data) > maxBytes {
			t.Errorf("a task of %d bytes; want at most %d", len(data), maxBytes)
		}
		all = append(all, data...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer r2.problems.close()
	defer r2.dups.close()
	if r2.tasks != 4 { // 1,000 rows of 256 bytes, 256 to a task
		t.Errorf("%d tasks under the byte bound, want 4", r2.tasks)
	}
	if want := 2 * 1000; bytes.Count(all, []byte{'\n'}) != want {
		t.Errorf("%d rows sent in all, want %d", bytes.Count(all, []byte{'\n'}), want)
	}
}

// TestHeldKeys checks the held set against a map: every key added is found with its value, through the table's
// growth, and no other key is.
func TestHeldKeys(t *testing.T) {
	t.Parallel()
	h := newHeldKeys()
	defer h.free()
	want := map[string]int{}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 20000 {
		key := fmt.Sprintf("K%d", rng.IntN(30000))
		if _, ok := want[key]; ok != (h.get([]byte(key)) >= 0) {
			t.Fatalf("key %s: in the map %t, found %t", key, ok, !ok)
		}
		if _, ok := want[key]; !ok {
			want[key] = i + 2
			h.add([]byte(key), i+2)
		}
	}
	for key, line := range want {
		off := h.get([]byte(key))
		if off < 0 {
			t.Fatalf("get(%s) finds nothing", key)
		}
		if h.held(off) != line || h.first(off) != 0 {
			t.Fatalf("get(%s) = %d, holding %d and %d; want line %d and 0", key, off, h.held(off), h.first(off), line)
		}
		h.setFirst(off, line-1)
	}
	for key, line := range want {
		if off := h.get([]byte(key)); h.first(off) != line-1 || h.held(off) != line {
			t.Fatalf("%s after setFirst: held %d, first %d; want %d and %d", key, h.held(off), h.first(off), line, line-1)
		}
	}
	if h.len() != len(want) || h.get([]byte("K30000")) >= 0 || h.get(nil) >= 0 {
		t.Errorf("%d keys held, want %d, and no other key found", h.len(), len(want))
	}
}

// TestCheckStopsWhenInterrupted: Check sends nothing, so its reading looks at the context itself, and stops.
func TestCheckStopsWhenInterrupted(t *testing.T) {
	t.Parallel()
	dir, _, _ := productsFile(t, rand.New(rand.NewPCG(3, 4)), 10000, 5000, 0)
	if err := os.WriteFile(filepath.Join(dir, "customers.csv"), []byte("user_id,name,address,zip_code,phone_number,email\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := Check(ctx, Config{Dir: dir}); err == nil || !strings.Contains(err.Error(), "interrupted while checking") {
		t.Errorf("Check after an interruption = %v, want an error saying it was interrupted", err)
	}
	rep, err := Check(t.Context(), Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if rep.ProblemCount <= maxListedProblems || len(rep.Problems) != maxListedProblems {
		t.Errorf("Check = %d problems, %d listed; want more than %d, the first %d listed", rep.ProblemCount, len(rep.Problems), maxListedProblems, maxListedProblems)
	}
}

// TestChunksSentInKeyOrder reads files whose keys come in random order, of several lengths, some plain and some
// with letters beyond ASCII or a backslash, which a row escapes: every task's rows reach the workers in key order,
// the order in which loading them takes their locks, and every key is sent once.
func TestChunksSentInKeyOrder(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(7, 8))
	for _, chunkRows := range []int{2, 50, 1000} {
		var b strings.Builder
		b.WriteString("product_id,description,product_type,quantity_available\n")
		want := map[string]bool{}
		for _, i := range rng.Perm(3000) {
			key := fmt.Sprintf("P%d%s", i, []string{"", "é", `\`, "x"}[i%4]) // keys of several lengths share prefixes: P12, P123é
			desc := []string{"desk", "café table", `back\slash`, "a, b"}[rng.IntN(4)]
			fmt.Fprintf(&b, "%s,\"%s\",office,1\n", key, desc)
			want[strings.ReplaceAll(key, `\`, `\\`)] = true // as the row holds it
		}
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "products.csv"), []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		got := map[string]bool{}
		send := func(_ context.Context, _ record.Kind, firstLine, rows int, data []byte, _ bool) error {
			var last []byte
			for row := range bytes.Lines(data) {
				key := rowKey(row, 0)
				if last != nil && bytes.Compare(last, key) >= 0 {
					t.Errorf("chunks of %d: the task of line %d sends key %q after %q", chunkRows, firstLine, key, last)
				}
				last = key
				got[string(key)] = true
			}
			return nil
		}
		r, fileErr, err := readFile(t.Context(), Config{Dir: dir, ChunkRows: chunkRows, ChunkBytes: DefaultChunkBytes}, record.Products, &feed{}, send)
		if err != nil || fileErr != nil {
			t.Fatal(fileErr, err)
		}
		r.problems.close()
		r.dups.close()
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("chunks of %d: keys sent (-want, +got):\n%s", chunkRows, diff)
		}
	}
}
