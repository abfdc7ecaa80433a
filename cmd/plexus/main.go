// Command plexus is the Plexus CNI meta-plugin the container runtime runs on every node: a
// shim forwarding each CNI call to the node's plexus-daemon (see cni/shim).
package main

import (
	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/version"

	"github.com/plexus-project/plexus/cni/shim"
)

func main() {
	skel.PluginMainFuncs(shim.New(shim.DefaultHost()).Funcs(), version.PluginSupports("0.3.1", "0.4.0", "1.0.0", "1.1.0"), "plexus: multi-network CNI meta-plugin (forwards to plexus-daemon)")
}
