// Package repo locates the Plexus module on disk, for the test tooling that builds its
// commands or reads its charts and examples (the envtest harness, the sandbox, the e2e suite).
package repo

import (
	"fmt"
	"os"
	"path/filepath"
)

// Root is the directory holding Plexus's go.mod, found from the working directory up.
func Root() (string, error) {
	start, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for dir := start; ; {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod above %s: run this from the Plexus module", start)
		}
		dir = parent
	}
}
