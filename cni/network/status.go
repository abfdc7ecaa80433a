package network

import (
	"context"
	"encoding/json"
	"fmt"

	cnitypes "github.com/containernetworking/cni/pkg/types"
	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	nadutils "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/utils"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8stypes "k8s.io/apimachinery/pkg/types"
)

// Status is one entry of a pod's k8s.v1.cni.cncf.io/network-status annotation.
type Status = nadv1.NetworkStatus

// ReadStatus returns the network-status a pod reports; none when it has no annotation.
func ReadStatus(pod *corev1.Pod) ([]Status, error) {
	if _, ok := pod.Annotations[NetworkStatusAnnotation]; !ok {
		return nil, nil
	}
	st, err := nadutils.GetNetworkStatus(pod)
	if err != nil {
		return nil, fmt.Errorf("pod %s/%s: reading %s: %w", pod.Namespace, pod.Name, NetworkStatusAnnotation, err)
	}
	return st, nil
}

// StatusFromResult turns the CNI result of one attachment into its network-status entries
// (one per interface inside the pod), as Multus does. network is "namespace/name" of the NAD,
// or the default network's name; dev is the device-info of an SR-IOV VF, or nil.
func StatusFromResult(result cnitypes.Result, network string, isDefault bool, dev *nadv1.DeviceInfo) ([]Status, error) {
	ptrs, err := nadutils.CreateNetworkStatuses(result, network, isDefault, dev)
	if err != nil {
		return nil, fmt.Errorf("network %s: building its network-status: %w", network, err)
	}
	out := make([]Status, 0, len(ptrs))
	for _, p := range ptrs {
		out = append(out, *p)
	}
	return out, nil
}

// PodPatcher is the one API call writing the network-status needs (client-go's PodInterface
// has it).
type PodPatcher interface {
	Patch(ctx context.Context, name string, pt k8stypes.PatchType, data []byte, opts metav1.PatchOptions, subresources ...string) (*corev1.Pod, error)
}

// WriteStatus sets the pod's network-status annotation with a merge patch of the pods/status
// subresource (the one permission a node daemon needs, as kubelet and Multus write it), so it
// never conflicts with other writers of the pod and needs no read first.
func WriteStatus(ctx context.Context, pods PodPatcher, podName string, statuses []Status) error {
	if statuses == nil {
		statuses = []Status{}
	}
	value, err := json.MarshalIndent(statuses, "", "    ")
	if err != nil {
		return err
	}
	patch, err := json.Marshal(map[string]any{
		"metadata": map[string]any{"annotations": map[string]string{NetworkStatusAnnotation: string(value)}},
	})
	if err != nil {
		return err
	}
	if _, err := pods.Patch(ctx, podName, k8stypes.MergePatchType, patch, metav1.PatchOptions{}, "status"); err != nil {
		return fmt.Errorf("pod %s: writing %s: %w", podName, NetworkStatusAnnotation, err)
	}
	return nil
}
