// Package extender is the kube-scheduler extender: Filter keeps the nodes that have free VFs in
// the right pools, are attached to the requested networks and have IP pool capacity left;
// Prioritize scores the rest by VF and NUMA fit.
package extender
