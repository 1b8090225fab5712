package record

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
)

func TestValidate(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("é", 256)
	tests := []struct {
		name   string
		kind   Kind
		fields []string
		want   *Problem // nil: the row is accepted
	}{
		{"customer", Customers, []string{"C1", "Zoë O'Brien", "1 Main St, Apt 2", "02134", "(555) 123-4567", "z@example.com"}, nil},
		{"empty optional text", Customers, []string{"C1", "", "", "", "", ""}, nil},
		{"text at the column's limit", Customers, []string{"C1", strings.Repeat("é", 255), "", "", "", ""}, nil},
		{"SQL-looking text", Products, []string{"P1", "'); DROP TABLE products; --", "office", "0"}, nil},
		{"CJK", Products, []string{"P1", "北欧风格沙发", "livingroom", "4294967295"}, nil},
		{"too few fields", Products, []string{"P1", "desk"},
			&Problem{File: "f.csv", Line: 7, LastLine: 8, Reason: "has 2 fields, want 4 (product_id,description,product_type,quantity_available)"}},
		{"empty key", Customers, []string{"", "a", "b", "c", "d", "e"},
			&Problem{File: "f.csv", Line: 7, LastLine: 8, Column: "user_id", Reason: "key is empty"}},
		{"key with trailing space", Products, []string{"P1 ", "desk", "office", "1"},
			&Problem{File: "f.csv", Line: 7, LastLine: 8, Column: "product_id", Value: "P1 ", Reason: "key has leading or trailing spaces"}},
		{"negative quantity", Products, []string{"P1", "desk", "office", "-1"},
			&Problem{File: "f.csv", Line: 7, LastLine: 8, Column: "quantity_available", Value: "-1", Reason: "is not a whole number from 0 to 4294967295"}},
		{"fractional quantity", Products, []string{"P1", "desk", "office", "1.5"},
			&Problem{File: "f.csv", Line: 7, LastLine: 8, Column: "quantity_available", Value: "1.5", Reason: "is not a whole number from 0 to 4294967295"}},
		{"quantity past INT UNSIGNED", Products, []string{"P1", "desk", "office", "4294967296"},
			&Problem{File: "f.csv", Line: 7, LastLine: 8, Column: "quantity_available", Value: "4294967296", Reason: "is not a whole number from 0 to 4294967295"}},
		{"empty quantity", Products, []string{"P1", "desk", "office", ""},
			&Problem{File: "f.csv", Line: 7, LastLine: 8, Column: "quantity_available", Reason: "is not a whole number from 0 to 4294967295"}},
		{"text too long", Customers, []string{"C1", long, "", "", "", ""},
			&Problem{File: "f.csv", Line: 7, LastLine: 8, Column: "name", Value: strings.Repeat("é", 64) + "… (512 bytes)", Reason: "is 256 characters long, the column holds 255"}},
		{"bytes not UTF-8", Customers, []string{"C1", "caf\xe9", "", "", "", ""},
			&Problem{File: "f.csv", Line: 7, LastLine: 8, Column: "name", Value: "caf\uFFFD", Reason: "is not valid UTF-8"}},
		{"NUL byte", Customers, []string{"C1", "a\x00b", "", "", "", ""},
			&Problem{File: "f.csv", Line: 7, LastLine: 8, Column: "name", Value: `a\0b`, Reason: "contains a NUL byte"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := tt.kind.Validate("f.csv", 7, 8, byteFields(tt.fields))
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Fatalf("Validate problem (-want, +got):\n%s", diff)
			}
		})
	}
}

func byteFields(fields []string) [][]byte {
	b := make([][]byte, len(fields))
	for i, f := range fields {
		b[i] = []byte(f)
	}
	return b
}

// validateReference is the rules as first written, on strings with the standard library's functions: Validate,
// with its fast path for printable ASCII, must decide every record as it does.
func validateReference(k Kind, fields []string) *Problem {
	cols := k.Columns()
	reject := func(col, value, reason string) *Problem {
		return &Problem{File: "f.csv", Line: 7, LastLine: 7, Column: col, Value: Shorten(value), Reason: reason}
	}
	if len(fields) != len(cols) {
		return reject("", "", fmt.Sprintf("has %d fields, want %d (%s)", len(fields), len(cols), strings.Join(k.Header(), ",")))
	}
	for i, c := range cols {
		v := fields[i]
		switch {
		case !utf8.ValidString(v):
			return reject(c.Name, strings.ToValidUTF8(v, "\uFFFD"), "is not valid UTF-8")
		case strings.IndexByte(v, 0) >= 0:
			return reject(c.Name, strings.ReplaceAll(v, "\x00", `\0`), "contains a NUL byte")
		case c.Key && v == "":
			return reject(c.Name, v, "key is empty")
		case c.Key && strings.TrimSpace(v) != v:
			return reject(c.Name, v, "key has leading or trailing spaces")
		case c.Integer:
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil || n > MaxUint {
				return reject(c.Name, v, fmt.Sprintf("is not a whole number from 0 to %d", uint64(MaxUint)))
			}
		case utf8.RuneCountInString(v) > c.MaxChars:
			return reject(c.Name, v, fmt.Sprintf("is %d characters long, the column holds %d", utf8.RuneCountInString(v), c.MaxChars))
		}
	}
	return nil
}

// FuzzValidate holds Validate to the reference on products records cut from the fuzzer's bytes at commas, so
// that the fast path for printable ASCII and the slow one meet every kind of byte, at every length around the
// eight bytes Plain takes at once.
func FuzzValidate(f *testing.F) {
	for _, s := range []string{
		"P1,desk,office,3", " P1,desk,office,3", "P1\t,a,b,1", "P1,caf\xe9,b,1", "P1,a\x00b,b,1", "P1,a,b,0004294967295",
		"P1,a,b,4294967296", "P1,a,b,+1", "P\\1,a,b,1", "P1,café,b,1", "P1,a\tb,c\\d,1", "P1\u00a0,a,b,1", "P1,a,b,\x7f", strings.Repeat("x", 65) + ",a,b,1",
		"P1,a," + strings.Repeat("é", 65) + ",1", "P1,a," + strings.Repeat("e", 64) + ",1", "P1,a,b", ",a,b,1",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		fields := strings.Split(s, ",")
		want := validateReference(Products, fields)
		if got := Products.Validate("f.csv", 7, 7, byteFields(fields)); !cmp.Equal(got, want) {
			t.Fatalf("Validate(%q) = %+v, reference %+v", s, got, want)
		}
		// ValidateFields decides the same, and for a row to store tells each field's plainness as Plain does:
		// the row is written on its word.
		got, plain := Products.ValidateFields("f.csv", 7, 7, byteFields(fields))
		if !cmp.Equal(got, want) {
			t.Fatalf("ValidateFields(%q) = %+v, reference %+v", s, got, want)
		}
		if got != nil {
			return
		}
		for i, v := range fields {
			if isPlain := plain&(1<<i) != 0; isPlain != Plain([]byte(v)) {
				t.Fatalf("ValidateFields(%q): field %d %q plain %v, Plain says %v", s, i, v, isPlain, !isPlain)
			}
		}
		if plain>>len(fields) != 0 {
			t.Fatalf("ValidateFields(%q): plain bits %b beyond the %d fields", s, plain, len(fields))
		}
	})
}

// TestPlain holds Plain to its definition, byte by byte, for every byte value at every position of fields of 1 to
// 24 bytes.
func TestPlain(t *testing.T) {
	t.Parallel()
	for n := 1; n <= 24; n++ {
		for pos := range n {
			for c := range 256 {
				v := []byte(strings.Repeat("a", n))
				v[pos] = byte(c)
				want := c >= 0x20 && c < 0x80 && c != '\\'
				if got := Plain(v); got != want {
					t.Fatalf("Plain(%q) = %v, want %v", v, got, want)
				}
			}
		}
	}
	if !Plain(nil) {
		t.Fatal("Plain(nil) = false, want true")
	}
}

func TestCheckHeader(t *testing.T) {
	t.Parallel()
	if err := Customers.CheckHeader([]string{"user_id", "name", "address", "zip_code", "phone_number", "email"}); err != nil {
		t.Fatalf("CheckHeader(customers header) = %v, want nil", err)
	}
	err := Products.CheckHeader([]string{"product_id", "description,product_type", "quantity_available"})
	want := "header does not match: want columns product_id,description,product_type,quantity_available, found product_id,\"description,product_type\",quantity_available"
	if err == nil || err.Error() != want {
		t.Fatalf("CheckHeader(merged column) = %v, want %q", err, want)
	}
	// A byte-order mark the reader failed to strip is invisible when printed raw.
	err = Customers.CheckHeader([]string{"\ufeffuser_id", "name"})
	want = `header does not match: want columns user_id,name,address,zip_code,phone_number,email, found "\ufeffuser_id",name`
	if err == nil || err.Error() != want {
		t.Fatalf("CheckHeader(short header) = %v, want %q", err, want)
	}
}

func TestKinds(t *testing.T) {
	t.Parallel()
	for _, k := range Kinds {
		got, err := ParseKind(k.String())
		if err != nil || got != k {
			t.Errorf("ParseKind(%q) = %v, %v; want %v", k, got, err, k)
		}
		keys := 0
		for _, c := range k.Columns() {
			if c.Key {
				keys++
			}
		}
		if keys != 1 {
			t.Errorf("%v has %d key columns, want 1", k, keys)
		}
	}
	if _, err := ParseKind("orders"); err == nil {
		t.Error("ParseKind(orders) succeeded, want an error")
	}
}

func TestProblemString(t *testing.T) {
	t.Parallel()
	p := Problem{File: "products.csv", Line: 12, Column: "quantity_available", Value: "-3", Reason: "is not a whole number"}
	if got, want := p.String(), `products.csv:12: column quantity_available value "-3": is not a whole number`; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	p = Problem{File: "customers.csv", Reason: "file does not exist"}
	if got, want := p.String(), "customers.csv: file does not exist"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	p = Problem{File: "customers.csv", Line: 4, LastLine: 6, Reason: "has 5 fields"}
	if got, want := p.String(), "customers.csv:4-6: has 5 fields"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

// TestEchoIsShort: a message quotes at most MaxShown characters of a value, and a header message a few columns,
// whatever the file holds (the passwd file a symlink pointed at, a 100 MB field, ten thousand columns).
func TestEchoIsShort(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"short", "short"},
		{strings.Repeat("a", 64), strings.Repeat("a", 64)},
		{strings.Repeat("a", 65), strings.Repeat("a", 64) + "… (65 bytes)"},
		{strings.Repeat("北", 70), strings.Repeat("北", 64) + "… (210 bytes)"},
	} {
		if got := Shorten(tc.in); got != tc.want {
			t.Errorf("Shorten(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	p := Customers.Validate("c.csv", 2, 2, byteFields([]string{"C1", strings.Repeat("x", 100<<20), "", "", "", ""}))
	if p == nil || len(p.String()) > 250 {
		t.Fatalf("a 100 MB field gave a problem of %d bytes, want under 250", len(p.String()))
	}
	header := make([]string, 10000)
	for i := range header {
		header[i] = "root:x:0:0:root:/root:/bin/bash" + strings.Repeat("z", i%100)
	}
	err := Customers.CheckHeader(header)
	if err == nil || len(err.Error()) > 1500 || !strings.Contains(err.Error(), "… (10000 columns)") {
		t.Fatalf("a 10,000-column header gave %d bytes of message, want under 1,500 naming the count: %.300v", len(err.Error()), err)
	}
}
