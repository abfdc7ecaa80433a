package attach

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	podresourcesapi "k8s.io/kubelet/pkg/apis/podresources/v1"
)

// DefaultPodResourcesSocket is kubelet's PodResources API socket.
const DefaultPodResourcesSocket = "/var/lib/kubelet/pod-resources/kubelet.sock"

// PodResources is Devices over kubelet's PodResources API.
type PodResources struct {
	// Socket is kubelet's pod-resources socket.
	Socket string
	// Timeout bounds one call (default 10s).
	Timeout time.Duration
}

var _ Devices = (*PodResources)(nil)

// PodDevices lists the pod's devices of resource, container by container, in kubelet's order.
func (p *PodResources) PodDevices(ctx context.Context, namespace, name, resource string) ([]string, error) {
	timeout := p.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	conn, err := grpc.NewClient("unix://"+p.Socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, fmt.Errorf("connecting to kubelet's PodResources API at %s: %w", p.Socket, err)
	}
	defer conn.Close()
	resp, err := podresourcesapi.NewPodResourcesListerClient(conn).List(ctx, &podresourcesapi.ListPodResourcesRequest{})
	if err != nil {
		return nil, fmt.Errorf("listing pod resources at %s (mount kubelet's pod-resources directory into plexus-daemon): %w", p.Socket, err)
	}
	var ids []string
	for _, pod := range resp.PodResources {
		if pod.Namespace != namespace || pod.Name != name {
			continue
		}
		for _, c := range pod.Containers {
			for _, d := range c.Devices {
				if d.ResourceName == resource {
					ids = append(ids, d.DeviceIds...)
				}
			}
		}
	}
	return ids, nil
}
