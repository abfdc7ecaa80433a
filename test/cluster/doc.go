// Package cluster runs a local Kubernetes cluster made of real parts on this machine, for the
// e2e tests and `make demo`: etcd, kube-apiserver, kube-scheduler and kube-controller-manager
// from the test binaries cache, and N worker nodes, each a real containerd and kubelet living in
// its own network namespace and mount namespace (the shape of a kind cluster, without Docker).
//
// Every node is wired like a host: a veth to a host bridge that plays the physical network, a
// node IP from a benchmark-only range (198.18.0.0/15, never routed off the machine), its own
// /var/lib/kubelet, containerd state, CNI directories and device-info directory bind-mounted
// from the cluster's state directory, and its own cgroup root. A default pod network (bridge +
// host-local per node, routes between nodes) lets plain pods on different nodes reach each
// other. Images are built without a registry (pause, a busybox test image, the Plexus images of
// internal/images and, for the chart's second scheduler, one of the cached kube-scheduler) and
// imported into every node's containerd; Helm runs the cached helm CLI against the cluster.
//
// Each node can carry emulated SR-IOV hardware: a fake sysfs tree in the kernel's layout whose
// VF netdevs are real macvlan interfaces on the node's uplink, so the device plugin and the CNI
// plugins run unmodified with --sysfs-root.
//
// Everything Up creates is recorded in the state directory as it is created, so Down removes it
// all (processes, mounts, cgroups, network namespaces, links, directories) even after a crash.
package cluster
