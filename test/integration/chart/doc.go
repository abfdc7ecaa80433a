// Package chart tests charts/plexus with the real helm CLI and a real kube-apiserver: lint and
// template in every scheduler and certificate mode, refusals of bad values by the schema, the
// rendered objects' promises (least privilege, webhook policy, the scheduler configuration), a
// server-side dry-run apply of every rendered object, and skaffold.yaml against the chart.
package chart
