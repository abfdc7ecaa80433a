package attach

import (
	"fmt"
	"sort"
	"sync"

	corev1 "k8s.io/api/core/v1"
)

// deviceTurn serialises the ADDs that take devices, from an ADD's first device until its cache
// entry records the devices it took (take is idempotent; done releases if held).
type deviceTurn struct {
	mu   *sync.Mutex
	held bool
}

func (t *deviceTurn) take() {
	if !t.held {
		t.mu.Lock()
		t.held = true
	}
}

func (t *deviceTurn) done() {
	if t.held {
		t.held = false
		t.mu.Unlock()
	}
}

// devicesFromFiles is the fallback when kubelet's PodResources API fails (perr): the devices
// of resource that have a device-info file (the device plugin writes one when kubelet allocates
// the device, and removes it when the device is free again) and that no container of the node
// holds in the result cache. The files do not name their pod, so they are used only when they
// cannot be another pod's: exactly as many unattached devices as the pod requested. With more
// (other pods with devices starting at once) the call fails with a try-again error naming the
// cause, never guessing; the runtime retries until one of them is unambiguous or PodResources
// answers again. The caller holds its deviceTurn, so no other ADD takes devices meanwhile.
func (a *Attacher) devicesFromFiles(pod *corev1.Pod, resource string, perr error) ([]string, error) {
	if a.host.DeviceInfos == nil {
		return nil, perr
	}
	want := requested(pod, resource)
	files, err := a.host.DeviceInfos.List(resource)
	if err != nil {
		return nil, fmt.Errorf("%w; the device-info files as a fallback: %w", perr, err)
	}
	held, err := a.heldDevices(resource)
	if err != nil {
		return nil, fmt.Errorf("%w; the device-info files as a fallback: %w", perr, err)
	}
	var free []string
	for _, id := range files {
		if !held[id] {
			free = append(free, id)
		}
	}
	sort.Strings(free)
	switch {
	case want == 0:
		return nil, nil // the pod requested none: the caller says so
	case len(free) == want:
		return free, nil
	case len(free) < want:
		return nil, fmt.Errorf("%w; the device-info files show %d %s device(s) allocated and not attached to another container of node %s, fewer than the %d pod %s/%s requested (is the device plugin writing device-info files to --devinfo-dir?)",
			perr, len(free), resource, a.opts.NodeName, want, pod.Namespace, pod.Name)
	default:
		return nil, fmt.Errorf("%w; the device-info files show %d %s devices allocated and not attached on node %s (%v) for the %d pod %s/%s requested: "+
			"the files do not name their pod, so plexus-daemon retries until only this pod's are left or the PodResources API answers (mount kubelet's pod-resources directory into plexus-daemon)",
			perr, len(free), resource, a.opts.NodeName, free, want, pod.Namespace, pod.Name)
	}
}

// heldDevices are the devices of resource held by the containers of the result cache.
func (a *Attacher) heldDevices(resource string) (map[string]bool, error) {
	ids, err := a.host.Cache.List()
	if err != nil {
		return nil, err
	}
	held := map[string]bool{}
	for _, id := range ids {
		e, err := a.host.Cache.Get(id)
		if err != nil {
			return nil, err
		}
		if e == nil {
			continue // deleted since the listing
		}
		for _, att := range e.Attachments {
			if att.Resource == resource && att.DeviceID != "" {
				held[att.DeviceID] = true
			}
		}
	}
	return held, nil
}

// requested is how many devices of resource the pod's containers asked for (their limits, as
// extended resources are asked for; the requests when no limit is set). Init containers are
// not counted: kubelet gives their devices to the containers after them.
func requested(pod *corev1.Pod, resource string) int {
	name := corev1.ResourceName(resource)
	n := int64(0)
	for _, c := range pod.Spec.Containers {
		q, ok := c.Resources.Limits[name]
		if !ok {
			q, ok = c.Resources.Requests[name]
		}
		if ok {
			n += q.Value()
		}
	}
	return int(n)
}
