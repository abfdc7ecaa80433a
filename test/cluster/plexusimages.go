package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/plexus-project/plexus/internal/images"
)

// The images built from the working tree are named <PlexusImageRegistry>/<component>:<PlexusImageTag>,
// the names charts/plexus/ci/sandbox-values.yaml gives the chart.
const (
	PlexusImageRegistry = "localhost/plexus"
	PlexusImageTag      = "dev"
)

// PlexusImageRef is the image of Plexus component name (an image of internal/images.Suite,
// e.g. plexus-webhook or plexus-cni): localhost/plexus/<name>:dev.
func PlexusImageRef(name string) string {
	return PlexusImageRegistry + "/" + name + ":" + PlexusImageTag
}

// KubeSchedulerImageRef is the image Options.SecondSchedulerImage names by convention: the
// cached kube-scheduler binary, the chart's second scheduler in the sandbox.
const KubeSchedulerImageRef = PlexusImageRegistry + "/kube-scheduler:" + PlexusImageTag

// Build is the outcome of building the Plexus commands.
type Build struct {
	// Binaries maps each command to its static binary.
	Binaries map[string]string
}

// Images returns the images the chart runs (internal/images.Suite: one per component, the CNI
// binaries with their installer in plexus-cni), from the binaries built. BuildPlexus makes
// sure every binary they hold was built.
func (b *Build) Images() []Image {
	var imgs []Image
	for _, comp := range images.Suite() {
		// ForComponent takes the binaries from one directory: BuildPlexus's outDir.
		dir := filepath.Dir(b.Binaries[comp.Binaries[0].Command])
		imgs = append(imgs, images.ForComponent(comp, PlexusImageRegistry, PlexusImageTag, dir, images.Meta{Version: PlexusImageTag}))
	}
	return imgs
}

// BuildPlexus builds every command under <repo>/cmd but skip as a static binary (CGO off) into
// outDir. A command that does not build is an error naming it and the compiler's complaint:
// the tests, the demo and the benchmarks fail rather than run without it.
func BuildPlexus(ctx context.Context, repo, outDir string, skip ...string) (*Build, error) {
	ents, err := os.ReadDir(filepath.Join(repo, "cmd"))
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return nil, err
	}
	skipped := map[string]bool{}
	for _, s := range skip {
		skipped[s] = true
	}
	var cmds []string
	for _, e := range ents {
		if !e.IsDir() || skipped[e.Name()] {
			continue
		}
		if m, _ := filepath.Glob(filepath.Join(repo, "cmd", e.Name(), "*.go")); len(m) > 0 {
			cmds = append(cmds, e.Name())
		}
	}
	b := &Build{Binaries: map[string]string{}}
	build := func(names ...string) error {
		args := []string{"build", "-trimpath", "-o", outDir + "/"}
		for _, n := range names {
			args = append(args, "./cmd/"+n)
		}
		cmd := exec.CommandContext(ctx, "go", args...)
		cmd.Dir = repo
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("%w: %s", err, strings.TrimSpace(out.String()))
		}
		for _, n := range names {
			b.Binaries[n] = filepath.Join(outDir, n)
		}
		return nil
	}
	if len(cmds) == 0 || build(cmds...) == nil {
		return b, b.checkSuite()
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("building %v: %w", cmds, err)
	}
	// Something does not build: build one by one to tell which.
	var errs []error
	for _, n := range cmds {
		if err := build(n); err != nil {
			errs = append(errs, fmt.Errorf("cmd/%s does not build: %w", n, err))
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return b, b.checkSuite()
}

// checkSuite fails when a command the images hold was not built (skipped, or gone from cmd/).
func (b *Build) checkSuite() error {
	for _, cmd := range images.Commands(images.Suite()) {
		if _, ok := b.Binaries[cmd]; !ok {
			return fmt.Errorf("the images need cmd/%s, which was not built", cmd)
		}
	}
	return nil
}
