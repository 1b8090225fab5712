package coordinator

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"hash/maphash"

	"github.com/bits-and-blooms/bloom/v3"
)

// seenFalsePositives is the Bloom filter's false positive rate: the share of first occurrences held back for the
// second read. At this rate the filter's bits and the keys it holds back wrongly cost about the least memory
// together: 9.6 bits a key, and one key in 100 held at about 25 bytes.
const seenFalsePositives = 0.01

// maxProbes bounds the bits the filter sets and tests for a key. The rate above asks for 7, each a likely cache
// miss in a filter of a few megabytes; with 4 in the same bits the rate rises to about 1.4%, and the reading took
// 10-17% less time (BenchmarkReadFile, three alternating pairs). The 0.4% more keys held back take about 9 KB
// more per 100,000 keys.
const maxProbes = 4

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
	bits   []offHeap // each layer's bits
	room   int       // keys the newest layer takes before the next one starts
	next   int       // the size of the next layer
	fp     float64
}

func newSeenKeys(size int64, fp float64) *seenKeys {
	return &seenKeys{size: size, exact: map[string]bool{}, fp: cmp.Or(fp, seenFalsePositives)}
}

// testAndAdd reports whether key may have been added before, and adds it. fields are the key's record, whose
// size tells the filter's while the keys are held exactly.
func (s *seenKeys) testAndAdd(key []byte, fields [][]byte) bool {
	if s.exact != nil {
		if s.exact[string(key)] {
			return true
		}
		if len(s.exact) < exactKeys {
			s.exact[string(key)] = true
			s.bytes += int64(len(fields)) // the commas and the line end
			for _, f := range fields {
				s.bytes += int64(len(f))
			}
			return false
		}
		// The file is larger: size the filter for the records it holds at the average size so far, with a
		// tenth to spare, and move the exact keys into it.
		s.next = int(min(max(int64(float64(s.size)/float64(max(s.bytes, 1))*float64(len(s.exact))*1.1), 2*exactKeys), 1<<28))
		exact := s.exact
		s.exact = nil
		for k := range exact {
			s.add([]byte(k))
		}
	}
	for i, l := range s.layers {
		if i == len(s.layers)-1 && s.room > 0 {
			// The newest layer takes the key: one hashing serves the test and the adding.
			if l.TestAndAdd(key) {
				return true
			}
			s.room--
			return false
		}
		if l.Test(key) {
			return true
		}
	}
	s.add(key)
	return false
}

func (s *seenKeys) add(key []byte) {
	if s.room == 0 {
		m, k := bloom.EstimateParameters(uint(s.next), s.fp)
		k = min(k, maxProbes)
		bits := allocOffHeap(int(m+63) / 64 * 8)
		s.bits = append(s.bits, bits)
		s.layers = append(s.layers, bloom.FromWithM(bits.words(), m, k))
		s.room, s.next = s.next, 2*s.next
	}
	s.layers[len(s.layers)-1].Add(key)
	s.room--
}

// free releases the filter's memory; the filter must not be used after.
func (s *seenKeys) free() {
	for _, b := range s.bits {
		b.free()
	}
	s.layers, s.bits = nil, nil
}

// heldKeys is the set of keys the first read held back, each with the first line held back with it and, once
// the second read has found it, the line of its first valid occurrence. A file's repeated keys may run to
// millions, and a Go map of strings would cost about 56 bytes a key, pointers the garbage collector follows
// included. This keeps each entry in one byte slice, the two lines and then the key with its length, and finds
// them through an open-addressing table of offsets: about 25 bytes a key of 10 bytes, and nothing for the
// collector to follow. Both live outside the heap (offHeap). Lines fit 32 bits: a file of more lines would take
// weeks to import.
type heldKeys struct {
	seed  maphash.Seed
	mem   offHeap  // arena's memory, which it fills from the start
	arena []byte   // the entries end to end: held line, first line (4 bytes each), key length (uvarint), key
	table offHeap  // slots' memory
	slots []uint32 // 1 + an entry's offset in arena, or 0 where free; a power of two long, at most 3/4 full
	n     int      // entries
}

// A held entry is known by its offset in the arena.
const (
	heldAt  = 0
	firstAt = 4
	keyAt   = 8
)

func newHeldKeys() heldKeys { return heldKeys{seed: maphash.MakeSeed()} }

func (h *heldKeys) len() int { return h.n }

// key is the key of the entry at off, and the offset just past it.
func (h *heldKeys) key(off int) ([]byte, int) {
	n, w := binary.Uvarint(h.arena[off+keyAt:])
	start := off + keyAt + w
	return h.arena[start : start+int(n)], start + int(n)
}

// held is the first line held back with the entry at off; first, the line of the key's first valid occurrence,
// or 0 until it is found.
func (h *heldKeys) held(off int) int  { return int(binary.LittleEndian.Uint32(h.arena[off+heldAt:])) }
func (h *heldKeys) first(off int) int { return int(binary.LittleEndian.Uint32(h.arena[off+firstAt:])) }

func (h *heldKeys) setFirst(off, line int) {
	binary.LittleEndian.PutUint32(h.arena[off+firstAt:], uint32(line))
}

// slot returns where key is in slots, or the free slot where it would go.
func (h *heldKeys) slot(key []byte) int {
	mask := len(h.slots) - 1
	for s := int(maphash.Bytes(h.seed, key)) & mask; ; s = (s + 1) & mask {
		e := h.slots[s]
		if e == 0 {
			return s
		}
		if k, _ := h.key(int(e - 1)); bytes.Equal(k, key) {
			return s
		}
	}
}

// get returns the offset of key's entry, or -1 when key is not held.
func (h *heldKeys) get(key []byte) int {
	if h.n == 0 {
		return -1
	}
	return int(h.slots[h.slot(key)]) - 1
}

// add adds a key that get does not find, held back first on line.
func (h *heldKeys) add(key []byte, line int) {
	if 4*(h.n+1) > 3*len(h.slots) {
		old := h.table
		h.table = allocOffHeap(4 * max(1024, 2*len(h.slots)))
		h.slots = h.table.uint32s()
		for off := 0; off < len(h.arena); {
			k, next := h.key(off)
			h.slots[h.slot(k)] = uint32(off + 1)
			off = next
		}
		old.free()
	}
	if need := len(h.arena) + keyAt + binary.MaxVarintLen64 + len(key); need > len(h.mem) {
		old := h.mem
		h.mem = allocOffHeap(max(64<<10, 2*len(h.mem), need))
		h.arena = h.mem[:copy(h.mem, h.arena)]
		old.free()
	}
	off := len(h.arena)
	h.arena = binary.LittleEndian.AppendUint32(h.arena, uint32(line))
	h.arena = binary.LittleEndian.AppendUint32(h.arena, 0)
	h.arena = binary.AppendUvarint(h.arena, uint64(len(key)))
	h.arena = append(h.arena, key...)
	h.slots[h.slot(key)] = uint32(off + 1)
	h.n++
}

// free releases the set's memory; the set must not be used after.
func (h *heldKeys) free() {
	h.mem.free()
	h.table.free()
	*h = heldKeys{}
}
