package images

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Component is one image the project ships.
type Component struct {
	// Name is the image name, the last path element of its reference.
	Name string
	// Description goes into the org.opencontainers.image.description label.
	Description string
	// Binaries maps a path in the image to a command under cmd/; the first is the entrypoint.
	Binaries []Binary
	// Root: the component needs root on the node (device plugin, node daemon).
	Root bool
	// Env is set in the image besides PATH.
	Env []string
}

// Binary is a command under cmd/ placed at Path in an image.
type Binary struct {
	Path, Command string
}

// Suite is every image the chart runs.
func Suite() []Component {
	one := func(name, desc string, root bool) Component {
		return Component{Name: name, Description: desc, Root: root, Binaries: []Binary{{Path: "/" + name, Command: name}}}
	}
	return []Component{
		one("plexus-webhook", "Plexus admission webhook: device resources and validation of pod networks", false),
		one("plexus-controller", "Plexus controller: IPAM leak reclaim, pool usage and serving certificates", false),
		one("plexus-extender", "Plexus kube-scheduler extender: network, VF and IP pool aware filtering", false),
		one("plexus-deviceplugin", "Plexus SR-IOV device plugin", true),
		one("plexus-daemon", "Plexus node daemon: the CNI server and the IPAM agent", true),
		{
			// Laid out as ko lays out a main with a kodata directory, so that skaffold's ko
			// builder makes the same image: the installer, and the CNI binaries it installs in
			// $KO_DATA_PATH.
			Name: "plexus-cni", Description: "Installs the Plexus CNI binaries (plexus, plexus-sriov, plexus-ipam) on the node", Root: true,
			Env: []string{"KO_DATA_PATH=" + KoDataPath},
			Binaries: []Binary{
				{Path: "/ko-app/plexus-install-cni", Command: "plexus-install-cni"},
				{Path: KoDataPath + "/plexus", Command: "plexus"},
				{Path: KoDataPath + "/plexus-sriov", Command: "plexus-sriov"},
				{Path: KoDataPath + "/plexus-ipam", Command: "plexus-ipam"},
			},
		},
	}
}

// KoDataPath is where ko puts a main's kodata directory.
const KoDataPath = "/var/run/ko"

// Commands are the commands under cmd/ the suite's images hold.
func Commands(comps []Component) []string {
	seen := map[string]bool{}
	var out []string
	for _, c := range comps {
		for _, b := range c.Binaries {
			if !seen[b.Command] {
				seen[b.Command] = true
				out = append(out, b.Command)
			}
		}
	}
	return out
}

// Meta is what the labels say of a build.
type Meta struct {
	// Version of the build (the tag by default) and Revision (the git commit, if known).
	Version, Revision string
}

// ForComponent is the Image of c named registry/<name>:tag, with binaries from binDir (as
// BuildBinaries writes them).
func ForComponent(c Component, registry, tag, binDir string, m Meta) Image {
	img := Image{
		Ref:  registry + "/" + c.Name + ":" + tag,
		User: NonRoot,
		Labels: map[string]string{
			"org.opencontainers.image.title":       c.Name,
			"org.opencontainers.image.description": c.Description,
			"org.opencontainers.image.source":      "https://github.com/plexus-project/plexus",
			"org.opencontainers.image.version":     m.Version,
			"org.opencontainers.image.revision":    m.Revision,
		},
	}
	if c.Root {
		img.User = "0:0"
	}
	img.Env = c.Env
	for i, b := range c.Binaries {
		img.Files = append(img.Files, File{Path: b.Path, Source: filepath.Join(binDir, b.Command)})
		if i == 0 {
			img.Entrypoint = []string{b.Path}
		}
	}
	return img
}

// KubeSchedulerImage is an image of a kube-scheduler binary (the sandbox's second scheduler,
// from the cached test binary), run as non-root like the upstream image.
func KubeSchedulerImage(ref, binary string) Image {
	return Image{
		Ref:        ref,
		User:       NonRoot,
		Files:      []File{{Path: "/usr/local/bin/kube-scheduler", Source: binary}},
		Entrypoint: []string{"/usr/local/bin/kube-scheduler"},
		Labels:     map[string]string{"org.opencontainers.image.title": "kube-scheduler"},
	}
}

// BuildBinaries builds the commands of repo as static binaries (no cgo: the images have no
// libc) into outDir.
func BuildBinaries(ctx context.Context, repo, outDir string, commands []string) error {
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return err
	}
	args := []string{"build", "-trimpath", "-ldflags=-s -w", "-o", outDir + "/"}
	for _, c := range commands {
		args = append(args, "./cmd/"+c)
	}
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = repo
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("building %s: %w: %s", strings.Join(commands, ", "), err, strings.TrimSpace(out.String()))
	}
	return nil
}
