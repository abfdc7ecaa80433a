// Package allocator hands out addresses from IPPools without any cluster-wide lock.
//
// The address space of a network is cut into aligned blocks (IPv4 /27, IPv6 /122). A node claims
// a block by creating its IPBlock object: creation either succeeds or fails with AlreadyExists,
// so two nodes can never claim the same block. A node then allocates inside its own blocks under a
// node-local file lock, so one writer per node updates a block, and every update carries the
// resourceVersion it read (optimistic concurrency): a write based on stale data is refused by the
// API server and retried, never applied. When no block is left to claim, a node borrows an address
// from another node's block through the same conditional update. Blocks that become empty are
// deleted (conditionally, on the resourceVersion that showed them empty).
//
// Because blocks are aligned in the absolute address space and named by network and address,
// two overlapping ranges of the same network share the IPBlock of every address they have in
// common: overlapping ranges never hand out an address twice, with no extra reservation object.
//
// The Store interface is all the allocator needs from the API server; Usage computes a pool's
// size, used and free counts from its blocks (for the reconciler and the scheduler extender).
package allocator
