package inject

import (
	"fmt"
	"strings"

	"gomodules.xyz/jsonpatch/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/plexus-project/plexus/webhook"
	"github.com/plexus-project/plexus/webhook/nadcache"
)

// Escape makes a map key one JSON Pointer reference token (RFC 6901): "~" becomes "~0" and
// "/" becomes "~1", in that order.
func Escape(key string) string {
	return strings.ReplaceAll(strings.ReplaceAll(key, "~", "~0"), "/", "~1")
}

// nodeSelector merges the NADs' node selectors into the pod's; a key the pod or another
// network sets to another value is refused.
func nodeSelector(pod *corev1.Pod, atts []nadcache.Attachment) ([]jsonpatch.Operation, error) {
	add := map[string]string{}
	from := map[string]string{}
	for _, a := range atts {
		where := nadcache.Where(a.Index, a.Selection)
		for _, k := range sortedKeys(a.NAD.Network.NodeSelector) {
			v := a.NAD.Network.NodeSelector[k]
			if have, ok := pod.Spec.NodeSelector[k]; ok {
				if have != v {
					return nil, webhook.Refuse(webhook.ReasonNodeSelectorConflict,
						"%s: NetworkAttachmentDefinition %s exists only on nodes with %s=%s, but the pod's nodeSelector asks for %s=%s; change the pod's nodeSelector or select another network",
						where, a.NAD.Key(), k, v, k, have)
				}
				continue
			}
			if have, ok := add[k]; ok && have != v {
				return nil, webhook.Refuse(webhook.ReasonNodeSelectorConflict,
					"%s: NetworkAttachmentDefinition %s exists only on nodes with %s=%s, but %s asks for %s=%s; no node can have both: select networks that share nodes",
					where, a.NAD.Key(), k, v, from[k], k, have)
			}
			add[k], from[k] = v, where
		}
	}
	if len(add) == 0 {
		return nil, nil
	}
	if pod.Spec.NodeSelector == nil {
		return []jsonpatch.Operation{{Operation: "add", Path: "/spec/nodeSelector", Value: add}}, nil
	}
	var ops []jsonpatch.Operation
	for _, k := range sortedKeys(add) {
		ops = append(ops, jsonpatch.Operation{Operation: "add", Path: "/spec/nodeSelector/" + Escape(k), Value: add[k]})
	}
	return ops, nil
}

// volume adds the podnetinfo downward-API volume and mounts it in every container, unless the
// pod already has a volume of that name.
func volume(pod *corev1.Pod) []jsonpatch.Operation {
	for _, v := range pod.Spec.Volumes {
		if v.Name == VolumeName {
			return nil
		}
	}
	vol := corev1.Volume{Name: VolumeName, VolumeSource: corev1.VolumeSource{DownwardAPI: &corev1.DownwardAPIVolumeSource{
		Items: downwardItems(pod),
	}}}
	var ops []jsonpatch.Operation
	if pod.Spec.Volumes == nil {
		ops = append(ops, jsonpatch.Operation{Operation: "add", Path: "/spec/volumes", Value: []corev1.Volume{vol}})
	} else {
		ops = append(ops, jsonpatch.Operation{Operation: "add", Path: "/spec/volumes/-", Value: vol})
	}
	mount := corev1.VolumeMount{Name: VolumeName, MountPath: MountPath, ReadOnly: true}
	for i, c := range pod.Spec.Containers {
		if hasMountAt(c, MountPath) {
			continue
		}
		if c.VolumeMounts == nil {
			ops = append(ops, jsonpatch.Operation{Operation: "add", Path: fmt.Sprintf("/spec/containers/%d/volumeMounts", i), Value: []corev1.VolumeMount{mount}})
		} else {
			ops = append(ops, jsonpatch.Operation{Operation: "add", Path: fmt.Sprintf("/spec/containers/%d/volumeMounts/-", i), Value: mount})
		}
	}
	return ops
}

func hasMountAt(c corev1.Container, path string) bool {
	for _, m := range c.VolumeMounts {
		if m.MountPath == path || m.Name == VolumeName {
			return true
		}
	}
	return false
}

// downwardItems are the pod's labels and annotations, and, per container that asks for
// hugepages, its request and limit in MiB as network-resources-injector names them:
// hugepages_1G_request_<container>, hugepages_2M_limit_<container>, ...
func downwardItems(pod *corev1.Pod) []corev1.DownwardAPIVolumeFile {
	items := []corev1.DownwardAPIVolumeFile{
		{Path: "labels", FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.labels"}},
		{Path: "annotations", FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.annotations"}},
	}
	for _, c := range pod.Spec.Containers {
		for _, kind := range []struct {
			name string
			list corev1.ResourceList
		}{{"request", c.Resources.Requests}, {"limit", c.Resources.Limits}} {
			var names []string
			for rn := range kind.list {
				if strings.HasPrefix(string(rn), corev1.ResourceHugePagesPrefix) {
					names = append(names, string(rn))
				}
			}
			for _, rn := range sortedStrings(names) {
				size := strings.TrimSuffix(strings.TrimPrefix(rn, corev1.ResourceHugePagesPrefix), "i")
				items = append(items, corev1.DownwardAPIVolumeFile{
					Path: fmt.Sprintf("hugepages_%s_%s_%s", size, kind.name, c.Name),
					ResourceFieldRef: &corev1.ResourceFieldSelector{
						ContainerName: c.Name, Resource: kind.name + "s." + rn, Divisor: resource.MustParse("1Mi"),
					},
				})
			}
		}
	}
	return items
}

func sortedStrings(s []string) []string {
	m := make(map[string]struct{}, len(s))
	for _, x := range s {
		m[x] = struct{}{}
	}
	return sortedKeys(m)
}
