package images

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
)

// Options of a suite build.
type Options struct {
	// Repo is the module root; Out the archive path; BinDir where binaries are built.
	Repo, Out, BinDir string
	// Registry and Tag name the images: <Registry>/<component>:<Tag>.
	Registry, Tag string
	// KubeScheduler, when set, is a kube-scheduler binary added as <Registry>/kube-scheduler:<Tag>
	// (the sandbox's second scheduler).
	KubeScheduler string
}

// Run builds the suite's binaries and writes its images to o.Out; it returns their references.
func Run(ctx context.Context, o Options) ([]string, error) {
	suite := Suite()
	if err := BuildBinaries(ctx, o.Repo, o.BinDir, Commands(suite)); err != nil {
		return nil, err
	}
	meta := Meta{Version: o.Tag, Revision: gitRevision(ctx, o.Repo)}
	var imgs []Image
	for _, c := range suite {
		imgs = append(imgs, ForComponent(c, o.Registry, o.Tag, o.BinDir, meta))
	}
	if o.KubeScheduler != "" {
		imgs = append(imgs, KubeSchedulerImage(o.Registry+"/kube-scheduler:"+o.Tag, o.KubeScheduler))
	}
	if err := WriteArchive(o.Out, imgs); err != nil {
		return nil, err
	}
	var refs []string
	for _, i := range imgs {
		refs = append(refs, i.Ref)
	}
	return refs, nil
}

func gitRevision(ctx context.Context, repo string) string {
	out, err := exec.CommandContext(ctx, "git", "-C", filepath.Clean(repo), "rev-parse", "HEAD").Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

// String describes o for logs.
func (o Options) String() string {
	return fmt.Sprintf("%s/<component>:%s -> %s", o.Registry, o.Tag, o.Out)
}
