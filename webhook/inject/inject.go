package inject

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/go-logr/logr"
	"gomodules.xyz/jsonpatch/v2"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/plexus-project/plexus/cni/network"
	"github.com/plexus-project/plexus/webhook"
	"github.com/plexus-project/plexus/webhook/nadcache"
)

const (
	// ContainerAnnotation on a pod names the container given the networks' device resources
	// (default: the first container).
	ContainerAnnotation = "plexus.io/resource-container"
	// AddedAnnotation records, with HonorResources, what the injector added ("container:resource+n",
	// comma-separated), so that a re-invocation, which cannot tell the user's share of a value
	// from the injector's, does not add again.
	AddedAnnotation = "plexus.io/resources-added"
	// VolumeName is the downward-API volume the injector adds.
	VolumeName = "podnetinfo"
	// MountPath is where that volume is mounted, read-only, in every container.
	MountPath = "/etc/podnetinfo"
)

// Options tune an Injector.
type Options struct {
	// ResourceNameKeys are the NAD annotations naming the device resource, first set wins.
	// Default: [k8s.v1.cni.cncf.io/resourceName].
	ResourceNameKeys []string
	// HonorResources adds the networks' count to a resource the container already sets, instead
	// of leaving it as the user wrote it. Default false.
	HonorResources bool
	// Isolation, when set, refuses networks of other namespaces than the pod's and the shared
	// ones (the validating webhook refuses them too; refusing here keeps the two answers equal).
	Isolation *nadcache.Isolation
	// SchedulerName, when set, is given to pods that select networks and leave the choice of
	// scheduler to the default ("" or default-scheduler): the second kube-scheduler that calls
	// the extender (the chart's scheduler.mode secondary). A pod naming another scheduler keeps it.
	SchedulerName string
}

func (o *Options) setDefaults() {
	if len(o.ResourceNameKeys) == 0 {
		o.ResourceNameKeys = []string{network.ResourceNameAnnotation}
	}
}

// Injector patches pods with what their networks need.
type Injector struct {
	lookup nadcache.Lookup
	opts   Options
}

var _ admission.Handler = (*Injector)(nil)

// New returns an Injector reading NADs from lookup.
func New(lookup nadcache.Lookup, opts Options) *Injector {
	opts.setDefaults()
	return &Injector{lookup: lookup, opts: opts}
}

// Handle answers a pod CREATE admission request: Patched with the injection, Allowed when there
// is nothing to do, Denied (never an HTTP error) when the pod's networks are wrong.
func (in *Injector) Handle(ctx context.Context, req admission.Request) admission.Response {
	if req.Operation != admissionv1.Create || req.Kind.Kind != "Pod" || req.SubResource != "" {
		return webhook.Allowed(webhook.ReasonIgnored)
	}
	pod := &corev1.Pod{}
	if err := json.Unmarshal(req.Object.Raw, pod); err != nil {
		return webhook.Denied(webhook.ReasonBadRequest, fmt.Sprintf("decoding the pod: %v", err))
	}
	if !nadcache.HasNetworks(pod) {
		return webhook.Allowed(webhook.ReasonNoNetworks)
	}
	ops, err := in.Inject(pod, req.Namespace)
	if err != nil {
		logr.FromContextOrDiscard(ctx).V(1).Info("refusing pod", "namespace", req.Namespace, "name", podName(pod), "reason", err)
		return webhook.FromError(err)
	}
	if len(ops) == 0 {
		return webhook.Allowed(webhook.ReasonUnchanged)
	}
	return webhook.Patched(webhook.ReasonInjected, ops)
}

// Inject returns the JSON Patch giving pod (in namespace) what its networks need; none when
// the pod already has it. The error is a *webhook.Refusal naming the fault and the fix.
func (in *Injector) Inject(pod *corev1.Pod, namespace string) ([]jsonpatch.Operation, error) {
	atts, err := nadcache.Resolve(in.lookup, pod, namespace, in.opts.Isolation)
	if err != nil {
		return nil, err
	}
	var ops []jsonpatch.Operation
	resOps, err := in.resources(pod, atts)
	if err != nil {
		return nil, err
	}
	ops = append(ops, resOps...)
	selOps, err := nodeSelector(pod, atts)
	if err != nil {
		return nil, err
	}
	ops = append(ops, selOps...)
	ops = append(ops, volume(pod)...)
	ops = append(ops, in.scheduler(pod)...)
	return ops, nil
}

// scheduler hands the pod to Options.SchedulerName when it left the choice to the default.
func (in *Injector) scheduler(pod *corev1.Pod) []jsonpatch.Operation {
	name := pod.Spec.SchedulerName
	if in.opts.SchedulerName == "" || name == in.opts.SchedulerName || (name != "" && name != corev1.DefaultSchedulerName) {
		return nil
	}
	op := "replace"
	if name == "" {
		op = "add"
	}
	return []jsonpatch.Operation{{Operation: op, Path: "/spec/schedulerName", Value: in.opts.SchedulerName}}
}

// resources counts the device resources per container and patches requests and limits.
func (in *Injector) resources(pod *corev1.Pod, atts []nadcache.Attachment) ([]jsonpatch.Operation, error) {
	if len(pod.Spec.Containers) == 0 {
		return nil, nil
	}
	def := 0
	if name, ok := pod.Annotations[ContainerAnnotation]; ok {
		i, err := containerIndex(pod, name)
		if err != nil {
			return nil, webhook.Refuse(webhook.ReasonBadContainer, "pod annotation %s: %v", ContainerAnnotation, err)
		}
		def = i
	}
	counts := make([]map[corev1.ResourceName]int64, len(pod.Spec.Containers))
	for _, a := range atts {
		rn, err := in.resourceName(a.NAD)
		if err != nil {
			return nil, webhook.Refuse(webhook.ReasonInvalidNetwork, "%s: %v", nadcache.Where(a.Index, a.Selection), err)
		}
		if rn == "" {
			continue
		}
		c := def
		if a.Selection.Container != "" {
			if c, err = containerIndex(pod, a.Selection.Container); err != nil {
				return nil, webhook.Refuse(webhook.ReasonBadContainer, "%s: \"container\": %v", nadcache.Where(a.Index, a.Selection), err)
			}
		}
		if counts[c] == nil {
			counts[c] = map[corev1.ResourceName]int64{}
		}
		counts[c][corev1.ResourceName(rn)]++
	}
	if in.opts.HonorResources && addedBefore(pod, counts) {
		return nil, nil // added on an earlier invocation
	}
	var (
		ops   []jsonpatch.Operation
		added []string
	)
	for i, want := range counts {
		if len(want) == 0 {
			continue
		}
		c := &pod.Spec.Containers[i]
		reqs, lims := map[string]string{}, map[string]string{}
		for _, rn := range sortedNames(want) {
			n := want[rn]
			req, hasReq := c.Resources.Requests[rn]
			lim, hasLim := c.Resources.Limits[rn]
			switch {
			case !hasReq && !hasLim:
				q := resource.NewQuantity(n, resource.DecimalSI).String()
				reqs[string(rn)], lims[string(rn)] = q, q
				if in.opts.HonorResources {
					added = append(added, fmt.Sprintf("%s:%s+%d", c.Name, rn, n))
				}
			case in.opts.HonorResources:
				if !hasReq {
					req = lim
				}
				if !hasLim {
					lim = req
				}
				req.Add(*resource.NewQuantity(n, resource.DecimalSI))
				lim.Add(*resource.NewQuantity(n, resource.DecimalSI))
				reqs[string(rn)], lims[string(rn)] = req.String(), lim.String()
				added = append(added, fmt.Sprintf("%s:%s+%d", c.Name, rn, n))
			}
		}
		ops = append(ops, resourceOps(i, c, reqs, lims)...)
	}
	if len(added) > 0 {
		ops = append(ops, jsonpatch.Operation{
			Operation: "add", Path: "/metadata/annotations/" + Escape(AddedAnnotation), Value: strings.Join(added, ","),
		})
	}
	return ops, nil
}

// addedBefore reports whether AddedAnnotation says exactly what this injector adds for counts
// and every container holds at least that much: then an earlier invocation added it, and adding
// again would count the devices twice. A hand-written or stale annotation fails the check and
// is replaced, so it can never leave a container with fewer devices than its networks need.
func addedBefore(pod *corev1.Pod, counts []map[corev1.ResourceName]int64) bool {
	rec, ok := pod.Annotations[AddedAnnotation]
	if !ok {
		return false
	}
	var want []string
	for i, c := range counts {
		name := pod.Spec.Containers[i].Name
		res := pod.Spec.Containers[i].Resources
		for _, rn := range sortedNames(c) {
			n := resource.NewQuantity(c[rn], resource.DecimalSI)
			req, hasReq := res.Requests[rn]
			lim, hasLim := res.Limits[rn]
			if !hasReq || !hasLim || req.Cmp(*n) < 0 || lim.Cmp(*n) < 0 {
				return false
			}
			want = append(want, fmt.Sprintf("%s:%s+%d", name, rn, c[rn]))
		}
	}
	return rec == strings.Join(want, ",")
}

// resourceName is the device resource a NAD asks for, from the first configured annotation set.
func (in *Injector) resourceName(nad *nadcache.NAD) (string, error) {
	for _, key := range in.opts.ResourceNameKeys {
		if key == network.ResourceNameAnnotation {
			if nad.Network.ResourceName != "" {
				return nad.Network.ResourceName, nil
			}
			continue
		}
		if rn := nad.Annotations[key]; rn != "" {
			if msgs := network.ValidateResourceName(rn); len(msgs) > 0 {
				return "", fmt.Errorf("NetworkAttachmentDefinition %s annotation %s=%q: %s; fix the NAD", nad.Key(), key, rn, strings.Join(msgs, "; "))
			}
			return rn, nil
		}
	}
	return "", nil
}

func resourceOps(i int, c *corev1.Container, reqs, lims map[string]string) []jsonpatch.Operation {
	if len(reqs) == 0 && len(lims) == 0 {
		return nil
	}
	base := fmt.Sprintf("/spec/containers/%d/resources", i)
	r := c.Resources
	if r.Requests == nil && r.Limits == nil && r.Claims == nil {
		return []jsonpatch.Operation{{Operation: "add", Path: base, Value: map[string]any{"requests": reqs, "limits": lims}}}
	}
	var ops []jsonpatch.Operation
	for _, m := range []struct {
		field  string
		exists bool
		values map[string]string
	}{{"requests", r.Requests != nil, reqs}, {"limits", r.Limits != nil, lims}} {
		if !m.exists {
			ops = append(ops, jsonpatch.Operation{Operation: "add", Path: base + "/" + m.field, Value: m.values})
			continue
		}
		for _, k := range sortedKeys(m.values) {
			ops = append(ops, jsonpatch.Operation{Operation: "add", Path: base + "/" + m.field + "/" + Escape(k), Value: m.values[k]})
		}
	}
	return ops
}

// containerIndex finds a (non-init) container by name.
func containerIndex(pod *corev1.Pod, name string) (int, error) {
	for i, c := range pod.Spec.Containers {
		if c.Name == name {
			return i, nil
		}
	}
	for _, c := range pod.Spec.InitContainers {
		if c.Name == name {
			return 0, fmt.Errorf("%q is an init container, and init containers are never given network devices; name one of the containers (%s)", name, containerNames(pod))
		}
	}
	return 0, fmt.Errorf("the pod has no container %q; name one of its containers (%s)", name, containerNames(pod))
}

func containerNames(pod *corev1.Pod) string {
	names := make([]string, len(pod.Spec.Containers))
	for i, c := range pod.Spec.Containers {
		names[i] = c.Name
	}
	return strings.Join(names, ", ")
}

func podName(pod *corev1.Pod) string {
	if pod.Name != "" {
		return pod.Name
	}
	return pod.GenerateName + "*"
}

func sortedNames(m map[corev1.ResourceName]int64) []corev1.ResourceName {
	out := make([]corev1.ResourceName, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
