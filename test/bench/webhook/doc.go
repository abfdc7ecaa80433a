// Package webhook benchmarks plexus-webhook under load: a driver sends AdmissionReviews over
// HTTPS to the running webhook, whose NAD cache is fed by a real kube-apiserver, and reports
// latency percentiles and how many API requests the webhook made per 1,000 admissions.
package webhook
