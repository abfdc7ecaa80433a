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
)

// PlexusImageTag is the tag of the images built from the working tree.
const PlexusImageTag = "dev"

// PlexusImageRef is the image of Plexus command bin: localhost/plexus/<bin>:dev.
func PlexusImageRef(bin string) string { return "localhost/plexus/" + bin + ":" + PlexusImageTag }

// Build is the outcome of building the Plexus commands.
type Build struct {
	// Binaries maps each command to its static binary.
	Binaries map[string]string
}

// Images returns an image per built binary: the static binary alone as /<bin>, its entrypoint.
func (b *Build) Images() []Image {
	var imgs []Image
	for bin, path := range b.Binaries {
		imgs = append(imgs, Image{
			Ref:        PlexusImageRef(bin),
			Files:      []File{{Path: "/" + bin, Source: path}},
			Entrypoint: []string{"/" + bin},
		})
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
		return b, nil
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
	return b, nil
}
