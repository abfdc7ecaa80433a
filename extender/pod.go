package extender

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/plexus-project/plexus/cni/network"
)

// isExtended tells extended resources (vendor-domain/name) from the built-in ones.
func isExtended(name string) bool {
	domain, _, ok := strings.Cut(name, "/")
	return ok && domain != "kubernetes.io" && !strings.HasSuffix(domain, ".kubernetes.io") && !strings.HasPrefix(name, "requests.")
}

func extendedResources(rl corev1.ResourceList) map[string]int64 {
	var out map[string]int64
	for name, q := range rl {
		if !isExtended(string(name)) {
			continue
		}
		if out == nil {
			out = map[string]int64{}
		}
		out[string(name)] = q.Value()
	}
	return out
}

// podResources is the pod's effective request of each extended resource, as the scheduler and
// the kubelet count it: the app containers (and restartable init containers) together, or the
// largest init container, whichever is more.
func podResources(pod *corev1.Pod) map[string]int64 {
	sum := map[string]int64{}
	for _, ctr := range pod.Spec.Containers {
		for r, n := range containerResources(ctr) {
			sum[r] += n
		}
	}
	initMax := map[string]int64{}
	for _, ctr := range pod.Spec.InitContainers {
		for r, n := range containerResources(ctr) {
			if ctr.RestartPolicy != nil && *ctr.RestartPolicy == corev1.ContainerRestartPolicyAlways {
				sum[r] += n
			} else if n > initMax[r] {
				initMax[r] = n
			}
		}
	}
	for r, n := range initMax {
		if n > sum[r] {
			sum[r] = n
		}
	}
	if len(sum) == 0 {
		return nil
	}
	return sum
}

func containerResources(ctr corev1.Container) map[string]int64 {
	out := extendedResources(ctr.Resources.Requests)
	// Extended resources may be set as limits alone; the requests then default to them.
	for r, n := range extendedResources(ctr.Resources.Limits) {
		if _, ok := out[r]; !ok {
			if out == nil {
				out = map[string]int64{}
			}
			out[r] = n
		}
	}
	return out
}

// selectedNADs is the keys of the NADs a pod's annotations select, a key once per attachment
// (none when they do not parse).
func selectedNADs(pod *corev1.Pod) []string {
	sels, err := podSelections(pod)
	if err != nil {
		return nil
	}
	keys := make([]string, 0, len(sels))
	for _, s := range sels {
		keys = append(keys, s.Key())
	}
	return keys
}

// podSelections is the networks a pod selects: its default network when it replaces it, then
// the k8s.v1.cni.cncf.io/networks annotation.
func podSelections(pod *corev1.Pod) ([]*network.Selection, error) {
	var out []*network.Selection
	if v, ok := pod.Annotations[network.DefaultNetworkAnnotation]; ok {
		def, err := network.ParseDefaultNetwork(v, pod.Namespace)
		if err != nil {
			return nil, fmt.Errorf("annotation %s: %w", network.DefaultNetworkAnnotation, err)
		}
		out = append(out, def)
	}
	sels, err := network.ParseSelections(pod.Annotations[network.NetworksAnnotation], pod.Namespace)
	if err != nil {
		return nil, fmt.Errorf("annotation %s: %w", network.NetworksAnnotation, err)
	}
	return append(out, sels...), nil
}
