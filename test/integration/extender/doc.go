// Package extender holds the acceptance tests of plexus-extender: a real kube-apiserver and
// etcd (test/controlplane), the real kube-scheduler configured with the extender stanza
// plexus-extender prints, and the extender itself (app.Run, the code the binary runs) serving
// HTTP on loopback in the test process.
package extender
