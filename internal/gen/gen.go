// Package gen writes deterministic sample files of any size in the shape HP Norton's real files have: names with
// apostrophes and accents, addresses with commas, zip codes with leading zeros, and about a fifth of products out
// of stock. The same size always gives the same bytes, and a smaller file is a prefix of a larger one.
package gen

import (
	"bufio"
	"encoding/csv"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"hpnorton/internal/record"
)

// Options shape the bytes of a file, and RepeatEvery its keys.
type Options struct {
	// RepeatEvery, when 3 or more, gives every RepeatEvery-th record the key of an earlier record, about half its
	// number, and a key no other repeat takes: a file of n records holds n - n/RepeatEvery distinct keys
	// (Distinct), and n/RepeatEvery of them occur twice.
	RepeatEvery int
	// ChangeEvery, when 2 or more, gives every ChangeEvery-th record a changed name or description (Changed is
	// appended), keys and every other value as without it: the same size's file then differs from the plain one
	// in n/ChangeEvery records, as a file of updates does.
	ChangeEvery int
	// BOM starts the file with a UTF-8 byte-order mark, as spreadsheet exports do.
	BOM bool
	// CRLF ends lines with \r\n instead of \n.
	CRLF bool
}

// Changed is what ChangeEvery appends to a changed record's name or description.
const Changed = " (changed)"

// MaxRows is the most records per file that the commands generate: 2 × 10,000,000 rows are several GB on disk, in
// the files and in MySQL.
const MaxRows = 10_000_000

// WriteDir writes customers.csv and products.csv with rows records each into dir, creating it if needed.
func WriteDir(dir string, rows int, opt Options) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, k := range record.Kinds {
		if err := writeFile(filepath.Join(dir, k.FileName()), k, rows, opt); err != nil {
			return err
		}
	}
	return nil
}

func writeFile(path string, k record.Kind, rows int, opt Options) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := Write(f, k, rows, opt); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	return f.Close()
}

// Distinct is how many distinct keys a file of rows records written with opt holds.
func Distinct(rows int, opt Options) int {
	if opt.RepeatEvery > 2 {
		return rows - rows/opt.RepeatEvery
	}
	return rows
}

// Write streams a header and rows records of kind k to w, in constant memory.
func Write(w io.Writer, k record.Kind, rows int, opt Options) error {
	bw := bufio.NewWriterSize(w, 256<<10)
	if opt.BOM {
		if _, err := bw.Write([]byte{0xEF, 0xBB, 0xBF}); err != nil {
			return err
		}
	}
	cw := csv.NewWriter(bw)
	cw.UseCRLF = opt.CRLF
	if err := cw.Write(k.Header()); err != nil {
		return err
	}
	// A fixed seed per kind makes the output a function of the size alone.
	rng := rand.New(rand.NewPCG(20261127, uint64(k)))
	next := customer
	if k == record.Products {
		next = product
	}
	fields := make([]string, len(k.Columns()))
	for i := 1; i <= rows; i++ {
		next(rng, i, fields)
		if opt.RepeatEvery > 2 && i%opt.RepeatEvery == 0 {
			j := i / 2
			if j%opt.RepeatEvery == 0 { // a repeat itself, whose own key no record holds: take its neighbour's
				j--
			}
			fields[0] = fields[0][:1] + fmt.Sprintf("%08d", j)
		}
		if opt.ChangeEvery > 1 && i%opt.ChangeEvery == 0 {
			fields[1] += Changed
		}
		if err := cw.Write(fields); err != nil {
			return err
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return err
	}
	return bw.Flush()
}

// Each name has a plain-ASCII spelling for email addresses.
var (
	firstNames = [][2]string{
		{"José", "jose"}, {"Zoë", "zoe"}, {"Siobhán", "siobhan"}, {"François", "francois"}, {"Ana", "ana"},
		{"Björn", "bjorn"}, {"Chloé", "chloe"}, {"Mary-Kate", "marykate"}, {"D'Andre", "dandre"}, {"Renée", "renee"},
		{"Liam", "liam"}, {"Olivia", "olivia"}, {"Noah", "noah"}, {"Emma", "emma"}, {"Søren", "soren"},
		{"Ximena", "ximena"}, {"Nguyễn Thị", "nguyenthi"}, {"Aarav", "aarav"}, {"Fatima", "fatima"}, {"Łukasz", "lukasz"},
		{"Hiroshi", "hiroshi"}, {"Grace", "grace"}, {"Mateo", "mateo"}, {"Amélie", "amelie"}, {"Ellis", "ellis"},
	}
	lastNames = [][2]string{
		{"O'Brien", "obrien"}, {"Müller", "muller"}, {"García", "garcia"}, {"Smith", "smith"}, {"D'Angelo", "dangelo"},
		{"Núñez", "nunez"}, {"Johnson", "johnson"}, {"van der Berg", "vanderberg"}, {"Kowalski", "kowalski"},
		{"Brontë", "bronte"}, {"MacDonald", "macdonald"}, {"St. John", "stjohn"}, {"Pérez", "perez"},
		{"Williams", "williams"}, {"O'Neil", "oneil"}, {"Dubois", "dubois"}, {"Tanaka", "tanaka"}, {"Ødegaard", "odegaard"},
		{"Brown", "brown"}, {"Lefèvre", "lefevre"}, {"Okafor", "okafor"}, {"Jones-Whitaker", "joneswhitaker"},
	}
	streets = []string{
		"Main St", "Oak Avenue", "Maple Dr", "Cedar Ln", "Elm Street", "Rue de l'Église", "Pine Rd", "Lakeview Blvd",
		"Sunset Terrace", "Calle Mayor", "Washington Ave", "Birch Ct", "King's Road", "Harbor Way",
	}
	cities = []string{
		"Seattle, WA", "Boston, MA", "Austin, TX", "Portland, OR", "Denver, CO", "Miami, FL", "Newark, NJ",
		"Burlington, VT", "Providence, RI", "Chicago, IL", "San José, CA", "Hartford, CT",
	}
	domains = []string{"example.com", "mail.example.org", "hpnorton.example", "post.example.net"}

	adjectives = []string{"Oak", "Walnut", "Velvet", "Leather", "Rattan", "Glass-top", "Mid-century", "Reclaimed pine", "Linen", "Teak"}
	items      = []struct{ name, kind string }{
		{"sofa", "livingroom"}, {"armchair", "livingroom"}, {"coffee table", "livingroom"}, {"dining table", "diningroom"},
		{"dining chair", "diningroom"}, {"buffet", "diningroom"}, {"queen bed", "bedroom"}, {"dresser", "bedroom"},
		{"nightstand", "bedroom"}, {"desk", "office"}, {"office chair", "office"}, {"bookcase", "office"},
		{"bar stool", "kitchen"}, {"patio set", "outdoor"}, {"hammock", "outdoor"},
	}
	extras = []string{"", "", "", ", seats 6", ", 2-piece", ", with storage", ", 72\" wide", ", assembly required"}
	names  = []string{"", "", "", "", "The \"Bella\" ", "The \"Hudson\" ", "Café ", "Ærø "}
)

func pick[T any](rng *rand.Rand, s []T) T { return s[rng.IntN(len(s))] }

func customer(rng *rand.Rand, i int, f []string) {
	first, last := pick(rng, firstNames), pick(rng, lastNames)
	f[0] = fmt.Sprintf("C%08d", i)
	f[1] = first[0] + " " + last[0]
	addr := strconv.Itoa(1+rng.IntN(9999)) + " " + pick(rng, streets)
	if rng.IntN(10) < 4 {
		addr += ", Apt " + strconv.Itoa(1+rng.IntN(400))
	}
	f[2] = addr + ", " + pick(rng, cities)
	f[3] = fmt.Sprintf("%05d", rng.IntN(100000)) // about one in ten starts with 0
	f[4] = fmt.Sprintf("(%03d) %03d-%04d", 200+rng.IntN(800), 200+rng.IntN(800), rng.IntN(10000))
	f[5] = strings.ToLower(first[1]) + "." + last[1] + strconv.Itoa(i%997) + "@" + pick(rng, domains)
}

func product(rng *rand.Rand, i int, f []string) {
	item := pick(rng, items)
	f[0] = fmt.Sprintf("P%08d", i)
	f[1] = pick(rng, names) + pick(rng, adjectives) + " " + item.name + pick(rng, extras)
	f[2] = item.kind
	q := 0
	if rng.IntN(5) != 0 { // one in five is out of stock
		q = 1 + rng.IntN(500)
	}
	f[3] = strconv.Itoa(q)
}
