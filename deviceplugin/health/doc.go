// Package health decides which VFs are unhealthy right now, from the sysfs state of their PFs
// and netdevs. A VF is unhealthy when its PF is gone, its PF's link is down, its index is no
// longer below its PF's sriov_numvfs, or its netdev disappeared while the VF was not allocated
// (an allocated VF's netdev lives in the pod's network namespace, so it is expected to vanish
// from the host). The plugin polls Check often enough to report a change within one second.
package health
