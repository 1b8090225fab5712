package worker

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"hpnorton/internal/ledger"
)

// waker lets an idle worker wait for the enqueuer's announcement of a task (ledger.Announce) instead of polling.
//
// asynq does not block on its queues: after a look that finds none, its processor sleeps (TaskCheckInterval) and
// looks again, and nothing can wake it. At the 20 ms we once polled, the first task of a run waited about 10 ms
// for a look, a fifth of a warm 2 × 1,000-row run, and an idle worker cost 4% of a core and Redis 50 scripts a
// second.
// So asynq's sleep is kept at a millisecond, and the waiting happens here, in a go-redis hook on asynq's own
// look (its dequeue script): when the last look found nothing, the next one first waits for an announcement, for
// the poll interval at most. Tasks that nobody announces (a retry, a task recovered from a dead worker) are
// found at the next poll.
type waker struct {
	pending, paused string        // asynq's keys for the queue, the first two of its dequeue script
	poll            time.Duration // the longest wait
	signal          chan struct{} // holds one announcement, so that none is lost between a look and the wait
	done            chan struct{} // closed when the worker stops, which ends any wait
	idle            atomic.Bool   // the last look found no task
	looks           atomic.Int64  // asynq's looks the hook has recognised; tests check that it knows them
	waits           atomic.Int64  // the looks that waited for an announcement first
	sub             *redis.PubSub
	listened        chan struct{} // closed when listen returns
	stopOnce        sync.Once
}

// newWaker subscribes to queue's announcements and returns a waker whose hook the caller adds to asynq's client.
func newWaker(ctx context.Context, l *ledger.Ledger, queue string, poll time.Duration) (*waker, error) {
	sub := l.Announcements(ctx, queue)
	// Receive returns once Redis has confirmed the subscription, so no announcement after Start returns is missed.
	if _, err := sub.Receive(ctx); err != nil {
		sub.Close()
		return nil, err
	}
	w := &waker{poll: poll, signal: make(chan struct{}, 1), done: make(chan struct{}), sub: sub, listened: make(chan struct{})}
	w.pending, w.paused = ledger.AsynqQueueKeys(queue)
	go w.listen()
	return w, nil
}

// listen turns each announcement into a signal, keeping at most one.
func (w *waker) listen() {
	defer close(w.listened)
	for range w.sub.Channel() {
		select {
		case w.signal <- struct{}{}:
		default:
		}
	}
}

// stop ends any wait and the subscription; it may be called again.
func (w *waker) stop() {
	w.stopOnce.Do(func() {
		close(w.done)
		w.sub.Close()
		<-w.listened
	})
}

// isLook reports whether cmd is asynq's dequeue script for the queue: EVALSHA or EVAL, four keys, the first two
// the queue's pending and paused keys (asynq v0.26, internal/rdb.Dequeue).
func (w *waker) isLook(cmd redis.Cmder) bool {
	args := cmd.Args() // name, script or SHA, key count, keys, arguments
	if len(args) < 7 || (cmd.Name() != "evalsha" && cmd.Name() != "eval") {
		return false
	}
	return args[2] == 4 && args[3] == w.pending && args[4] == w.paused
}

// wait blocks until an announcement, the poll interval or the worker's stop.
func (w *waker) wait() {
	t := time.NewTimer(w.poll)
	defer t.Stop()
	select {
	case <-w.signal:
	case <-t.C:
	case <-w.done:
	}
}

func (w *waker) DialHook(next redis.DialHook) redis.DialHook { return next }

func (w *waker) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

func (w *waker) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if !w.isLook(cmd) {
			return next(ctx, cmd)
		}
		w.looks.Add(1)
		if w.idle.Load() {
			w.waits.Add(1)
			w.wait()
		}
		err := next(ctx, cmd)
		w.idle.Store(errors.Is(err, redis.Nil))
		return err
	}
}
