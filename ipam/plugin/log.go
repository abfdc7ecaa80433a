package plugin

import (
	"fmt"
	"os"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"

	"github.com/plexus-project/plexus/ipam/config"
)

// newLogger logs to log_file when set (stderr otherwise), at verbosity 1 for log_level debug.
func newLogger(cfg *config.Config) (logr.Logger, func()) {
	out, closeFn := os.Stderr, func() {}
	if cfg.LogFile != "" {
		// O_NOFOLLOW: a symbolic link in the log directory does not redirect the writes of root.
		f, err := os.OpenFile(cfg.LogFile, os.O_CREATE|os.O_APPEND|os.O_WRONLY|syscall.O_NOFOLLOW, 0o640)
		if err != nil {
			fmt.Fprintf(os.Stderr, "plexus-ipam: cannot open log_file %s, logging to stderr: %v\n", cfg.LogFile, err)
		} else {
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
