package attach

import (
	"context"
	"fmt"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/types"
)

// limited is Delegates with at most cap(slots) plugin executions at once across every call of
// the node: the calls in flight are bounded by the server's queue, but each runs its networks
// in parallel, so 32 calls of 16 networks would otherwise start about 512 plugin processes at
// once (each a few MB, and the CPU thrashing between them).
type limited struct {
	next  Delegates
	slots chan struct{}
}

var _ Delegates = (*limited)(nil)

// LimitDelegates returns d with at most n plugin executions (ADD, DEL, CHECK, GC or STATUS of
// one network) running at once; the others wait for a slot, or until their context ends.
// n < 1 means no bound.
func LimitDelegates(d Delegates, n int) Delegates {
	if n < 1 {
		return d
	}
	return &limited{next: d, slots: make(chan struct{}, n)}
}

// acquire takes a slot; the returned func gives it back.
func (l *limited) acquire(ctx context.Context, list *libcni.NetworkConfigList) (func(), error) {
	select {
	case l.slots <- struct{}{}:
		return func() { <-l.slots }, nil
	case <-ctx.Done():
		return nil, types.NewError(types.ErrTryAgainLater,
			fmt.Sprintf("network %s: waited for one of the node's %d plugin execution slots (--cni-max-delegates) until the call's deadline", list.Name, cap(l.slots)),
			ctx.Err().Error())
	}
}

func (l *limited) AddNetworkList(ctx context.Context, list *libcni.NetworkConfigList, rt *libcni.RuntimeConf) (types.Result, error) {
	release, err := l.acquire(ctx, list)
	if err != nil {
		return nil, err
	}
	defer release()
	return l.next.AddNetworkList(ctx, list, rt)
}

func (l *limited) DelNetworkList(ctx context.Context, list *libcni.NetworkConfigList, rt *libcni.RuntimeConf) error {
	release, err := l.acquire(ctx, list)
	if err != nil {
		return err
	}
	defer release()
	return l.next.DelNetworkList(ctx, list, rt)
}

func (l *limited) CheckNetworkList(ctx context.Context, list *libcni.NetworkConfigList, rt *libcni.RuntimeConf) error {
	release, err := l.acquire(ctx, list)
	if err != nil {
		return err
	}
	defer release()
	return l.next.CheckNetworkList(ctx, list, rt)
}

func (l *limited) GCNetworkList(ctx context.Context, list *libcni.NetworkConfigList, args *libcni.GCArgs) error {
	release, err := l.acquire(ctx, list)
	if err != nil {
		return err
	}
	defer release()
	return l.next.GCNetworkList(ctx, list, args)
}

func (l *limited) GetStatusNetworkList(ctx context.Context, list *libcni.NetworkConfigList) error {
	release, err := l.acquire(ctx, list)
	if err != nil {
		return err
	}
	defer release()
	return l.next.GetStatusNetworkList(ctx, list)
}
