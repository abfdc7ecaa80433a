package deviceplugin

import (
	"sort"
	"sync"
	"time"
)

// allocations remembers which devices were allocated and when.
type allocations struct {
	mu    sync.Mutex
	m     map[string]map[string]time.Time // resource -> device -> allocated at
	owner map[string]string               // device -> resource
	dirty bool                            // changed since takeDirty
}

func (a *allocations) takeDirty() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	d := a.dirty
	a.dirty = false
	return d
}

// allocated is one allocation: the device, its resource and when it was made (zero: adopted).
type allocated struct {
	resource, id string
	at           time.Time
}

func (a *allocations) add(resource string, ids []string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.m[resource] == nil {
		a.m[resource] = map[string]time.Time{}
	}
	now := time.Now()
	a.dirty = a.dirty || len(ids) > 0
	for _, id := range ids {
		a.m[resource][id] = now
		a.owner[id] = resource
	}
}

// adopt records id as allocated long ago if it is not known yet.
func (a *allocations) adopt(resource, id string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, ok := a.m[resource][id]; ok {
		return
	}
	if a.m[resource] == nil {
		a.m[resource] = map[string]time.Time{}
	}
	a.m[resource][id] = time.Time{}
	a.owner[id] = resource
}

func (a *allocations) has(id string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	_, ok := a.owner[id]
	return ok
}

// release forgets allocation d and runs remove (deleting its device-info file) if d is still
// the device's current allocation, atomically with respect to add: an Allocate of the device
// since d was listed (recorded before its file is written) keeps both the record and the file.
// A failing remove keeps the record.
func (a *allocations) release(d allocated, remove func() error) (bool, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	at, ok := a.m[d.resource][d.id]
	if !ok || !at.Equal(d.at) {
		return false, nil
	}
	if err := remove(); err != nil {
		return false, err
	}
	delete(a.m[d.resource], d.id)
	if a.owner[d.id] == d.resource {
		delete(a.owner, d.id)
	}
	a.dirty = true
	return true, nil
}

// expired lists allocations made before t.
func (a *allocations) expired(t time.Time) []allocated {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []allocated
	for res, ids := range a.m {
		for id, at := range ids {
			if at.Before(t) {
				out = append(out, allocated{res, id, at})
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].id < out[j].id })
	return out
}
