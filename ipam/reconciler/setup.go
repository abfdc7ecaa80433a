package reconciler

import (
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	"github.com/plexus-project/plexus/ipam/api/v1alpha1"
)

// SetupWithManager registers the block and pool reconcilers with mgr; they run on the elected
// leader only. The manager's scheme must hold client-go's types and ipam/api/v1alpha1.
func SetupWithManager(mgr manager.Manager, opts Options) error {
	opts.setDefaults()
	blocks := &BlockReconciler{Client: mgr.GetClient(), Live: mgr.GetAPIReader(), Recorder: mgr.GetEventRecorderFor("plexus-ipam-reclaimer"), Opts: opts}
	if err := builder.ControllerManagedBy(mgr).Named("ipam-blocks").For(&v1alpha1.IPBlock{}).Complete(blocks); err != nil {
		return err
	}
	pools := &PoolReconciler{Client: mgr.GetClient(), Opts: opts}
	return builder.ControllerManagedBy(mgr).Named("ipam-pools").For(&v1alpha1.IPPool{}).
		Watches(&v1alpha1.IPBlock{}, handler.EnqueueRequestsFromMapFunc(pools.poolsOfBlock)).
		Complete(pools)
}
