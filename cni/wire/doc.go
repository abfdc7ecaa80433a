// Package wire is the protocol between the `plexus` CNI shim and the CNI server of
// plexus-daemon: one HTTP request over a unix socket per CNI call.
//
// The shim POSTs a Request (the CNI command, its CNI_* environment and the stdin config) to
// /cni on the socket; the daemon answers 200 with the command's output (the CNI result of an
// ADD, nothing for the others) or a non-2xx status with a CNI error object ({"code", "msg",
// "details"}), which the shim prints as it is. The socket lives in a directory only root can
// enter (0700) and is itself 0600, so only root on the node can ask for an attachment.
package wire
