package repo

import (
	"bytes"
	"math/rand/v2"
	"strings"
	"testing"

	"hpnorton/internal/record"
)

// TestNeedsEscape holds needsEscape to its definition, for every byte value at every position of fields of 1 to 24
// bytes, and for random fields.
func TestNeedsEscape(t *testing.T) {
	t.Parallel()
	want := func(f []byte) bool {
		for _, c := range f {
			if c < 0x0E || c == '\\' {
				return true
			}
		}
		return false
	}
	for n := 1; n <= 24; n++ {
		for pos := range n {
			for c := range 256 {
				f := []byte(strings.Repeat("a", n))
				f[pos] = byte(c)
				if got := needsEscape(f); got != want(f) {
					t.Fatalf("needsEscape(%q) = %v, want %v", f, got, want(f))
				}
			}
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 100_000 {
		f := make([]byte, rng.IntN(40))
		for i := range f {
			f[i] = byte(rng.IntN(256))
		}
		if got := needsEscape(f); got != want(f) {
			t.Fatalf("needsEscape(%q) = %v, want %v", f, got, want(f))
		}
	}
}

// TestAppendRowPlain: with the plain bits that record.Plain gives, or none (AppendRow), AppendRowPlain writes LOAD
// DATA's format as the test writes it byte by byte, for fields of every kind of byte that a row escapes or not.
func TestAppendRowPlain(t *testing.T) {
	t.Parallel()
	alphabet := []string{"a", "Z", " ", ",", `"`, "é", "\t", "\n", "\r", `\`, "\x00", "\x01", "\x0e", "\x7f", "\xff"}
	rng := rand.New(rand.NewPCG(3, 4))
	for range 20_000 {
		fields := make([][]byte, 1+rng.IntN(6))
		var plain uint64
		for i := range fields {
			var b bytes.Buffer
			for range rng.IntN(20) {
				b.WriteString(alphabet[rng.IntN(len(alphabet))])
			}
			fields[i] = b.Bytes()
			if record.Plain(fields[i]) {
				plain |= 1 << i
			}
		}
		want := []byte("x")
		for i, f := range fields {
			if i > 0 {
				want = append(want, '\t')
			}
			for _, c := range f {
				switch c {
				case '\\', '\t', '\n', '\r':
					want = append(want, '\\', map[byte]byte{'\\': '\\', '\t': 't', '\n': 'n', '\r': 'r'}[c])
				case 0:
					want = append(want, '\\', '0')
				default:
					want = append(want, c)
				}
			}
		}
		want = append(want, '\n')
		for _, bits := range []uint64{plain, 0} {
			if got := AppendRowPlain([]byte("x"), fields, bits); !bytes.Equal(got, want) {
				t.Fatalf("AppendRowPlain(%q, %b) = %q, want %q", fields, bits, got, want)
			}
		}
		if got := AppendRow([]byte("x"), fields); !bytes.Equal(got, want) {
			t.Fatalf("AppendRow(%q) = %q, want %q", fields, got, want)
		}
	}
}
