package config

import (
	"encoding/json"
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
)

// NodeConfigPath is the node's own plexus-ipam settings (see NodeConfig), written by the node
// daemon (plexus-daemon) or the installer. The plugin reads it from the path in the environment
// variable NodeConfigEnv when set (the runtime's environment, which no network configuration can
// change), else from here.
const NodeConfigPath = ConfigDir + "/ipam.json"

// NodeConfigEnv names the environment variable that overrides NodeConfigPath.
const NodeConfigEnv = "PLEXUS_IPAM_NODE_CONFIG"

// NodeConfig is what the node, not the network configuration, decides: who the node is, with
// which credentials plexus-ipam writes and where its node-local state lives. Its paths are not
// restricted: the file is the node's (root's), not a namespace user's.
type NodeConfig struct {
	// NodeName is the node's name; it wins over a network configuration's node_name.
	NodeName string `json:"node_name,omitempty"`
	// Kubeconfig is the plugin's kubeconfig in direct mode; it wins over kubernetes.kubeconfig.
	Kubeconfig string `json:"kubeconfig,omitempty"`
	// LockDir is the node lock, block cache and agent socket directory; it wins over lock_dir.
	LockDir string `json:"lock_dir,omitempty"`
	// LogFile is where the plugin logs when the network configuration names no log_file.
	LogFile string `json:"log_file,omitempty"`
	// LogLevel is the plugin's log level when the network configuration names none.
	LogLevel string `json:"log_level,omitempty"`
}

// ParseNodeConfig reads the node configuration file's content.
func ParseNodeConfig(b []byte) (*NodeConfig, error) {
	var n NodeConfig
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&n); err != nil {
		return nil, fmt.Errorf("parsing the node configuration: %w", err)
	}
	if err := n.Validate(); err != nil {
		return nil, err
	}
	return &n, nil
}

// Validate checks the node name, which names lock and cache files.
func (n *NodeConfig) Validate() error {
	if n.NodeName != "" {
		if msgs := validation.IsDNS1123Subdomain(n.NodeName); len(msgs) > 0 {
			return fmt.Errorf("node name %q is not a valid node name: %s", n.NodeName, strings.Join(msgs, "; "))
		}
	}
	return nil
}

// applyNode lets the node's settings win over the network configuration's, and fills in the
// defaults of what neither sets.
func (c *Config) applyNode(n *NodeConfig) {
	if n == nil {
		n = &NodeConfig{}
	}
	if n.NodeName != "" {
		if c.NodeName != "" && c.NodeName != n.NodeName {
			c.Warnings = append(c.Warnings, fmt.Sprintf("node_name %q of the network configuration is ignored: this node is %q", c.NodeName, n.NodeName))
		}
		c.NodeName = n.NodeName
	}
	c.Kubeconfig = first(n.Kubeconfig, c.Kubeconfig, DefaultKubeconfig)
	c.LockDir = first(n.LockDir, c.LockDir, DefaultLockDir)
	c.LogFile = first(c.LogFile, n.LogFile)
	c.LogLevel = first(c.LogLevel, n.LogLevel)
}

func first(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}
