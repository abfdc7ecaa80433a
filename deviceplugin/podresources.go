package deviceplugin

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	podresourcesapi "k8s.io/kubelet/pkg/apis/podresources/v1"
)

// InUseLister lists, per resource name, the device IDs kubelet has assigned to pods.
type InUseLister interface {
	InUse(ctx context.Context) (map[string]map[string]bool, error)
}

// PodResources is an InUseLister over kubelet's PodResources API socket.
type PodResources struct {
	Socket string
}

var _ InUseLister = (*PodResources)(nil)

// InUse calls List on kubelet's PodResources API.
func (p *PodResources) InUse(ctx context.Context) (map[string]map[string]bool, error) {
	conn, err := grpc.NewClient("unix://"+p.Socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, fmt.Errorf("connecting to kubelet's PodResources API at %s: %w", p.Socket, err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	resp, err := podresourcesapi.NewPodResourcesListerClient(conn).List(ctx, &podresourcesapi.ListPodResourcesRequest{})
	if err != nil {
		return nil, fmt.Errorf("listing pod resources at %s (mount kubelet's pod-resources directory into the plugin): %w", p.Socket, err)
	}
	out := map[string]map[string]bool{}
	for _, pod := range resp.PodResources {
		for _, c := range pod.Containers {
			for _, d := range c.Devices {
				if out[d.ResourceName] == nil {
					out[d.ResourceName] = map[string]bool{}
				}
				for _, id := range d.DeviceIds {
					out[d.ResourceName][id] = true
				}
			}
		}
	}
	return out, nil
}
