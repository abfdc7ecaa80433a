package cli

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

func TestLogging(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr string
		check   func(t *testing.T, out string)
	}{
		{
			name: "text by default, V(1) hidden at --v=0",
			check: func(t *testing.T, out string) {
				if !strings.Contains(out, "msg=shown") || strings.Contains(out, "hidden") {
					t.Errorf("want the V(0) line only, in text; got %q", out)
				}
			},
		},
		{
			name: "json with --v=1 shows V(1)",
			args: []string{"--log-format=json", "--v=1"},
			check: func(t *testing.T, out string) {
				lines := strings.Split(strings.TrimSpace(out), "\n")
				if len(lines) != 2 {
					t.Fatalf("want 2 lines, got %q", out)
				}
				for _, l := range lines {
					var m map[string]any
					if err := json.Unmarshal([]byte(l), &m); err != nil {
						t.Errorf("line %q is not JSON: %v", l, err)
					}
				}
			},
		},
		{name: "unknown format", args: []string{"--log-format=yaml"}, wantErr: `--log-format="yaml"`},
		{name: "negative verbosity", args: []string{"--v=-1"}, wantErr: "--v=-1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
			var o Logging
			o.AddFlags(fs)
			if err := fs.Parse(tt.args); err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			log, err := o.Logger(&buf)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one naming %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			log.Info("shown")
			log.V(1).Info("hidden")
			tt.check(t, buf.String())
		})
	}
}
