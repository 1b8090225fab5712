package coordinator

import (
	"context"
	"sync"

	"hpnorton/internal/record"
)

// slots bounds a run's tasks that are sent and not yet finished to MaxQueued, so that Redis holds a window of the
// files. It compares counts rather than handing out tokens: a resumed run finds outcomes recorded before it sends
// their tasks again, and a token freed before it was taken would be lost, and the reading with it.
//
// It also gives the files their turns by bytes: when files wait for a slot at once, the one that has sent the
// fewest bytes takes it. Workers take tasks in the order they were queued, so the files go through the workers
// side by side, and each one's share of them holds steady, as the time left assumes (package eta). Left to race,
// the shares came out of the race: halfway through two runs of 2 × 10,000,000 rows, products had read 1.2 and 1.9
// times the customers' rows. A file busy reading, or settling its repeated keys, is not waited for: the slot goes
// to the file that is ready, and no worker goes idle for the sake of a turn.
type slots struct {
	mu              sync.Mutex
	taken, finished int
	max             int
	bytes           map[record.Kind]int64 // each file's bytes sent
	waiting         map[record.Kind]bool  // the files waiting in take
	changed         chan struct{}         // closed, and replaced, when a slot frees or a file stops waiting
}

func newSlots(max int) *slots {
	return &slots{max: max, changed: make(chan struct{}), bytes: map[record.Kind]int64{}, waiting: map[record.Kind]bool{}}
}

// take waits until fewer than max tasks are sent and not finished, and it is k's turn, then counts a task of n
// bytes of k as sent.
func (s *slots) take(ctx context.Context, k record.Kind, n int) error {
	for {
		s.mu.Lock()
		if s.taken-s.finished < s.max && s.turn(k) {
			s.taken++
			s.bytes[k] += int64(n)
			s.stopWaiting(k)
			s.mu.Unlock()
			return nil
		}
		s.waiting[k] = true
		changed := s.changed
		s.mu.Unlock()
		select {
		case <-changed:
		case <-ctx.Done():
			s.mu.Lock()
			s.stopWaiting(k)
			s.mu.Unlock()
			return ctx.Err()
		}
	}
}

// turn reports whether no other file waiting for a slot has sent fewer bytes than k; s.mu is held.
func (s *slots) turn(k record.Kind) bool {
	for g, waiting := range s.waiting {
		if g != k && waiting && s.bytes[g] < s.bytes[k] {
			return false
		}
	}
	return true
}

// stopWaiting marks k no longer waiting, and wakes the files that may have waited for its turn; s.mu is held.
func (s *slots) stopWaiting(k record.Kind) {
	if s.waiting[k] {
		s.waiting[k] = false
		s.wake()
	}
}

// finish sets how many of the run's tasks have finished.
func (s *slots) finish(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n > s.finished {
		s.finished = n
		s.wake()
	}
}

// wake tells the waiting takers to look again; s.mu is held.
func (s *slots) wake() {
	close(s.changed)
	s.changed = make(chan struct{})
}
