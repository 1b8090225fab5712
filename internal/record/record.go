// Package record describes the two kinds of file HP Norton imports, customers and products: their CSV headers, the
// limits of each column, and the validation that turns one CSV record into a row or into a reported problem.
//
// Validation is pure and deterministic, so a task that asynq delivers twice reports the very same problems twice.
package record

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Kind is one kind of import file. The zero Kind is invalid; use Customers or Products.
type Kind int

const (
	Customers Kind = iota + 1
	Products
)

// Kinds lists every kind in report order: customers first, then products.
var Kinds = []Kind{Customers, Products}

// Column describes one CSV column and the MySQL column of the same name.
type Column struct {
	Name string
	// MaxChars is the most characters (runes) the MySQL column holds. Zero means the column is an integer.
	MaxChars int
	// Key marks the natural primary key. Exactly one column of a kind is the key.
	Key bool
	// Integer columns hold a whole number from 0 to MaxUint, stored as MySQL INT UNSIGNED.
	Integer bool
}

// MaxUint is the largest value an INT UNSIGNED column holds.
const MaxUint = 1<<32 - 1

// columns is indexed by Kind; validation asks for a kind's columns for every record.
var columns = [...][]Column{
	Customers: {
		{Name: "user_id", MaxChars: 64, Key: true},
		{Name: "name", MaxChars: 255},
		{Name: "address", MaxChars: 255},
		{Name: "zip_code", MaxChars: 16},
		{Name: "phone_number", MaxChars: 32},
		{Name: "email", MaxChars: 255},
	},
	Products: {
		{Name: "product_id", MaxChars: 64, Key: true},
		{Name: "description", MaxChars: 255},
		{Name: "product_type", MaxChars: 64},
		{Name: "quantity_available", Integer: true},
	},
}

// String returns the kind's name, which is also its table name: "customers" or "products".
func (k Kind) String() string {
	switch k {
	case Customers:
		return "customers"
	case Products:
		return "products"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// FileName is the file a run reads for this kind inside its data folder.
func (k Kind) FileName() string {
	switch k {
	case Customers:
		return "customers.csv"
	case Products:
		return "products.csv"
	}
	return k.String() + ".csv"
}

// Table is the MySQL table the kind is stored in.
func (k Kind) Table() string { return k.String() }

// Columns returns the kind's columns in CSV (and table) order. The caller must not modify the slice.
func (k Kind) Columns() []Column {
	if k < 0 || int(k) >= len(columns) {
		return nil
	}
	return columns[k]
}

// Header returns the column names in the order the CSV header must list them.
func (k Kind) Header() []string {
	cols := k.Columns()
	names := make([]string, len(cols))
	for i, c := range cols {
		names[i] = c.Name
	}
	return names
}

// KeyIndex is the position of the key column in a record.
func (k Kind) KeyIndex() int {
	for i, c := range k.Columns() {
		if c.Key {
			return i
		}
	}
	panic("record: kind without key column: " + k.String())
}

// ParseKind maps a kind's name back to the Kind.
func ParseKind(s string) (Kind, error) {
	for _, k := range Kinds {
		if k.String() == s {
			return k, nil
		}
	}
	return 0, fmt.Errorf("unknown kind %q (want customers or products)", s)
}

// Problem is one rejected record or one unreadable file, with everything a person needs to find and fix it.
// Line is the physical line where the record starts, the header being line 1, and LastLine the line where it ends,
// which is later when a quoted field spans lines. Both are 0 for a problem with the whole file. Column and Value
// are empty when no single field is at fault; Value holds at most MaxShown characters of the field (see Shorten).
type Problem struct {
	File     string `json:"file"`
	Line     int    `json:"line"`
	LastLine int    `json:"last_line,omitempty"`
	Column   string `json:"column,omitempty"`
	Value    string `json:"value,omitempty"`
	Reason   string `json:"reason"`
	// FirstLine, for a key the file repeats, is the line of the key's first occurrence, which is the one stored.
	FirstLine int `json:"first_line,omitempty"`
}

// Duplicate is the problem of a record on lines line to lastLine whose key the file already held on firstLine.
// lastLine 0 means the record's last line is not known, and is taken as line.
func (k Kind) Duplicate(file string, line, lastLine int, key string, firstLine int) Problem {
	return Problem{
		File: file, Line: line, LastLine: max(line, lastLine), Column: k.Columns()[k.KeyIndex()].Name, Value: Shorten(key), FirstLine: firstLine,
		Reason: fmt.Sprintf("repeats the key of line %d; the first occurrence is kept", firstLine),
	}
}

func (p Problem) String() string {
	var b strings.Builder
	b.WriteString(p.File)
	if p.Line > 0 {
		fmt.Fprintf(&b, ":%d", p.Line)
	}
	if p.LastLine > p.Line {
		fmt.Fprintf(&b, "-%d", p.LastLine)
	}
	if p.Column != "" {
		fmt.Fprintf(&b, ": column %s", p.Column)
	}
	if p.Value != "" {
		fmt.Fprintf(&b, " value %q", p.Value)
	}
	b.WriteString(": ")
	b.WriteString(p.Reason)
	return b.String()
}

// Validate checks one CSV record of kind k that covers lines line to lastLine of file, and returns the first
// problem that makes the record unusable, or nil when it is a row to store. A record is stored in full or
// rejected: nothing is trimmed or cut. The fields are read, never kept, so they may be views of a reader's buffer.
func (k Kind) Validate(file string, line, lastLine int, fields [][]byte) *Problem {
	p, _ := k.ValidateFields(file, line, lastLine, fields)
	return p
}

// ValidateFields is Validate that also tells, for a row to store, which of its fields are Plain: bit i of plain is
// set when field i is. Validation tests every field for it, and the caller that writes the row need not test
// again: asking Plain twice of each field was a sixth of the enqueuer's reading time.
func (k Kind) ValidateFields(file string, line, lastLine int, fields [][]byte) (_ *Problem, plain uint64) {
	cols := k.Columns()
	reject := func(col, value, reason string) *Problem {
		return &Problem{File: file, Line: line, LastLine: lastLine, Column: col, Value: Shorten(value), Reason: reason}
	}
	if len(fields) != len(cols) {
		return reject("", "", fmt.Sprintf("has %d fields, want %d (%s)", len(fields), len(cols), strings.Join(k.Header(), ","))), 0
	}
	for i := range cols {
		c, v := &cols[i], fields[i]
		// Printable ASCII, the common case, is valid UTF-8 without NUL: Plain tells it without decoding.
		p := Plain(v)
		if p {
			plain |= 1 << i
		}
		switch {
		case !p && !utf8.Valid(v):
			return reject(c.Name, strings.ToValidUTF8(string(v), "\uFFFD"), "is not valid UTF-8"), 0
		case !p && bytes.IndexByte(v, 0) >= 0:
			return reject(c.Name, strings.ReplaceAll(string(v), "\x00", `\0`), "contains a NUL byte"), 0
		case c.Key && len(v) == 0:
			return reject(c.Name, "", "key is empty"), 0
		case c.Key && (v[0] == ' ' || v[len(v)-1] == ' ' || !p && len(bytes.TrimSpace(v)) != len(v)):
			// MySQL's PAD SPACE collations compare "A1" and "A1 " as equal, so such a key would collide silently.
			// A Plain key holds no other space than ' ': TrimSpace, which decodes, is only for the others.
			return reject(c.Name, string(v), "key has leading or trailing spaces"), 0
		case c.Integer:
			if _, ok := parseUint32(v); !ok {
				return reject(c.Name, string(v), fmt.Sprintf("is not a whole number from 0 to %d", uint64(MaxUint))), 0
			}
		case len(v) > c.MaxChars && utf8.RuneCount(v) > c.MaxChars:
			// A field of no more bytes than the column's characters fits whatever it holds, so most fields are
			// never counted rune by rune.
			return reject(c.Name, string(v), fmt.Sprintf("is %d characters long, the column holds %d", utf8.RuneCount(v), c.MaxChars)), 0
		}
	}
	return nil, plain
}

// parseUint32 reads decimal digits, leading zeros allowed, as a number from 0 to MaxUint; ok is false for
// anything else, an empty field or a sign included.
func parseUint32(v []byte) (n uint64, ok bool) {
	if len(v) == 0 {
		return 0, false
	}
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, false
		}
		if n = n*10 + uint64(c-'0'); n > MaxUint {
			return 0, false
		}
	}
	return n, true
}

// Plain reports whether every byte of v is printable ASCII other than the backslash: from 0x20 to 0x7F, where
// UTF-8 is one byte a character, no NUL occurs and LOAD DATA escapes nothing. Validation and escaping ask it of
// every field, so it looks at eight bytes at a time, the last eight (or four) overlapping the ones before rather
// than a byte at a time.
func Plain(v []byte) bool {
	var flags uint64
	switch n := len(v); {
	case n >= 8:
		for i := 0; i+8 <= n; i += 8 {
			flags |= notPlain(binary.LittleEndian.Uint64(v[i:]))
		}
		flags |= notPlain(binary.LittleEndian.Uint64(v[n-8:]))
	case n >= 4:
		flags = notPlain(uint64(binary.LittleEndian.Uint32(v)) | uint64(binary.LittleEndian.Uint32(v[n-4:]))<<32)
	default:
		for _, c := range v {
			if c < 0x20 || c >= 0x80 || c == '\\' {
				return false
			}
		}
	}
	return flags&0x8080808080808080 == 0
}

// notPlain sets the high bit of a byte of x that is not plain, or of one above it: a byte at 0x80 or above sets
// its own in x; one below 0x20 sets it in x-0x20…; a backslash is a zero byte of x^'\\'…, which sets it in that
// minus 1…. A borrow only runs upwards from a byte flagged already.
func notPlain(x uint64) uint64 {
	const ones = 0x0101010101010101
	bs := x ^ ones*'\\'
	return x | (x-ones*0x20)&^x | (bs-ones)&^bs
}

// MaxShown is how many characters of a value, or of a column name, a message quotes. A file's values may be
// personal data, or anything at all when the file is not what it claims to be, so messages, logs, the results key
// and the rejects file hold no more of them than it takes to recognise one. It is the longest key either kind
// allows, so that a key is always shown whole.
const MaxShown = 64

// Shorten returns s cut to MaxShown characters, the cut marked with "…" and followed by the value's full length.
func Shorten(s string) string {
	i, n := 0, 0
	for i < len(s) && n < MaxShown {
		_, size := utf8.DecodeRuneInString(s[i:])
		i += size
		n++
	}
	if i == len(s) {
		return s
	}
	return fmt.Sprintf("%s… (%d bytes)", s[:i], len(s))
}

// CheckHeader compares a file's header with the kind's and explains any difference.
func (k Kind) CheckHeader(got []string) error {
	want := k.Header()
	if slices.Equal(got, want) {
		return nil
	}
	return fmt.Errorf("header does not match: want columns %s, found %s", showColumns(want), showColumns(got))
}

// maxShownColumns bounds the column names a header message lists.
const maxShownColumns = 12

// showColumns lists column names as a header line would, quoting a name that would otherwise read ambiguously,
// cutting each to MaxShown characters and the list to maxShownColumns names.
func showColumns(names []string) string {
	shown := make([]string, 0, min(len(names), maxShownColumns)+1)
	for _, n := range names[:min(len(names), maxShownColumns)] {
		n = Shorten(n)
		if n == "" || strings.Contains(n, ",") || strings.TrimSpace(n) != n || strconv.Quote(n) != `"`+n+`"` {
			n = strconv.Quote(n)
		}
		shown = append(shown, n)
	}
	if len(names) > maxShownColumns {
		shown = append(shown, fmt.Sprintf("… (%d columns)", len(names)))
	}
	return strings.Join(shown, ",")
}
