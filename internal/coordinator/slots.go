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
// It also takes the files' tasks in turn by their bytes: a file may send only while it has queued no more bytes
// than any other file still being read. Workers take tasks in the order they were queued, so the files go through
// the workers side by side, and each one's share of them holds steady, as the time left assumes (package eta).
// Left to race for free slots, the file that reads faster took twice the other's tasks on 2 × 10,000,000 rows.
type slots struct {
	mu              sync.Mutex
	taken, finished int
	max             int
	bytes           map[record.Kind]int64 // each file's bytes sent
	reading         map[record.Kind]bool  // the files still being read
	changed         chan struct{}         // closed, and replaced, when finished grows or a file's turn may come
}

func newSlots(max int, kinds ...record.Kind) *slots {
	s := &slots{max: max, changed: make(chan struct{}), bytes: map[record.Kind]int64{}, reading: map[record.Kind]bool{}}
	for _, k := range kinds {
		s.reading[k] = true
	}
	return s
}

// take waits until fewer than max tasks are sent and not finished, and it is k's turn, then counts a task of n
// bytes of k as sent.
func (s *slots) take(ctx context.Context, k record.Kind, n int) error {
	for {
		s.mu.Lock()
		if s.taken-s.finished < s.max && s.turn(k) {
			s.taken++
			s.bytes[k] += int64(n)
			s.wake()
			s.mu.Unlock()
			return nil
		}
		changed := s.changed
		s.mu.Unlock()
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// turn reports whether k has sent no more bytes than any other file still being read. The file furthest behind
// always has its turn, so some reader can always go on.
func (s *slots) turn(k record.Kind) bool {
	for g, reading := range s.reading {
		if g != k && reading && s.bytes[g] < s.bytes[k] {
			return false
		}
	}
	return true
}

// done marks k's reading ended, so that the other files no longer wait for its turn.
func (s *slots) done(k record.Kind) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reading[k] = false
	s.wake()
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
