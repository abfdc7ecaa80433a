// Package cluster measures the local cluster of real kubelets (test/cluster): how long a
// three-node cluster takes to come up, to run a pod on every node, and to go down.
package cluster
