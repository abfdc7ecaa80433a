package extender

// Network presence is judged when a NAD or a Node changes, not in every call: each NAD with a
// node selector holds a slot, and each node a bit per slot telling whether the selector
// matches its labels. A filter call over 5,000 nodes then tests bits instead of matching label
// maps, which was a third of the call.

// bits is a set of slots.
type bits []uint64

func (b bits) has(slot int) bool {
	w := slot / 64
	return w < len(b) && b[w]&(1<<(slot%64)) != 0
}

func (b *bits) set(slot int, on bool) {
	w := slot / 64
	for len(*b) <= w {
		*b = append(*b, 0)
	}
	if on {
		(*b)[w] |= 1 << (slot % 64)
	} else {
		(*b)[w] &^= 1 << (slot % 64)
	}
}

// takeSlot gives n, a NAD with a node selector, a slot and sets its bit on every node. The
// caller holds c.mu.
func (c *Cluster) takeSlot(n *nadState) {
	if n.selector == nil {
		n.slot = -1
		return
	}
	if k := len(c.freeSlots); k > 0 {
		n.slot, c.freeSlots = c.freeSlots[k-1], c.freeSlots[:k-1]
		c.slots[n.slot] = n
	} else {
		n.slot = len(c.slots)
		c.slots = append(c.slots, n)
	}
	for _, ns := range c.nodes {
		ns.present.set(n.slot, n.selector.Matches(ns.labels))
	}
}

// releaseSlot frees the slot of n. The caller holds c.mu.
func (c *Cluster) releaseSlot(n *nadState) {
	if n.slot < 0 {
		return
	}
	c.slots[n.slot] = nil
	c.freeSlots = append(c.freeSlots, n.slot)
	n.slot = -1
}

// judgePresence sets the bits of ns for every slot held. The caller holds c.mu.
func (c *Cluster) judgePresence(ns *nodeState) {
	for slot, n := range c.slots {
		if n != nil {
			ns.present.set(slot, n.selector.Matches(ns.labels))
		}
	}
}

// presentOn tells whether network n is on node ns.
func (n *nadState) presentOn(ns *nodeState) bool {
	return n.selector == nil || ns.present.has(n.slot)
}
