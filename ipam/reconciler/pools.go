package reconciler

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/plexus-project/plexus/ipam/allocator"
	"github.com/plexus-project/plexus/ipam/api/v1alpha1"
)

// PoolReconciler keeps IPPool status (size, used, free) current.
type PoolReconciler struct {
	Client ctrl.Client
	Opts   Options
}

var _ reconcile.Reconciler = (*PoolReconciler)(nil)

// Reconcile recounts one IPPool.
func (r *PoolReconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	var p v1alpha1.IPPool
	if err := r.Client.Get(ctx, req.NamespacedName, &p); err != nil {
		return reconcile.Result{}, ctrl.IgnoreNotFound(err)
	}
	pool, err := allocator.PoolFromObject(&p)
	if err != nil {
		return reconcile.Result{}, reconcile.TerminalError(err)
	}
	var blocks v1alpha1.IPBlockList
	if err := r.Client.List(ctx, &blocks, ctrl.MatchingLabels{v1alpha1.LabelNetwork: allocator.NetworkKey(p.Spec.Network)}); err != nil {
		return reconcile.Result{}, fmt.Errorf("listing the IP blocks of pool %s: %w", p.Name, err)
	}
	u := allocator.PoolUsage(pool, blocks.Items)
	status := v1alpha1.IPPoolStatus{Size: u.Size.String(), Used: u.Used.String(), Free: u.Free.String(), Blocks: int32(u.Blocks)}
	old := p.Status
	old.LastUpdated = nil
	if !equality.Semantic.DeepEqual(old, status) {
		now := metav1.NewTime(r.Opts.Clock())
		status.LastUpdated = &now
		p.Status = status
		if err := r.Client.Status().Update(ctx, &p); err != nil {
			return reconcile.Result{}, ctrl.IgnoreNotFound(err)
		}
	}
	return reconcile.Result{RequeueAfter: 4 * r.Opts.Interval}, nil
}

// poolsOfBlock maps an IPBlock event to the pools of its network.
func (r *PoolReconciler) poolsOfBlock(ctx context.Context, o ctrl.Object) []reconcile.Request {
	b, ok := o.(*v1alpha1.IPBlock)
	if !ok {
		return nil
	}
	var pools v1alpha1.IPPoolList
	if err := r.Client.List(ctx, &pools, ctrl.MatchingLabels{v1alpha1.LabelNetwork: allocator.NetworkKey(b.Spec.Network)}); err != nil {
		// A map function cannot fail: say so, and let the pools' periodic recount catch up.
		log.FromContext(ctx).Error(err, "listing the IP pools of a changed IP block; their counts wait for the next periodic recount",
			"block", b.Name, "network", b.Spec.Network, "recountWithin", (4 * r.Opts.Interval).String())
		return nil
	}
	out := make([]reconcile.Request, 0, len(pools.Items))
	for _, p := range pools.Items {
		out = append(out, reconcile.Request{NamespacedName: ctrl.ObjectKeyFromObject(&p)})
	}
	return out
}
