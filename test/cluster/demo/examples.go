package demo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/dynamic"

	"github.com/plexus-project/plexus/cni/network"
	"github.com/plexus-project/plexus/test/cluster"
)

// example is what applying docs/examples created.
type example struct {
	nads []*nadv1.NetworkAttachmentDefinition
	pods []*corev1.Pod
	// filled names the pods whose SR-IOV resources the demo wrote itself, standing in for
	// plexus-webhook.
	filled []string
}

// readExamples decodes every object of the YAML files in dir.
func readExamples(dir string) ([]*unstructured.Unstructured, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		return nil, err
	}
	sort.Strings(files)
	var objs []*unstructured.Unstructured
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		d := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(b), 4096)
		for {
			var o map[string]any
			if err := d.Decode(&o); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				return nil, fmt.Errorf("reading %s: %w", f, err)
			}
			if o != nil {
				objs = append(objs, &unstructured.Unstructured{Object: o})
			}
		}
	}
	return objs, nil
}

// applyExamples creates the NADs then the pods of dir. Without plexus-webhook the demo adds to
// each pod the SR-IOV resources the webhook would inject (one per selected network whose NAD
// has a resourceName), and says so.
func applyExamples(ctx context.Context, c *cluster.Cluster, dir string, webhook bool) (*example, error) {
	objs, err := readExamples(dir)
	if err != nil {
		return nil, err
	}
	dc, err := dynamic.NewForConfig(c.Config)
	if err != nil {
		return nil, err
	}
	ex := &example{}
	resources := map[string]string{} // namespace/name of a NAD -> its resourceName
	for _, o := range objs {
		if o.GetKind() != "NetworkAttachmentDefinition" {
			continue
		}
		if _, err := dc.Resource(nadGVR).Namespace(o.GetNamespace()).Create(ctx, o, metav1.CreateOptions{}); err != nil {
			return nil, fmt.Errorf("creating NAD %s: %w", o.GetName(), err)
		}
		var nad nadv1.NetworkAttachmentDefinition
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, &nad); err != nil {
			return nil, err
		}
		ex.nads = append(ex.nads, &nad)
		if r := nad.Annotations[network.ResourceNameAnnotation]; r != "" {
			resources[nad.Namespace+"/"+nad.Name] = r
		}
	}
	for _, o := range objs {
		if o.GetKind() != "Pod" {
			continue
		}
		var pod corev1.Pod
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, &pod); err != nil {
			return nil, err
		}
		if pod.Namespace == "" {
			pod.Namespace = "default"
		}
		if !webhook {
			sels, err := network.ParseSelections(pod.Annotations[network.NetworksAnnotation], pod.Namespace)
			if err != nil {
				return nil, fmt.Errorf("pod %s: %w", pod.Name, err)
			}
			count := map[string]int64{}
			for _, s := range sels {
				if r := resources[s.Key()]; r != "" {
					count[r]++
				}
			}
			if len(count) > 0 {
				ctr := &pod.Spec.Containers[0]
				if ctr.Resources.Limits == nil {
					ctr.Resources.Limits = corev1.ResourceList{}
				}
				if ctr.Resources.Requests == nil {
					ctr.Resources.Requests = corev1.ResourceList{}
				}
				for r, n := range count {
					ctr.Resources.Limits[corev1.ResourceName(r)] = *resource.NewQuantity(n, resource.DecimalSI)
					ctr.Resources.Requests[corev1.ResourceName(r)] = *resource.NewQuantity(n, resource.DecimalSI)
				}
				ex.filled = append(ex.filled, pod.Name)
			}
		}
		// The webhook learns of the NADs just created through a watch: a pod created in the
		// same instant may be refused for a NAD that "does not exist" yet.
		var created *corev1.Pod
		err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 15*time.Second, true, func(ctx context.Context) (bool, error) {
			var err error
			created, err = c.Clientset.CoreV1().Pods(pod.Namespace).Create(ctx, &pod, metav1.CreateOptions{})
			if err != nil && strings.Contains(err.Error(), "does not exist") {
				return false, nil
			}
			return true, err
		})
		if err != nil {
			return nil, fmt.Errorf("creating pod %s: %w", pod.Name, err)
		}
		ex.pods = append(ex.pods, created)
	}
	return ex, nil
}

// waitPods waits until every example pod is Running and refreshes them.
func (ex *example) waitPods(ctx context.Context, c *cluster.Cluster) error {
	var last string
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 90*time.Second, true, func(ctx context.Context) (bool, error) {
		for i, p := range ex.pods {
			got, err := c.Clientset.CoreV1().Pods(p.Namespace).Get(ctx, p.Name, metav1.GetOptions{})
			if err != nil {
				return false, nil
			}
			ex.pods[i] = got
			if got.Status.Phase != corev1.PodRunning {
				last = fmt.Sprintf("pod %s is %s %s", got.Name, got.Status.Phase, podReason(got))
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("%s: %w", last, err)
	}
	return nil
}

func podReason(p *corev1.Pod) string {
	for _, cond := range p.Status.Conditions {
		if cond.Status != corev1.ConditionTrue && cond.Message != "" {
			return "(" + cond.Message + ")"
		}
	}
	for _, s := range p.Status.ContainerStatuses {
		if s.State.Waiting != nil {
			return "(" + s.State.Waiting.Reason + ": " + s.State.Waiting.Message + ")"
		}
	}
	return ""
}

// resources maps each example NAD (namespace/name) to its resourceName, when it has one.
func (ex *example) resources() map[string]string {
	m := map[string]string{}
	for _, nad := range ex.nads {
		if r := nad.Annotations[network.ResourceNameAnnotation]; r != "" {
			m[nad.Namespace+"/"+nad.Name] = r
		}
	}
	return m
}

// ApplyExamples creates the NADs then the pods of the YAML files in dir (docs/examples) in c,
// as the demo does (without plexus-webhook, it adds the SR-IOV resources the webhook would
// inject), and returns the pods once they all run, for the e2e tests.
func ApplyExamples(ctx context.Context, c *cluster.Cluster, dir string, webhook bool) ([]*corev1.Pod, error) {
	ex, err := applyExamples(ctx, c, dir, webhook)
	if err != nil {
		return nil, err
	}
	if err := ex.waitPods(ctx, c); err != nil {
		return ex.pods, fmt.Errorf("the example pods: %w", err)
	}
	return ex.pods, nil
}
