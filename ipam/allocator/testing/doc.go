// Package testing holds in-memory fakes of the allocator's Store and Locker for unit tests. The
// fake Store enforces resourceVersions as the API server does, so lost races are exercised.
package testing
