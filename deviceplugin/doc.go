// Package deviceplugin is plexus-deviceplugin: it discovers SR-IOV virtual functions from sysfs
// (package sysfs), groups them into resource pools by the selectors of a sriov-network-device-
// plugin configuration file (packages config and pool), and serves each pool to kubelet over the
// device plugin API v1beta1 (package server) with NUMA- and PF-aware preferred allocation
// (package policy), device-info files (package devinfo), health (package health) and the node's
// capacity published for the scheduler extender (package capacity).
//
// Manager ties these together in one event loop: it re-reads the configuration file when it
// changes (keeping the old pools when the new file is invalid), polls health, re-registers every
// server when kubelet restarts (kubelet.sock is recreated, or a plugin socket vanishes), and
// releases devices - removing their device-info files - once kubelet's PodResources API no
// longer lists them for any pod.
package deviceplugin
