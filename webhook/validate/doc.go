// Package validate is the validating admission concern, for pods and NetworkAttachmentDefinitions:
//
//   - a pod's networks annotations parse, every NAD they select exists, parses and (under
//     namespace isolation) lies in the pod's namespace or a shared one, and every IP a network
//     element requests lies inside that network's IPAM range;
//   - an update that changes a pod's networks is refused once the pod is on a node, and
//     otherwise judged as a create;
//   - a NAD created or updated has a DNS-1123 name, a CNI configuration libcni parses with a
//     type for every plugin, a resourceName of extended-resource form, a valid node selector,
//     and IPAM sections plexus-ipam accepts: parseable, ranges it can use, host paths only inside
//     the node's Plexus directories and a valid node_name (ipam/config.ValidateHostPaths);
//   - a NAD is not deleted while running pods use it, unless it carries
//     plexus.io/allow-delete-in-use: "true".
//
// Refusals are Allowed:false responses whose message names the element at fault and the fix;
// pods that select no secondary network are allowed at once.
package validate
