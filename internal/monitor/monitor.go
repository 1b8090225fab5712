// Package monitor serves asynqmon, the asynq web monitor, whose Go module ships its built UI: the queues, their
// tasks by state, the workers and the throughput, read from the run's Redis.
package monitor

import (
	"fmt"
	"net/http"

	"github.com/hibiken/asynq"
	"github.com/hibiken/asynqmon"
	"github.com/redis/go-redis/v9"

	"hpnorton/tasks"
)

// Handler is the monitor's UI at / and its JSON API under /api/. Close it to release its Redis connections.
type Handler struct {
	*asynqmon.HTTPHandler
}

// New returns the monitor for the Redis that opt describes, as cli.OpenRedis parsed it from the command line.
// With readOnly, the UI shows the queues but cannot pause them or delete tasks.
func New(opt *redis.Options, readOnly bool) *Handler {
	return &Handler{asynqmon.New(asynqmon.Options{
		RedisConnOpt: asynq.RedisClientOpt{
			Network: opt.Network, Addr: opt.Addr, Username: opt.Username, Password: opt.Password,
			DB: opt.DB, TLSConfig: opt.TLSConfig,
		},
		ReadOnly:         readOnly,
		PayloadFormatter: asynqmon.PayloadFormatterFunc(FormatPayload),
	})}
}

var _ http.Handler = (*Handler)(nil)

// FormatPayload shows an import task as its chunk's metadata and the size of its CSV. asynqmon's default would put
// the whole chunk, about 2 MB at 20,000 rows, into every task list the browser loads.
func FormatPayload(taskType string, payload []byte) string {
	if _, err := tasks.KindOf(taskType); err != nil {
		return string(payload)
	}
	p, err := tasks.DecodeImportPayload(payload)
	if err != nil {
		return fmt.Sprintf("unreadable payload of %d bytes: %v", len(payload), err)
	}
	return fmt.Sprintf("%s: %d records from line %d, run %s (%d bytes of CSV not shown)", p.File, p.Records, p.FirstLine, p.RunID, len(p.Data))
}
