package chart

import (
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/plexus-project/plexus/test/controlplane"
	"github.com/plexus-project/plexus/test/repo"
)

// TestArgsAreFlags: every flag the chart passes to a container is one its binary defines, in
// every mode. The binaries are built from the working tree (their flags move as the components
// grow); kube-scheduler is the cached test binary.
func TestArgsAreFlags(t *testing.T) {
	root, err := repo.Root()
	if err != nil {
		t.Fatal(err)
	}
	bin := t.TempDir()
	cmds := []string{"plexus-webhook", "plexus-controller", "plexus-extender", "plexus-deviceplugin", "plexus-daemon", "plexus-install-cni"}
	build := exec.Command("go", append([]string{"build", "-o", bin + "/"}, prefixed("./cmd/", cmds)...)...)
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building %v: %v\n%s", cmds, err, out)
	}
	binDir, err := controlplane.BinDir()
	if err != nil {
		t.Fatal(err)
	}
	// The binary each image runs.
	binaries := map[string]string{"plexus-cni": filepath.Join(bin, "plexus-install-cni"), "kube-scheduler": filepath.Join(binDir, "kube-scheduler")}
	for _, c := range cmds {
		binaries[c] = filepath.Join(bin, c)
	}
	known := map[string]map[string]bool{}
	flagsOf := func(path string) map[string]bool {
		if known[path] == nil {
			out, _ := exec.Command(path, "--help").CombinedOutput() // some exit 2 after printing usage
			known[path] = map[string]bool{}
			for _, m := range regexp.MustCompile(`(?m)^\s+(?:-[a-zA-Z], )?--?([a-zA-Z][\w-]*)`).FindAllStringSubmatch(string(out), -1) {
				known[path][m[1]] = true
			}
			if len(known[path]) == 0 {
				t.Fatalf("%s --help lists no flags:\n%s", path, out)
			}
		}
		return known[path]
	}
	for _, m := range modes {
		t.Run(m.String(), func(t *testing.T) {
			for _, o := range objects(t, render(t, m.args()...)) {
				for _, field := range []string{"containers", "initContainers"} {
					cs, _, _ := nestedSlice(o.Object, "spec", "template", "spec", field)
					for _, c := range cs {
						c := c.(map[string]any)
						image := c["image"].(string)
						name := image[strings.LastIndex(image, "/")+1 : strings.LastIndex(image, ":")]
						path, ok := binaries[name]
						if !ok {
							t.Errorf("%s: no binary known for image %s", o.GetName(), image)
							continue
						}
						args, _ := c["args"].([]any)
						for _, a := range args {
							flag := strings.TrimLeft(strings.SplitN(a.(string), "=", 2)[0], "-")
							if !flagsOf(path)[flag] {
								t.Errorf("%s/%s passes %q, which %s does not define", o.GetName(), c["name"], a, filepath.Base(path))
							}
						}
					}
				}
			}
		})
	}
}

func prefixed(p string, s []string) []string {
	out := make([]string, len(s))
	for i, v := range s {
		out[i] = p + v
	}
	return out
}
