package testing

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// Build compiles (statically) the plexus-ipam command of the module at repoRoot into dir and returns its path.
func Build(repoRoot, dir string) (string, error) {
	bin := filepath.Join(dir, "plexus-ipam")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/plexus-ipam")
	cmd.Dir = repoRoot
	// A static binary starts faster: no dynamic loader, which matters for a process per call.
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building plexus-ipam: %w\n%s", err, out)
	}
	return bin, nil
}
