package app

import (
	"context"
	"io"
	"strings"
	"testing"
)

func TestMainFlags(t *testing.T) {
	if err := Main(context.Background(), []string{"--help"}, io.Discard); err != nil {
		t.Errorf("--help: %v", err)
	}
	if err := Main(context.Background(), []string{"--no-such-flag"}, io.Discard); err == nil {
		t.Error("an unknown flag must fail")
	}
	err := Main(context.Background(), []string{"--kubeconfig", "/nonexistent/kubeconfig"}, io.Discard)
	if err == nil || !strings.Contains(err.Error(), `loading the kubeconfig "/nonexistent/kubeconfig"`) {
		t.Errorf("err = %v", err)
	}
}

func TestMainLogging(t *testing.T) {
	err := Main(context.Background(), []string{"--log-format", "xml"}, io.Discard)
	if err == nil || !strings.Contains(err.Error(), `--log-format="xml"`) {
		t.Errorf("err = %v", err)
	}
}
