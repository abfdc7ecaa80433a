package plugin

import (
	"fmt"
	"os"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"

	"github.com/plexus-project/plexus/ipam/config"
)

// newLogger logs to log_file when set (stderr otherwise), at verbosity 1 for log_level debug.
func newLogger(cfg *config.Config) (logr.Logger, func()) {
	out, closeFn := os.Stderr, func() {}
	if cfg.LogFile != "" {
		if f, err := os.OpenFile(cfg.LogFile, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644); err == nil {
			out, closeFn = f, func() { f.Close() }
		}
	}
	verbosity := 0
	switch cfg.LogLevel {
	case "debug", "verbose":
		verbosity = 1
	}
	log := funcr.New(func(prefix, args string) {
		fmt.Fprintln(out, time.Now().UTC().Format(time.RFC3339Nano), "plexus-ipam", prefix, args)
	}, funcr.Options{Verbosity: verbosity})
	return log, closeFn
}
