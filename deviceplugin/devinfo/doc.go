// Package devinfo writes and removes Device Information Spec files (k8snetworkplumbingwg
// device-info-spec, version 1.1.0) for allocated VFs, so a CNI reads the PCI address, the PF and
// the vfio/vhost details of the device it was given.
//
// Files live in one directory (--devinfo-dir, by default /var/run/k8s.cni.cncf.io/devinfo/dp,
// where Multus and the NAD client library look) and are named as the NAD client names them:
// <resource name with "/" replaced by "-">-<device ID>-device.json, e.g.
// intel.com-sriov_netdevice-0000:3b:02.0-device.json.
package devinfo
