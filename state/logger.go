package state

import (
	"fmt"
	"log/slog"

	"github.com/cockroachdb/pebble/v2"
)

// pebbleLogger adapts a *slog.Logger to pebble.Logger.
type pebbleLogger struct{ l *slog.Logger }

var _ pebble.Logger = pebbleLogger{}

// Infof implements pebble.Logger. Pebble's info messages ("Found 0 WALs"
// on every open, compaction notes) are routine for a store per partition,
// so they go out at debug level.
func (p pebbleLogger) Infof(format string, args ...any) {
	p.l.Debug(fmt.Sprintf(format, args...), "component", "pebble")
}

// Errorf implements pebble.Logger.
func (p pebbleLogger) Errorf(format string, args ...any) {
	p.l.Error(fmt.Sprintf(format, args...), "component", "pebble")
}

// Fatalf implements pebble.Logger. Pebble calls it only for broken internal
// invariants and requires that it does not return; Pebble's own default
// calls os.Exit. A panic is used instead so that the process owner (cmd)
// decides how to die and deferred cleanup still runs.
func (p pebbleLogger) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	p.l.Error(msg, "component", "pebble", "fatal", true)
	panic("pebble: fatal: " + msg)
}

// eventListener returns the Pebble event listener. Pebble's default
// DataCorruption handler calls Logger.Fatalf, which would turn a corrupt
// block into a crash; here corruption is only logged, and the error still
// reaches the caller as a *CorruptionError through the failing Get or
// iterator (runtime policy decides what to do, typically Destroy and
// restore). Other events keep Pebble's defaults (no-ops, except background
// errors which are logged).
func eventListener(l *slog.Logger) *pebble.EventListener {
	return &pebble.EventListener{
		BackgroundError: func(err error) {
			l.Error("pebble background error", "component", "pebble", "err", err)
		},
		DataCorruption: func(info pebble.DataCorruptionInfo) {
			l.Error("pebble data corruption", "component", "pebble",
				"path", info.Path, "err", info.Details)
		},
	}
}
