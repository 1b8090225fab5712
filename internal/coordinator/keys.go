package coordinator

import (
	"cmp"
	"hash/maphash"
	"strings"

	"github.com/bits-and-blooms/bloom/v3"
)

// seenFalsePositives is the Bloom filter's false positive rate: the share of first occurrences held back for the
// second read. At this rate the filter's bits and the keys it holds back wrongly cost about the least memory
// together: 11 bits a key, and one key in 200 held at about 30 bytes.
const seenFalsePositives = 0.005

// exactKeys is how many keys seenKeys holds exactly before it turns to a Bloom filter. A file of no more records
// never has a row held back that is not a repeat, and the records read by then tell the filter's size.
const exactKeys = 4096

// seenKeys is the set of keys a file has shown so far: exact for its first exactKeys keys, then a Bloom filter
// sized from the bytes those keys' records took and the file's size. When the filter's newest layer has taken
// the keys it was sized for, a layer twice as large follows, so that a file bigger than the estimate keeps the
// false positive rate near seenFalsePositives per layer instead of filling one filter until it flags every key.
type seenKeys struct {
	size   int64 // the file's size in bytes
	exact  map[string]bool
	bytes  int64 // the bytes of the records whose keys exact holds, roughly
	layers []*bloom.BloomFilter
	room   int // keys the newest layer takes before the next one starts
	next   int // the size of the next layer
	fp     float64
}

func newSeenKeys(size int64, fp float64) *seenKeys {
	return &seenKeys{size: size, exact: map[string]bool{}, fp: cmp.Or(fp, seenFalsePositives)}
}

// testAndAdd reports whether key may have been added before, and adds it. recordBytes is about the size of the
// key's record in the file.
func (s *seenKeys) testAndAdd(key string, recordBytes int) bool {
	if s.exact != nil {
		if s.exact[key] {
			return true
		}
		if len(s.exact) < exactKeys {
			s.exact[strings.Clone(key)] = true
			s.bytes += int64(recordBytes)
			return false
		}
		// The file is larger: size the filter for the records it holds at the average size so far, with a
		// tenth to spare, and move the exact keys into it.
		s.next = int(min(max(int64(float64(s.size)/float64(max(s.bytes, 1))*float64(len(s.exact))*1.1), 2*exactKeys), 1<<28))
		exact := s.exact
		s.exact = nil
		for k := range exact {
			s.add(k)
		}
	}
	for _, l := range s.layers {
		if l.TestString(key) {
			return true
		}
	}
	s.add(key)
	return false
}

func (s *seenKeys) add(key string) {
	if s.room == 0 {
		s.layers = append(s.layers, bloom.NewWithEstimates(uint(s.next), s.fp))
		s.room, s.next = s.next, 2*s.next
	}
	s.layers[len(s.layers)-1].AddString(key)
	s.room--
}

// heldKey is what the reading keeps of a key whose rows the first read held back. Lines fit 32 bits: a file of
// more lines would take weeks to import.
type heldKey struct {
	held  int32 // the first line held back with the key
	first int32 // the line of the key's first valid occurrence, once the second read has found it
}

// heldKeys is the set of keys the first read held back, each with its heldKey. A file's repeated keys may run to
// millions, and a Go map of strings would cost about 56 bytes a key, pointers the garbage collector follows
// included. This keeps the keys end to end in one byte slice and finds them through an open-addressing table of
// entry numbers: about 30 bytes a key of 10 bytes, and nothing for the collector to follow.
type heldKeys struct {
	seed  maphash.Seed
	arena []byte    // the entries' keys, end to end
	ends  []uint32  // where each entry's key ends in arena
	vals  []heldKey // each entry's value
	slots []uint32  // 1 + an entry's number, or 0 where free; a power of two long, at most half full
}

func newHeldKeys() heldKeys { return heldKeys{seed: maphash.MakeSeed()} }

func (h *heldKeys) len() int { return len(h.vals) }

// key is entry i's key.
func (h *heldKeys) key(i int) []byte {
	start := uint32(0)
	if i > 0 {
		start = h.ends[i-1]
	}
	return h.arena[start:h.ends[i]]
}

// slot returns where key is in slots, or the free slot where it would go.
func (h *heldKeys) slot(key string) int {
	mask := len(h.slots) - 1
	for s := int(maphash.String(h.seed, key)) & mask; ; s = (s + 1) & mask {
		if e := h.slots[s]; e == 0 || string(h.key(int(e-1))) == key {
			return s
		}
	}
}

// get returns key's value, which the caller may change, or nil when key is not held.
func (h *heldKeys) get(key string) *heldKey {
	if len(h.slots) == 0 {
		return nil
	}
	if e := h.slots[h.slot(key)]; e != 0 {
		return &h.vals[e-1]
	}
	return nil
}

// add adds a key that get does not find.
func (h *heldKeys) add(key string, v heldKey) {
	if 2*(len(h.vals)+1) > len(h.slots) {
		h.slots = make([]uint32, max(64, 2*len(h.slots)))
		for i := range h.vals {
			h.slots[h.slot(string(h.key(i)))] = uint32(i + 1)
		}
	}
	h.arena = append(h.arena, key...)
	h.ends = append(h.ends, uint32(len(h.arena)))
	h.vals = append(h.vals, v)
	h.slots[h.slot(key)] = uint32(len(h.vals))
}
