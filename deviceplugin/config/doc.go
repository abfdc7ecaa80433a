// Package config reads and writes the sriov-network-device-plugin configuration file format (the
// "resourceList" JSON), so a user can switch to plexus-deviceplugin without rewriting their
// ConfigMap. Parsing is pure (bytes in, validated Config out); unknown keys and selectors that can
// never match (bad IDs, bad PCI addresses, a malformed "ens1f0#0-3,5" VF range) are errors that
// name the resourceList entry and the field.
//
// Accepted: resourceName, resourcePrefix (default --resource-prefix, intel.com), deviceType
// (netDevice, accelerator), excludeTopology, selectors (one object or a list of objects, ORed)
// with vendors, devices, drivers, pciAddresses, pfNames, rootDevices, linkTypes, isRdma,
// needVhostNet, and additionalInfo. Keys of newer upstream features Plexus does not implement
// (ddpProfiles, pKeys, vdpaType, auxTypes, acpiIndexes, deviceType auxNetDevice) are rejected
// rather than ignored, because ignoring a selector would put the wrong devices in a pool.
package config
