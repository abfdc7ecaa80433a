package conflist

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/containernetworking/cni/libcni"

	"github.com/plexus-project/plexus/cni/network"
)

// DefaultFileName is the name of the file the daemon writes into the CNI conf dir.
const DefaultFileName = "00-plexus.conflist"

// ShimType is the plugin type of the shim binary.
const ShimType = "plexus"

// extensions are the files the runtime reads as CNI configs (libcni's list).
var extensions = []string{".conf", ".conflist", ".json"}

// ClusterNetwork is the default network every pod gets as eth0 unless it names another.
type ClusterNetwork struct {
	// Source names where it came from: a file path or "NetworkAttachmentDefinition ns/name".
	Source string
	// Config is the network's conflist.
	Config *libcni.NetworkConfigList
}

// FindInDir returns the first CNI config in dir (by file name, as the runtime orders them)
// that is not own, parsed as a conflist.
func FindInDir(dir, own string) (*ClusterNetwork, error) {
	files, err := libcni.ConfFiles(dir, extensions)
	if err != nil {
		return nil, fmt.Errorf("reading the CNI conf dir %s: %w", dir, err)
	}
	sort.Strings(files)
	for _, f := range files {
		if filepath.Base(f) == own || strings.HasPrefix(filepath.Base(f), ".") {
			continue
		}
		return ReadFile(f)
	}
	return nil, fmt.Errorf("no cluster network: the CNI conf dir %s holds no config besides %s; install the cluster's network plugin first, or set --cni-cluster-network", dir, own)
}

// ReadFile parses the CNI config (.conf or .conflist) at path.
func ReadFile(path string) (*ClusterNetwork, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading the cluster network %s: %w", path, err)
	}
	name := strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
	list, err := network.ParseConfig(string(b), name)
	if err != nil {
		return nil, fmt.Errorf("the cluster network %s: %w", path, err)
	}
	return &ClusterNetwork{Source: path, Config: list}, nil
}

// ShimOptions are what the shim's entry in the written conflist carries.
type ShimOptions struct {
	// SocketPath is the daemon's socket.
	SocketPath string
	// NodeName is the node, for the shim's messages.
	NodeName string
	// Timeout bounds one call of the shim (a Go duration; "" = the shim's default).
	Timeout string
}

// Render returns the content of 00-plexus.conflist for cluster: one plugin, the shim, with the
// cluster network's CNI version and the capabilities its plugins declare (so the runtime
// passes runtimeConfig, e.g. portMappings, which the daemon hands to the cluster network).
func Render(cluster *ClusterNetwork, o ShimOptions) ([]byte, error) {
	caps := map[string]bool{}
	for _, p := range cluster.Config.Plugins {
		for k, v := range p.Network.Capabilities {
			if v {
				caps[k] = true
			}
		}
	}
	shim := map[string]any{"type": ShimType, "socketPath": o.SocketPath}
	if o.NodeName != "" {
		shim["nodeName"] = o.NodeName
	}
	if o.Timeout != "" {
		shim["timeout"] = o.Timeout
	}
	if len(caps) > 0 {
		shim["capabilities"] = caps
	}
	version := cluster.Config.CNIVersion
	if version == "" {
		version = "0.3.1"
	}
	return json.MarshalIndent(map[string]any{
		"cniVersion": version,
		"name":       "plexus",
		"plugins":    []any{shim},
	}, "", "  ")
}

// Write replaces path with content atomically, unless it already holds exactly that. It
// reports whether it wrote.
func Write(path string, content []byte) (bool, error) {
	if old, err := os.ReadFile(path); err == nil && string(old) == string(content) {
		return false, nil
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return false, fmt.Errorf("reading %s: %w", path, err)
	}
	dir := filepath.Dir(path)
	// A name outside the runtime's extensions, so it never reads a half-written file.
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return false, fmt.Errorf("writing %s: %w", path, err)
	}
	_, werr := tmp.Write(content)
	if werr == nil {
		werr = tmp.Chmod(0o644)
	}
	if werr == nil {
		werr = tmp.Sync()
	}
	if cerr := tmp.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Rename(tmp.Name(), path)
	}
	if werr != nil {
		_ = os.Remove(tmp.Name())
		return false, fmt.Errorf("writing %s: %w", path, werr)
	}
	return true, nil
}

// Source finds the cluster network (FindInDir, ReadFile, or a NAD through a lookup).
type Source func(ctx context.Context) (*ClusterNetwork, error)
