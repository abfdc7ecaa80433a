package config

import (
	"fmt"
	"path/filepath"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// The node's Plexus directories: the only places a network configuration (a NAD's text, written
// by a namespace user) may name for plexus-ipam, which runs as root on every node. Paths set by
// the node itself (the node configuration file, the flat file it names, the environment) are not
// restricted.
const (
	// ConfigDir holds node-level configuration: the node file (NodeConfigPath), flat files
	// (configuration_path) and kubeconfigs.
	ConfigDir = "/etc/plexus"
	// KubeconfigDir is where the plugin's kubeconfig is installed (DefaultKubeconfig);
	// kubernetes.kubeconfig may name a file inside it or inside ConfigDir.
	KubeconfigDir = "/etc/cni/net.d/plexus-ipam.d"
	// RunDir is the default lock_dir (the node lock, the block cache and the agent's socket);
	// lock_dir may name it or a directory inside it.
	RunDir = DefaultLockDir
	// LogDir is where log_file may write.
	LogDir = "/var/log/plexus"
)

// HostPathError is a network configuration that names a host path, or a node name, plexus-ipam
// does not accept from a network configuration.
type HostPathError struct {
	Errs field.ErrorList
}

func (e *HostPathError) Error() string { return e.Errs.ToAggregate().Error() }

// ValidateHostPaths checks what an IPAM section (as written in a network configuration, before
// the node's settings or a flat file fill it in) asks of the node: log_file inside LogDir,
// configuration_path inside ConfigDir (or one of Whereabouts' FlatFilePaths), lock_dir inside
// RunDir, node_name a valid node name. The errors name the field, the value and the allowed
// place; fldPath is the path of the ipam object. It is pure, for the plugin and the webhook alike.
//
// A kubernetes.kubeconfig outside KubeconfigDir and ConfigDir is not an error (Whereabouts
// configurations name their own): the plugin ignores it and uses the node's, and the warning
// returned says so.
func ValidateHostPaths(ipam *IPAM, fldPath *field.Path) (errs field.ErrorList, warnings []string) {
	if p := ipam.LogFile; p != "" && !inside(p, LogDir) {
		errs = append(errs, field.Invalid(fldPath.Child("log_file"), p,
			fmt.Sprintf("a network configuration may only log to a file inside %s (or set no log_file: errors go to the runtime's log)", LogDir)))
	}
	if p := ipam.ConfigurationPath; p != "" && !inside(p, ConfigDir) && !isFlatFilePath(p) {
		errs = append(errs, field.Invalid(fldPath.Child("configuration_path"), p,
			fmt.Sprintf("a network configuration may only name a flat file inside %s or one of %s", ConfigDir, strings.Join(FlatFilePaths, ", "))))
	}
	if p := ipam.LockDir; p != "" && p != RunDir && !inside(p, RunDir) {
		errs = append(errs, field.Invalid(fldPath.Child("lock_dir"), p,
			fmt.Sprintf("a network configuration may only name %s or a directory inside it (or set no lock_dir: the node's is used)", RunDir)))
	}
	if n := ipam.NodeName; n != "" {
		for _, msg := range validation.IsDNS1123Subdomain(n) {
			errs = append(errs, field.Invalid(fldPath.Child("node_name"), n, "not a valid node name: "+msg))
		}
	}
	if p := ipam.Kubernetes.Kubeconfig; p != "" && !KubeconfigAllowed(p) {
		warnings = append(warnings, fmt.Sprintf("%s %q is ignored: plexus-ipam reads a kubeconfig named by a network configuration only inside %s or %s, and uses the node's (%s) instead",
			fldPath.Child("kubernetes", "kubeconfig"), p, KubeconfigDir, ConfigDir, DefaultKubeconfig))
	}
	return errs, warnings
}

// KubeconfigAllowed reports whether a network configuration may name the kubeconfig at path.
func KubeconfigAllowed(path string) bool {
	return inside(path, KubeconfigDir) || inside(path, ConfigDir)
}

// inside reports whether path is a clean absolute path strictly below dir: no "..", no "//", no
// trailing slash, nothing that resolves elsewhere by its spelling.
func inside(path, dir string) bool {
	return filepath.IsAbs(path) && filepath.Clean(path) == path && strings.HasPrefix(path, dir+"/")
}

func isFlatFilePath(p string) bool {
	for _, f := range FlatFilePaths {
		if p == f {
			return true
		}
	}
	return false
}
