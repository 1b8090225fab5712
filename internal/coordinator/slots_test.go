package coordinator

import (
	"testing"

	"hpnorton/internal/record"
)

// TestSlotsTakeFilesInTurnByBytes: a file that has queued more bytes than another still being read waits for it,
// and goes on as soon as the other has caught up, or has been read to its end.
func TestSlotsTakeFilesInTurnByBytes(t *testing.T) {
	t.Parallel()
	c, p := record.Customers, record.Products
	s := newSlots(64, c, p)
	if err := s.take(t.Context(), c, 100); err != nil {
		t.Fatal(err)
	}
	waiting := make(chan error, 1)
	go func() { waiting <- s.take(t.Context(), c, 100) }()
	turns := func() (bool, bool) {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.turn(c), s.turn(p)
	}
	if tc, tp := turns(); tc || !tp {
		t.Fatalf("customers 100 bytes ahead: customers' turn %v, products' %v; want products' alone", tc, tp)
	}
	if err := s.take(t.Context(), p, 60); err != nil {
		t.Fatal(err)
	}
	if tc, _ := turns(); tc {
		t.Fatal("customers took its turn with products 40 bytes behind")
	}
	if err := s.take(t.Context(), p, 60); err != nil {
		t.Fatal(err)
	}
	if err := <-waiting; err != nil { // products, at 120 bytes, is ahead now: customers' second task goes
		t.Fatal(err)
	}
	if tc, _ := turns(); tc {
		t.Fatal("customers, 80 bytes ahead, has the turn")
	}
	go func() { waiting <- s.take(t.Context(), c, 10) }()
	s.mu.Lock()
	asleep := s.changed // what a waiting take sleeps on
	s.mu.Unlock()
	s.done(p) // products read to its end: customers no longer waits for it
	select {
	case <-asleep:
	default:
		t.Fatal("products' end woke no waiting take")
	}
	if err := <-waiting; err != nil {
		t.Fatal(err)
	}
	if s.taken != 5 {
		t.Errorf("%d tasks counted sent, want 5", s.taken)
	}
}
