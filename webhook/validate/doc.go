// Package validate is the validating admission concern, for pods and NetworkAttachmentDefinitions:
//
//   - a pod's networks annotations parse, every NAD they select exists and parses, and every
//     IP a network element requests lies inside that network's IPAM range;
//   - a NAD created or updated has a DNS-1123 name, a CNI configuration libcni parses with a
//     type for every plugin, a resourceName of extended-resource form, a valid node selector,
//     and an IPAM section plexus-ipam accepts;
//   - a NAD is not deleted while running pods use it, unless it carries
//     plexus.io/allow-delete-in-use: "true".
//
// Refusals are Allowed:false responses whose message names the element at fault and the fix;
// pods that select no secondary network are allowed at once.
package validate
