package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	extenderv1 "k8s.io/kube-scheduler/extender/v1"
)

// wireArgs is extenderv1.ExtenderArgs as it arrives, with the node names left raw: decoding
// 5,000 names through reflection cost more than the decision itself. The pod is read into
// wirePod, the fields the decisions use: the scheduler sends it whole, managed fields and
// status included, on every call.
type wireArgs struct {
	Pod       *wirePod
	Nodes     *corev1.NodeList
	NodeNames *nodeNames
}

// nodeNames reads a JSON array of node names straight from the request (parseNames), with no
// raw copy in between.
type nodeNames struct{ names []string }

func (n *nodeNames) UnmarshalJSON(b []byte) error {
	if bytes.Equal(bytes.TrimSpace(b), []byte("null")) {
		return nil
	}
	names, err := parseNames(b)
	if err != nil {
		return fmt.Errorf("NodeNames: %w", err)
	}
	n.names = names
	return nil
}

// wirePod is what the extender reads of a pod (extender.Cluster's Filter and Prioritize): its
// identity, its network annotations and its containers' resources.
type wirePod struct {
	Metadata struct {
		Namespace   string            `json:"namespace"`
		Name        string            `json:"name"`
		UID         types.UID         `json:"uid"`
		Annotations map[string]string `json:"annotations"`
	} `json:"metadata"`
	Spec struct {
		Containers     []wireContainer `json:"containers"`
		InitContainers []wireContainer `json:"initContainers"`
	} `json:"spec"`
}

type wireContainer struct {
	Name          string                         `json:"name"`
	Resources     corev1.ResourceRequirements    `json:"resources"`
	RestartPolicy *corev1.ContainerRestartPolicy `json:"restartPolicy"`
}

func (w *wirePod) pod() *corev1.Pod {
	if w == nil {
		return nil
	}
	p := &corev1.Pod{}
	p.Namespace, p.Name, p.UID, p.Annotations = w.Metadata.Namespace, w.Metadata.Name, w.Metadata.UID, w.Metadata.Annotations
	p.Spec.Containers = containers(w.Spec.Containers)
	p.Spec.InitContainers = containers(w.Spec.InitContainers)
	return p
}

func containers(in []wireContainer) []corev1.Container {
	if in == nil {
		return nil
	}
	out := make([]corev1.Container, len(in))
	for i, c := range in {
		out[i] = corev1.Container{Name: c.Name, Resources: c.Resources, RestartPolicy: c.RestartPolicy}
	}
	return out
}

func (w *wireArgs) args() *extenderv1.ExtenderArgs {
	args := &extenderv1.ExtenderArgs{Pod: w.Pod.pod(), Nodes: w.Nodes}
	if w.NodeNames != nil && w.NodeNames.names != nil {
		args.NodeNames = &w.NodeNames.names
	}
	return args
}

// parseNames reads a JSON array of strings. Node names never hold escapes or non-ASCII; an
// array that does is handed to encoding/json. The names share one string: one allocation for
// 5,000 names instead of 5,000.
func parseNames(raw []byte) ([]string, error) {
	b := bytes.TrimSpace(raw)
	if len(b) < 2 || b[0] != '[' || b[len(b)-1] != ']' || bytes.IndexByte(b, '\\') >= 0 {
		return slowNames(raw)
	}
	names := make([]string, 0, bytes.Count(b, []byte{','})+1)
	all := string(b[:len(b)-1])
	i := skipSpace(all, 1)
	for i < len(all) {
		if all[i] != '"' {
			return slowNames(raw)
		}
		end := strings.IndexByte(all[i+1:], '"')
		if end < 0 {
			return slowNames(raw)
		}
		names = append(names, all[i+1:i+1+end])
		i = skipSpace(all, i+end+2)
		if i == len(all) {
			break
		}
		if all[i] != ',' {
			return slowNames(raw)
		}
		if i = skipSpace(all, i+1); i == len(all) {
			return slowNames(raw) // a trailing comma: let encoding/json say what is wrong
		}
	}
	return names, nil
}

// skipSpace is the index of the first byte of s from i on that is not JSON white space.
func skipSpace(s string, i int) int {
	for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r') {
		i++
	}
	return i
}

func slowNames(raw []byte) ([]string, error) {
	var names []string
	if err := json.Unmarshal(raw, &names); err != nil {
		return nil, err
	}
	return names, nil
}

// filterRest is extenderv1.ExtenderFilterResult without the node names, which
// encodeFilterResult writes by hand.
type filterRest struct {
	Nodes                      *corev1.NodeList          `json:"Nodes,omitempty"`
	FailedNodes                extenderv1.FailedNodesMap `json:"FailedNodes"`
	FailedAndUnresolvableNodes extenderv1.FailedNodesMap `json:"FailedAndUnresolvableNodes"`
	Error                      string                    `json:"Error"`
}

// appendFilterResult appends r as JSON to b, the node names written by hand: encoding/json's
// reflection, or its check of a raw array, was a sixth of a call over 5,000 nodes.
func appendFilterResult(b []byte, r *extenderv1.ExtenderFilterResult) ([]byte, error) {
	rest, err := json.Marshal(filterRest{Nodes: r.Nodes, FailedNodes: r.FailedNodes, FailedAndUnresolvableNodes: r.FailedAndUnresolvableNodes, Error: r.Error})
	if err != nil || r.NodeNames == nil {
		return append(b, rest...), err
	}
	start := len(b)
	b = append(b, `{"NodeNames":`...)
	b, ok := appendNames(b, *r.NodeNames)
	if !ok {
		all, err := json.Marshal(r)
		return append(b[:start], all...), err
	}
	b = append(b, ',')
	return append(b, rest[1:]...), nil
}

// appendNames appends names to b as a JSON array; ok is false when a name needs escaping.
func appendNames(b []byte, names []string) ([]byte, bool) {
	b = append(b, '[')
	for i, s := range names {
		if !plain(s) {
			return b, false
		}
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '"')
		b = append(b, s...)
		b = append(b, '"')
	}
	return append(b, ']'), true
}

// relative is list with its lowest score taken from every node and the nodes left at 0
// dropped. kube-scheduler adds an extender's score to each node it names and nothing to a node
// it does not, so the ranking is the same; the answer shrinks from every node the pod fits to
// the nodes it prefers (none when all tie, as on a uniform cluster), which the scheduler
// decodes on its one scheduling thread.
func relative(list extenderv1.HostPriorityList) extenderv1.HostPriorityList {
	if len(list) == 0 {
		return list
	}
	low := list[0].Score
	for _, hp := range list[1:] {
		low = min(low, hp.Score)
	}
	out := make(extenderv1.HostPriorityList, 0, len(list))
	for _, hp := range list {
		if hp.Score > low {
			out = append(out, extenderv1.HostPriority{Host: hp.Host, Score: hp.Score - low})
		}
	}
	return out
}

// writePriorities writes list as JSON by hand; ok is false when a host name needs escaping.
func writePriorities(list extenderv1.HostPriorityList) (json.RawMessage, bool) {
	b := make([]byte, 0, 2+len(list)*40)
	b = append(b, '[')
	for i, hp := range list {
		if !plain(hp.Host) {
			return nil, false
		}
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"Host":"`...)
		b = append(b, hp.Host...)
		b = append(b, `","Score":`...)
		b = strconv.AppendInt(b, hp.Score, 10)
		b = append(b, '}')
	}
	return append(b, ']'), true
}

// plain is true when s needs no escaping in JSON (node names never do).
func plain(s string) bool {
	for j := 0; j < len(s); j++ {
		if c := s[j]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			return false
		}
	}
	return true
}
