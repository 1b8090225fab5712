package main

import (
	"bytes"
	"cmp"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	gocmp "github.com/google/go-cmp/cmp"

	"hpnorton/internal/cli"
)

// The oracle: what an import of a folder must do, worked out from the files alone by a reader and rules written
// here, apart from the importer's own (csvread, record, coordinator). TestOracle holds real runs, linear and
// parallel, to it.

// oracleColumn is a column as the README and schema.sql state it.
type oracleColumn struct {
	name     string
	maxChars int
	key, num bool
}

var oracleFiles = []struct {
	file, table string
	cols        []oracleColumn
}{
	{"customers.csv", "customers", []oracleColumn{{"user_id", 64, true, false}, {"name", 255, false, false}, {"address", 255, false, false}, {"zip_code", 16, false, false}, {"phone_number", 32, false, false}, {"email", 255, false, false}}},
	{"products.csv", "products", []oracleColumn{{"product_id", 64, true, false}, {"description", 255, false, false}, {"product_type", 64, false, false}, {"quantity_available", 0, false, true}}},
}

// oracleRecord is one CSV record and the lines it starts and ends on.
type oracleRecord struct {
	line, last int
	fields     []string
}

// oracleRead splits RFC 4180 CSV: fields quoted or not, "" inside quotes for a quote, line breaks inside quotes
// kept. Empty lines hold no record. The header is returned as the first record, and sets how many fields a record
// has. As the README says, a record that spans lines without closing into that many fields is taken for a stray
// quote: its first line alone is a record, a bad one, and reading goes on with the next line.
func oracleRead(data []byte) []oracleRecord {
	var recs []oracleRecord
	line, want := 1, -1
	for len(data) > 0 {
		if data[0] == '\n' {
			data, line = data[1:], line+1
			continue
		}
		start, startLine := data, line
		rec := oracleRecord{line: line}
		closed := true
		for closed {
			var field strings.Builder
			if data[0] == '"' {
				i := 1
				for closed = false; i < len(data); i++ {
					if data[i] == '"' && i+1 < len(data) && data[i+1] == '"' {
						field.WriteByte('"')
						i++
						continue
					}
					if data[i] == '"' {
						i, closed = i+1, true
						break
					}
					if data[i] == '\n' {
						line++
					}
					field.WriteByte(data[i])
				}
				data = data[i:]
			} else {
				i := 0
				for i < len(data) && data[i] != ',' && data[i] != '\n' {
					i++
				}
				field.Write(data[:i])
				data = data[i:]
			}
			rec.fields = append(rec.fields, field.String())
			if len(data) == 0 || data[0] == '\n' {
				rec.last = line
				if len(data) > 0 {
					data, line = data[1:], line+1
				}
				break
			}
			if closed {
				data = data[1:] // the comma
			}
		}
		if want < 0 {
			want = len(rec.fields)
		}
		if !closed || rec.last > rec.line && len(rec.fields) != want {
			rec = oracleRecord{line: startLine, last: startLine} // no fields: a bad record
			data, line = nil, startLine+1
			if end := bytes.IndexByte(start, '\n'); end >= 0 {
				data = start[end+1:]
			}
		}
		recs = append(recs, rec)
	}
	return recs
}

// oracleProblem is the column a record is rejected for, and the first line of its key when it is a repeat.
func oracleProblem(cols []oracleColumn, fields []string) string {
	if len(fields) != len(cols) {
		return "fields"
	}
	for i, c := range cols {
		v := fields[i]
		bad := !utf8.ValidString(v) || strings.ContainsRune(v, 0) ||
			c.key && (v == "" || strings.TrimSpace(v) != v)
		if c.num {
			_, err := strconv.ParseUint(v, 10, 32) // digits only, 0 to 4294967295
			bad = bad || err != nil
		} else if utf8.ValidString(v) && utf8.RuneCountInString(v) > c.maxChars {
			bad = true
		}
		if bad {
			return c.name
		}
	}
	return ""
}

// oracleOutcome is what an import of a folder must leave: each table's rows by key, every rejected line with its
// column or the line it repeats, and the tuple per file.
type oracleOutcome struct {
	rows    map[string]map[string][]string
	rejects []string // "file:line-last:column" or "file:line-last:repeats N", in file and line order
	tuples  [][3]int64
	// updates holds, per file, the present rows update mode changed and those it left equal.
	updates [][2]int64
}

// oracleImport works out an import of dir into tables holding stored: the first valid occurrence of a key is
// stored unless the key is stored already, and every other line of a record is rejected. In update mode the first
// valid occurrence of a stored key replaces the stored row when any value differs.
func oracleImport(t *testing.T, dir string, stored map[string]map[string][]string, update bool) oracleOutcome {
	t.Helper()
	out := oracleOutcome{rows: map[string]map[string][]string{}}
	for _, f := range oracleFiles {
		rows := map[string][]string{}
		for k, v := range stored[f.table] {
			rows[k] = v
		}
		before := int64(len(rows))
		data, err := os.ReadFile(filepath.Join(dir, f.file))
		if err != nil {
			t.Fatal(err)
		}
		recs := oracleRead(data)
		first := map[string]int{}
		var added, updated, unchanged int64
		for _, r := range recs[1:] {
			if col := oracleProblem(f.cols, r.fields); col != "" {
				out.rejects = append(out.rejects, fmt.Sprintf("%s:%d-%d:%s", f.file, r.line, r.last, col))
				continue
			}
			key := r.fields[0]
			if line, seen := first[key]; seen {
				out.rejects = append(out.rejects, fmt.Sprintf("%s:%d-%d:repeats %d", f.file, r.line, r.last, line))
				continue
			}
			first[key] = r.line
			for i, c := range f.cols {
				if c.num { // an INT column gives "7" back for "007"
					n, _ := strconv.ParseUint(r.fields[i], 10, 32)
					r.fields[i] = strconv.FormatUint(n, 10)
				}
			}
			old, present := rows[key]
			switch {
			case !present:
				rows[key] = r.fields
				added++
			case update && !slices.Equal(old, r.fields):
				rows[key] = r.fields
				updated++
			case update:
				unchanged++
			}
		}
		out.rows[f.table] = rows
		out.tuples = append(out.tuples, [3]int64{added, before, int64(len(rows))})
		out.updates = append(out.updates, [2]int64{updated, unchanged})
	}
	return out
}

// oracleFolder writes random customers and products files that exercise every rule: keys from a small pool, so
// they repeat, sometimes first in a bad record; keys of earlier, a map of keys to reuse so that they are present;
// bad records of each kind; fields quoted or not, with quotes, commas, tabs, backslashes, line breaks and
// multibyte text; and empty lines. A third of the records hold values that follow from their key, the same in
// every folder, so that update mode finds equal rows as well as changed ones.
func oracleFolder(t *testing.T, rng *rand.Rand, n int, earlier []string) string {
	t.Helper()
	dir := t.TempDir()
	texts := []string{"oak", "Zoë", "北京", `say "hi"`, "a, b", "two\nlines", "O'Brien", `back\slash`, "tab\there", "x"}
	text := func() string { return texts[rng.IntN(len(texts))] + " " + texts[rng.IntN(len(texts))] }
	for fi, f := range oracleFiles {
		var b bytes.Buffer
		for i, c := range f.cols {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(c.name)
		}
		b.WriteByte('\n')
		prefix := strings.ToUpper(f.table[:1])
		for range n {
			key := fmt.Sprintf("%s%04d", prefix, rng.IntN(n*2/3))
			if len(earlier) > 0 && rng.IntN(10) == 0 {
				key = prefix + earlier[rng.IntN(len(earlier))]
			}
			fields := []string{key, text(), text(), fmt.Sprint(rng.IntN(99999)), "555-0100", "x@example.com"}
			if fi == 1 {
				fields = []string{key, text(), "office", fmt.Sprint(rng.IntN(500))}
			}
			if rng.IntN(3) == 0 { // values that follow from the key, the same in every folder: unchanged rows
				fields = []string{key, "name of " + key, "address of " + key, "12345", "555-0100", "x@example.com"}
				if fi == 1 {
					fields = []string{key, "item " + key, "office", "7"}
				}
			}
			last := len(fields) - 1
			switch rng.IntN(30) {
			case 0:
				fields = fields[:last] // a field missing
			case 1:
				fields[0] = ""
			case 2:
				fields[0] = " " + key
			case 3:
				fields[0] = key + "\t"
			case 4:
				fields[1] = strings.Repeat("é", 256) // 256 characters in 512 bytes
			case 5:
				fields[1] = strings.Repeat("é", 255) // fits: characters count, not bytes
			case 6:
				fields[2] = "bad \xff byte"
			case 7:
				fields[1] = "nul \x00 byte"
			case 8:
				fields[last] = map[int]string{0: "-1", 1: "4294967296", 2: "1.5", 3: "4294967295", 4: "007"}[rng.IntN(5)]
			case 9:
				fields[0] = strings.Repeat("K", 65)
			}
			for i, v := range fields {
				if i > 0 {
					b.WriteByte(',')
				}
				if strings.ContainsAny(v, ",\"\n") || rng.IntN(4) == 0 {
					v = `"` + strings.ReplaceAll(v, `"`, `""`) + `"`
				}
				b.WriteString(v)
			}
			b.WriteByte('\n')
			if rng.IntN(40) == 0 {
				b.WriteByte('\n')
			}
		}
		if err := os.WriteFile(filepath.Join(dir, f.file), b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

var repeatsRE = regexp.MustCompile(`^repeats the key of line (\d+)`)

// TestOracle imports random folders in linear mode and in parallel mode with small chunks, after an earlier import
// that makes some keys present, and holds each run to the oracle: the tuples, every rejected line with its column
// or the line it repeats, and every row in MySQL. Each mode runs once more with the second import in update mode,
// where the oracle also counts the present rows updated and those left unchanged.
func TestOracle(t *testing.T) {
	t.Parallel()
	for _, seed := range []uint64{1, 2, 3} {
		for _, mode := range []struct {
			name        string
			concurrency int
			chunkRows   string
			update      bool // the second import in update mode
		}{{"linear", 1, "50", false}, {"parallel", 4, "7", false}, {"linear update", 1, "50", true}, {"parallel update", 4, "7", true}} {
			t.Run(fmt.Sprintf("seed=%d/%s", seed, mode.name), func(t *testing.T) {
				t.Parallel()
				rng := rand.New(rand.NewPCG(seed, 20261127))
				earlierKeys := []string{"0001", "0002", "9001", "9002", "9003"}
				earlier := oracleFolder(t, rng, 300, nil)
				input := oracleFolder(t, rng, 1200, earlierKeys)
				b := setup(t, mode.concurrency)
				var stored map[string]map[string][]string
				for i, dir := range []string{earlier, input} {
					update := mode.update && i == 1
					want := oracleImport(t, dir, stored, update)
					stored = want.rows
					rejects := filepath.Join(t.TempDir(), "rejects.csv")
					code, stdout, stderr := b.enqueue(t, "--json", "--quiet", "--chunk-rows", mode.chunkRows, "--rejects", rejects, fmt.Sprintf("--update=%v", update), dir)
					if code != cli.ExitRejected && code != cli.ExitOK {
						t.Fatalf("enqueue %s: exit %d\n%s", dir, code, stderr)
					}
					rep := decode(t, stdout)
					var got [][3]int64
					for _, r := range rep.Results {
						got = append(got, [3]int64{r.Processed, r.Before, r.After})
					}
					if diff := gocmp.Diff(want.tuples, got); diff != "" {
						t.Errorf("tuples (processed, before, after) (-oracle, +run):\n%s", diff)
					}
					var gotUpdates [][2]int64
					for _, f := range rep.Files {
						gotUpdates = append(gotUpdates, [2]int64{f.Updated, f.Unchanged})
					}
					if diff := gocmp.Diff(want.updates, gotUpdates); diff != "" || rep.Update != update {
						t.Errorf("update mode %v: (updated, unchanged) (-oracle, +run):\n%s", rep.Update, diff)
					}
					if update && (want.updates[0][0] == 0 || want.updates[0][1] == 0 || want.updates[1][0] == 0 || want.updates[1][1] == 0) {
						t.Errorf("the files give update mode %v (updated, unchanged) to check; want both of each file", want.updates)
					}
					var gotRejects []string
					for _, r := range readRejects(t, rejects) {
						// file, line, last_line, column, value, reason
						what := cmp.Or(r[3], "fields")
						if m := repeatsRE.FindStringSubmatch(r[5]); m != nil {
							what = "repeats " + m[1]
						}
						gotRejects = append(gotRejects, r[0]+":"+r[1]+"-"+r[2]+":"+what)
					}
					if diff := gocmp.Diff(want.rejects, gotRejects); diff != "" {
						t.Errorf("rejected lines (-oracle, +run):\n%s", diff)
					}
				}
				wantRows := map[string][][]string{}
				for table, rows := range stored {
					for _, r := range rows {
						wantRows[table] = append(wantRows[table], r)
					}
					slices.SortFunc(wantRows[table], func(a, b []string) int { return strings.Compare(a[0], b[0]) })
				}
				gotRows := dumpTables(t, b.dsn)
				for table := range gotRows {
					slices.SortFunc(gotRows[table], func(a, b []string) int { return strings.Compare(a[0], b[0]) })
				}
				if diff := gocmp.Diff(wantRows, gotRows); diff != "" {
					t.Errorf("rows in MySQL (-oracle, +run):\n%s", diff)
				}
			})
		}
	}
}
