package cli

import (
	"fmt"
	"io"
	"log/slog"

	"github.com/go-logr/logr"
	"github.com/spf13/pflag"
)

// Log formats accepted by --log-format.
const (
	FormatText = "text"
	FormatJSON = "json"
)

// Logging are the logging flags of a Plexus binary.
type Logging struct {
	// Verbosity is --v: 0 logs what an operator needs, higher values log more (V(1), V(2), ...).
	Verbosity int
	// Format is --log-format: "text" (default, key=value lines) or "json" (one object a line).
	Format string
}

// AddFlags registers --v and --log-format on fs.
func (o *Logging) AddFlags(fs *pflag.FlagSet) {
	fs.IntVarP(&o.Verbosity, "v", "v", o.Verbosity, "log verbosity: 0 logs what an operator needs, 1 and up add detail")
	if o.Format == "" {
		o.Format = FormatText
	}
	fs.StringVar(&o.Format, "log-format", o.Format, "log format: text or json")
}

// Logger returns the logr.Logger the flags ask for, writing to w (the binary's stderr).
func (o *Logging) Logger(w io.Writer) (logr.Logger, error) {
	if o.Verbosity < 0 {
		return logr.Discard(), fmt.Errorf("--v=%d: verbosity must be 0 or more", o.Verbosity)
	}
	// logr's V(n) maps to slog level -n, so the handler's minimum is -Verbosity.
	opts := &slog.HandlerOptions{Level: slog.Level(-o.Verbosity)}
	switch o.Format {
	case FormatText, "":
		return logr.FromSlogHandler(slog.NewTextHandler(w, opts)), nil
	case FormatJSON:
		return logr.FromSlogHandler(slog.NewJSONHandler(w, opts)), nil
	default:
		return logr.Discard(), fmt.Errorf("--log-format=%q: use %q or %q", o.Format, FormatText, FormatJSON)
	}
}
