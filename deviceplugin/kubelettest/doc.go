// Package kubelettest is a test kubelet for device plugins: a Registration server on
// <dir>/kubelet.sock that, like kubelet's device manager, connects to every plugin that
// registers and follows its ListAndWatch stream, and a PodResources server whose answer the test
// sets. Restart emulates a kubelet restart: kubelet.sock is recreated and the plugins' sockets
// are removed, as kubelet does.
package kubelettest
