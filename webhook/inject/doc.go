// Package inject is the mutating admission concern: it reads the networks a pod selects,
// resolves each NetworkAttachmentDefinition from the cache, and patches the pod with what those
// networks need, as network-resources-injector does, without its faults:
//
//   - one device resource per attachment (the same network twice asks for 2), added to requests
//     and limits of the chosen container: the first by default, the one the pod annotation
//     plexus.io/resource-container names, or the per-element "container" hint of the JSON form;
//     init containers are never given devices; a resource the user already set is left alone
//     unless HonorResources, and cpu/memory are never touched;
//   - the NADs' node selectors merged into the pod's nodeSelector; a contradiction is refused
//     with a message, never overwritten;
//   - the downward-API volume podnetinfo (labels, annotations, and the hugepages each container
//     requests), mounted read-only at /etc/podnetinfo in every container, unless present.
//
// The patch is minimal JSON Patch (RFC 6902, keys escaped with ~0 and ~1) and idempotent: run
// again on its own output (reinvocationPolicy IfNeeded) it is empty.
package inject
