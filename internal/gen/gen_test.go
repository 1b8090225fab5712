package gen

import (
	"bytes"
	"encoding/csv"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"hpnorton/internal/record"
)

func generate(t *testing.T, k record.Kind, rows int, opt Options) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := Write(&b, k, rows, opt); err != nil {
		t.Fatalf("Write(%v, %d): %v", k, rows, err)
	}
	return b.Bytes()
}

func TestDeterministicPrefix(t *testing.T) {
	t.Parallel()
	for _, k := range record.Kinds {
		small, large := generate(t, k, 100, Options{}), generate(t, k, 1000, Options{})
		if !bytes.HasPrefix(large, small) {
			t.Errorf("%v: the 100-row file is not a prefix of the 1,000-row file", k)
		}
		if again := generate(t, k, 1000, Options{}); !bytes.Equal(large, again) {
			t.Errorf("%v: two 1,000-row files differ", k)
		}
	}
}

// TestRecordsAreValidAndVaried checks the shape the sample data promises.
func TestRecordsAreValidAndVaried(t *testing.T) {
	t.Parallel()
	const rows = 5000
	for _, k := range record.Kinds {
		recs, err := csv.NewReader(bytes.NewReader(generate(t, k, rows, Options{}))).ReadAll()
		if err != nil {
			t.Fatalf("%v: %v", k, err)
		}
		if err := k.CheckHeader(recs[0]); err != nil {
			t.Fatalf("%v: %v", k, err)
		}
		if len(recs)-1 != rows {
			t.Fatalf("%v: %d records, want %d", k, len(recs)-1, rows)
		}
		keys := map[string]bool{}
		count := map[string]int{}
		for i, r := range recs[1:] {
			fields := make([][]byte, len(r))
			for j, f := range r {
				fields[j] = []byte(f)
			}
			if prob := k.Validate(k.FileName(), i+2, i+2, fields); prob != nil {
				t.Fatalf("generated record rejected: %v", prob)
			}
			key := r[k.KeyIndex()]
			if keys[key] {
				t.Fatalf("%v: key %s repeats", k, key)
			}
			keys[key] = true
			for _, f := range r {
				switch {
				case strings.Contains(f, "'"):
					count["apostrophe"]++
				case strings.Contains(f, ","):
					count["comma"]++
				case strings.Contains(f, `"`):
					count["quote"]++
				}
			}
			if k == record.Customers && strings.HasPrefix(r[3], "0") {
				count["zip with leading zero"]++
			}
			if k == record.Customers && strings.ContainsAny(r[1], "éëøüñ") {
				count["accent"]++
			}
			if k == record.Products && r[3] == "0" {
				count["out of stock"]++
			}
		}
		t.Logf("%v: %v", k, count)
		if k == record.Customers {
			for _, what := range []string{"apostrophe", "comma", "zip with leading zero", "accent"} {
				if count[what] < rows/50 {
					t.Errorf("customers: only %d records with %s", count[what], what)
				}
			}
		} else {
			if n := count["out of stock"]; n < rows*15/100 || n > rows*25/100 {
				t.Errorf("products: %d of %d out of stock, want about a fifth", n, rows)
			}
			if count["quote"]+count["comma"] < rows/10 {
				t.Errorf("products: too few descriptions with quotes or commas: %v", count)
			}
		}
	}
}

func TestOptionsChangeBytesNotRecords(t *testing.T) {
	t.Parallel()
	plain := generate(t, record.Products, 50, Options{})
	styled := generate(t, record.Products, 50, Options{BOM: true, CRLF: true})
	if !bytes.HasPrefix(styled, []byte("\ufeff")) || !bytes.Contains(styled, []byte("\r\n")) {
		t.Fatal("BOM and CRLF options had no effect")
	}
	back := bytes.ReplaceAll(bytes.TrimPrefix(styled, []byte("\ufeff")), []byte("\r\n"), []byte("\n"))
	if !bytes.Equal(back, plain) {
		t.Error("BOM and CRLF changed more than the line ends and the mark")
	}
}

// TestShippedTestdata keeps testdata/ equal to the generator's output for 1,000 rows.
func TestShippedTestdata(t *testing.T) {
	t.Parallel()
	for _, k := range record.Kinds {
		shipped, err := os.ReadFile(filepath.Join("..", "..", "testdata", k.FileName()))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(shipped, generate(t, k, 1000, Options{})) {
			t.Errorf("testdata/%s differs from: go run ./cmd/gendata -rows 1000 testdata", k.FileName())
		}
	}
}

func TestRepeatEvery(t *testing.T) {
	for _, every := range []int{3, 4, 10} {
		var b strings.Builder
		opt := Options{RepeatEvery: every}
		if err := Write(&b, record.Customers, 1000, opt); err != nil {
			t.Fatal(err)
		}
		recs, err := csv.NewReader(strings.NewReader(b.String())).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		keys := map[string]int{}
		for _, r := range recs[1:] {
			keys[r[0]]++
		}
		twice := 0
		for _, n := range keys {
			if n == 2 {
				twice++
			}
		}
		if len(recs)-1 != 1000 || len(keys) != Distinct(1000, opt) || len(keys) != 1000-1000/every || twice != 1000/every {
			t.Errorf("every %d: %d records, %d distinct keys, %d twice; Distinct says %d", every, len(recs)-1, len(keys), twice, Distinct(1000, opt))
		}
	}
}

// TestChangeEvery: a file of updates differs from the plain file of the same size in every tenth record's name or
// description, and only there.
func TestChangeEvery(t *testing.T) {
	t.Parallel()
	for _, k := range record.Kinds {
		plain, err := csv.NewReader(bytes.NewReader(generate(t, k, 1000, Options{}))).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		changed, err := csv.NewReader(bytes.NewReader(generate(t, k, 1000, Options{ChangeEvery: 10}))).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		differ := 0
		for i := 1; i < len(plain); i++ {
			want := slices.Clone(plain[i])
			if i%10 == 0 {
				want[1] += Changed
				differ++
			}
			if !slices.Equal(changed[i], want) {
				t.Fatalf("%s line %d: %q, want %q", k, i+1, changed[i], want)
			}
		}
		if len(changed) != len(plain) || differ != 100 {
			t.Errorf("%s: %d records against %d plain, %d changed; want 1000 and 100", k, len(changed)-1, len(plain)-1, differ)
		}
	}
}
