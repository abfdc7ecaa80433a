package cluster

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// DefaultNetworkName is the name of the default pod network (bridge + host-local) in every
// node's /etc/cni/net.d.
const DefaultNetworkName = "plexus-default"

// writeNodeConfig writes node n's containerd and kubelet configuration, its kubeconfig, its
// default CNI network, and copies the CNI plugins into its /opt/cni/bin.
func (c *Cluster) writeNodeConfig(n *Node) error {
	ctrd := filepath.Join(n.Dir, "containerd")
	containerdTOML := fmt.Sprintf(`version = 2
root = %q
state = %q
[grpc]
  address = %q
[plugins]
  [plugins."io.containerd.grpc.v1.cri"]
    sandbox_image = %q
    stream_server_address = "127.0.0.1"
    stream_server_port = "0"
    # root here lacks CAP_SYS_RESOURCE: the pause container's oom_score_adj of -998 would fail.
    restrict_oom_score_adj = true
    # Pod network namespaces are pinned in the node's /run/netns (a shared mount), where a
    # node-side CNI server in a pod (hostPath with HostToContainer propagation) finds them.
    netns_mounts_under_state_dir = false
    disable_apparmor = true
    [plugins."io.containerd.grpc.v1.cri".containerd]
      snapshotter = "overlayfs"
      default_runtime_name = "runc"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
        runtime_type = "io.containerd.runc.v2"
        [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
          SystemdCgroup = false
          Root = %q
    [plugins."io.containerd.grpc.v1.cri".cni]
      bin_dir = "/opt/cni/bin"
      conf_dir = "/etc/cni/net.d"
      max_conf_num = 1
`, filepath.Join(ctrd, "root"), filepath.Join(ctrd, "state"), containerdSocket, PauseImage, filepath.Join(ctrd, "runc"))
	if err := os.WriteFile(filepath.Join(n.Dir, "containerd.toml"), []byte(containerdTOML), 0o644); err != nil {
		return err
	}
	kubelet := fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: %s
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
cgroupDriver: cgroupfs
cgroupRoot: /%s
failCgroupV1: false
failSwapOn: false
containerRuntimeEndpoint: unix://%s
podLogsDir: /var/log/pods
volumePluginDir: /var/lib/kubelet/volume-plugins
authentication:
  anonymous: {enabled: true}
  webhook: {enabled: false}
authorization:
  mode: AlwaysAllow
registerNode: true
resolvConf: ""
clusterDomain: cluster.local
rotateCertificates: false
serializeImagePulls: false
nodeStatusUpdateFrequency: 4s
nodeStatusReportFrequency: 4s
syncFrequency: 10s
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: "100Mi", nodefs.available: "1%%", nodefs.inodesFree: "1%%", imagefs.available: "1%%"}
`, n.IP, n.Name, containerdSocket)
	if err := os.WriteFile(filepath.Join(n.Dir, "kubelet.yaml"), []byte(kubelet), 0o644); err != nil {
		return err
	}
	if err := c.pki.writeKubeconfig(filepath.Join(n.Dir, "kubeconfig"), c.APIServerURL(), "system:node:"+n.Name); err != nil {
		return err
	}
	for path, user := range c.opts.NodeKubeconfigs {
		if err := os.MkdirAll(filepath.Dir(n.HostPath(path)), 0o755); err != nil {
			return err
		}
		if err := c.pki.writeKubeconfig(n.HostPath(path), c.APIServerURL(), user); err != nil {
			return err
		}
	}
	conflist := fmt.Sprintf(`{"cniVersion": "1.0.0", "name": %q, "plugins": [
  {"type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": false, "hairpinMode": true,
   "ipam": {"type": "host-local", "ranges": [[{"subnet": %q}]], "routes": [{"dst": "0.0.0.0/0"}]}},
  {"type": "portmap", "capabilities": {"portMappings": true}}
]}
`, DefaultNetworkName, n.PodCIDR)
	if err := os.WriteFile(filepath.Join(n.HostPath("/etc/cni/net.d"), "50-plexus-default.conflist"), []byte(conflist), 0o644); err != nil {
		return err
	}
	ents, err := os.ReadDir(c.opts.CNIBinDir)
	if err != nil {
		return fmt.Errorf("reading the CNI plugins (run hack/cni-plugins.sh): %w", err)
	}
	for _, e := range ents {
		if e.Type().IsRegular() && e.Name()[0] != '.' {
			if err := copyFile(filepath.Join(c.opts.CNIBinDir, e.Name()), filepath.Join(n.HostPath("/opt/cni/bin"), e.Name()), 0o755); err != nil {
				return err
			}
		}
	}
	for _, p := range c.opts.CNIPlugins {
		if err := copyFile(p, filepath.Join(n.HostPath("/opt/cni/bin"), filepath.Base(p)), 0o755); err != nil {
			return err
		}
	}
	return nil
}

func copyFile(src, dst string, mode os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
