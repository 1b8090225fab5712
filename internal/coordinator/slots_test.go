package coordinator

import (
	"runtime"
	"testing"

	"hpnorton/internal/record"
)

// waitingFor returns once every kind given waits in take, so that the next freed slot finds them all waiting.
func waitingFor(t *testing.T, s *slots, kinds ...record.Kind) {
	t.Helper()
	for {
		s.mu.Lock()
		all := true
		for _, k := range kinds {
			all = all && s.waiting[k]
		}
		s.mu.Unlock()
		if all {
			return
		}
		if t.Context().Err() != nil {
			t.Fatalf("%v never waited for a slot", kinds)
		}
		runtime.Gosched()
	}
}

// TestSlotsTakeFilesInTurnByBytes: with one slot, customers has sent 100 bytes and waits to send more, and
// products, having sent none, waits too. The freed slot goes to products, which is behind; customers gets the next.
// Customers would have had the slot first had products not been waiting: a file busy reading is not waited for.
func TestSlotsTakeFilesInTurnByBytes(t *testing.T) {
	t.Parallel()
	c, p := record.Customers, record.Products
	s := newSlots(1)
	if err := s.take(t.Context(), c, 100); err != nil {
		t.Fatal(err)
	}
	took := make(chan record.Kind, 2)
	for _, k := range []record.Kind{c, p} {
		go func() {
			if err := s.take(t.Context(), k, 60); err != nil {
				t.Error(err)
			}
			took <- k
		}()
	}
	waitingFor(t, s, c, p)
	s.finish(1)
	if k := <-took; k != p {
		t.Fatalf("the freed slot went to %s, 100 bytes ahead; want products", k)
	}
	waitingFor(t, s, c) // customers still waits: the one slot is products' now
	s.finish(2)
	if k := <-took; k != c {
		t.Fatalf("the next slot went to %s; want customers", k)
	}

	// Products, 60 bytes behind, is not waiting: customers takes a free slot without waiting for its turn.
	s.finish(3)
	done := make(chan error, 1)
	go func() { done <- s.take(t.Context(), c, 10) }()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if s.taken != 4 || s.bytes[c] != 170 || s.bytes[p] != 60 {
		t.Errorf("taken %d, bytes %v; want 4 tasks, customers 170 bytes and products 60", s.taken, s.bytes)
	}
}

// TestSlotsWakeWhenAFileStopsWaiting: a file ahead in bytes sleeps while one behind waits; when the one behind
// takes its slot, the sleeper is woken to look again, since a second slot may be free for it.
func TestSlotsWakeWhenAFileStopsWaiting(t *testing.T) {
	t.Parallel()
	s := newSlots(2)
	s.waiting[record.Products] = true // as take leaves a file that found no slot
	asleep := s.changed               // what customers, ahead, would sleep on
	if err := s.take(t.Context(), record.Products, 10); err != nil {
		t.Fatal(err)
	}
	select {
	case <-asleep:
	default:
		t.Fatal("products took its slot and stopped waiting, and woke no one")
	}
}
