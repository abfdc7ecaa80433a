// Package apistore is the allocator.Store of production: plain JSON requests to the API server's
// ipam.plexus.io/v1alpha1 endpoints over client-go's authenticated HTTP client. It deliberately
// avoids typed clients, schemes and discovery, so a plugin process starts and finishes fast.
package apistore
