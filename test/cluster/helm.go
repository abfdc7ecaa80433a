package cluster

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Helm runs the helm CLI of BinDir (`make helm` installs it there) against the cluster, with
// its own Helm home under the state directory (no repositories, no plugins of the user's), and
// returns its standard output.
func (c *Cluster) Helm(ctx context.Context, args ...string) (string, error) {
	bin := c.bin("helm")
	if _, err := os.Stat(bin); err != nil {
		return "", fmt.Errorf("no helm CLI at %s: run `make helm`: %w", bin, err)
	}
	home := filepath.Join(c.dir, "helm")
	cmd := exec.CommandContext(ctx, bin, append(args, "--kubeconfig", c.Kubeconfig)...)
	cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+home+"/cache", "HELM_CONFIG_HOME="+home+"/config", "HELM_DATA_HOME="+home+"/data")
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("helm %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(errOut.String()))
	}
	return out.String(), nil
}
