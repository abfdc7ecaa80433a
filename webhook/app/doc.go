// Package app turns plexus-webhook's flags into a running webhook: the REST config (counting
// every API request it makes), the NAD cache, the injector and validator, and the HTTPS server.
// cmd/plexus-webhook only calls Main; tests and the benchmark call Run with Options.
package app
