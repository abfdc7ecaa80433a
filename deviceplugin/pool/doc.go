// Package pool groups discovered VFs into resource pools by the selectors of the configuration.
// A VF matches an entry when it matches any of its selectors (every field a selector sets must
// match). A VF goes to at most one pool: the first entry of resourceList that matches wins, and
// the others are told so in the log.
package pool
