// Command plexus-sriov is the SR-IOV CNI plugin of Plexus: it attaches a VF, named by its PCI
// address in deviceID, to a pod (see cni/sriov). Node settings: /etc/plexus/sriov.json, or the
// file $PLEXUS_SRIOV_CONFIG names.
package main

import (
	"log/slog"
	"os"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/version"
	"github.com/go-logr/logr"

	"github.com/plexus-project/plexus/cni/sriov"
)

func main() {
	// The container runtime keeps a plugin's stderr in its log.
	log := logr.FromSlogHandler(slog.NewTextHandler(os.Stderr, nil)).WithName("plexus-sriov")
	skel.PluginMainFuncs(sriov.New(sriov.DefaultHost(log)).Funcs(),
		version.PluginSupports("0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"),
		"plexus-sriov: attaches SR-IOV virtual functions to pods")
}
