// Command plexus-ipam is the cluster-wide IPAM CNI plugin of Plexus (see ipam/plugin).
package main

import (
	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/version"

	"github.com/plexus-project/plexus/ipam/plugin"
)

func main() {
	skel.PluginMainFuncs(plugin.New(plugin.DefaultHost()).Funcs(), version.PluginSupports("0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"), "plexus-ipam: cluster-wide IPAM backed by IPPool/IPBlock custom resources")
}
