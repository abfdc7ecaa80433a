package reconciler

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/record"
	ctrl "sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/plexus-project/plexus/ipam/api/v1alpha1"
)

// Options tune the reconcilers.
type Options struct {
	// Interval is how often every block is re-examined (default 15s), which bounds how long a
	// leaked address stays allocated.
	Interval time.Duration
	// EmptyBlockGrace is how long an empty block of a live node is kept before it is deleted
	// (default 1m; the plugin deletes blocks it empties itself).
	EmptyBlockGrace time.Duration
	// Clock defaults to time.Now.
	Clock func() time.Time
}

// conflictRetry is how soon a block whose update lost a race with a plugin is examined again.
const conflictRetry = 100 * time.Millisecond

func (o *Options) setDefaults() {
	if o.Interval == 0 {
		o.Interval = 15 * time.Second
	}
	if o.EmptyBlockGrace == 0 {
		o.EmptyBlockGrace = time.Minute
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
}

// BlockReconciler frees the allocations of pods that are gone.
type BlockReconciler struct {
	// Client reads from the manager's cache and writes to the API server.
	Client ctrl.Client
	// Live reads straight from the API server, to confirm a pod is gone before freeing.
	Live ctrl.Reader
	// Recorder reports entries of a block that do not parse (nil: they are only logged).
	Recorder record.EventRecorder
	Opts     Options
}

// EventMalformedEntry is the reason of the Warning event on an IPBlock holding an entry that
// does not parse.
const EventMalformedEntry = "MalformedAllocation"

var _ reconcile.Reconciler = (*BlockReconciler)(nil)

// Reconcile examines one IPBlock.
func (r *BlockReconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	log := log.FromContext(ctx)
	var b v1alpha1.IPBlock
	if err := r.Client.Get(ctx, req.NamespacedName, &b); err != nil {
		return reconcile.Result{}, ctrl.IgnoreNotFound(err)
	}
	now := r.Opts.Clock()
	problems := b.Spec.Problems()
	r.report(ctx, &b, problems)
	freed := 0
	for addr, al := range b.Spec.Allocations {
		if problems[addr] != "" {
			continue // neither freed nor trusted: a human fixes or removes it
		}
		free, why, err := r.holderGone(ctx, al, now)
		if err != nil {
			return reconcile.Result{}, fmt.Errorf("checking the holder of %s in IP block %s: %w", addr, b.Name, err)
		}
		if free {
			log.Info("freeing a leaked address", "address", addr, "pod", al.PodNamespace+"/"+al.PodName, "podUID", al.PodUID, "container", al.ContainerID, "reason", why)
			delete(b.Spec.Allocations, addr)
			freed++
		}
	}
	if freed > 0 {
		if err := r.Client.Update(ctx, &b); err != nil {
			if apierrors.IsNotFound(err) {
				return reconcile.Result{}, nil // the block is gone, and its addresses with it
			}
			if apierrors.IsConflict(err) {
				// A plugin wrote the block meanwhile: judge it again on fresh data.
				return reconcile.Result{RequeueAfter: conflictRetry}, nil
			}
			return reconcile.Result{}, fmt.Errorf("freeing %d addresses in IP block %s: %w", freed, b.Name, err)
		}
	}
	if len(b.Spec.Allocations) == 0 {
		nodeGone, err := r.nodeGone(ctx, b.Spec.Node)
		if err != nil {
			return reconcile.Result{}, err
		}
		if nodeGone || now.Sub(b.CreationTimestamp.Time) > r.Opts.EmptyBlockGrace {
			rv := b.ResourceVersion
			err := r.Client.Delete(ctx, &b, ctrl.Preconditions{ResourceVersion: &rv})
			if err != nil && !apierrors.IsConflict(err) && !apierrors.IsNotFound(err) {
				return reconcile.Result{}, fmt.Errorf("deleting the empty IP block %s: %w", b.Name, err)
			}
			if err == nil {
				log.Info("deleted an empty IP block", "block", b.Name, "node", b.Spec.Node, "nodeGone", nodeGone)
			}
			return reconcile.Result{}, nil
		}
	}
	return reconcile.Result{RequeueAfter: r.Opts.Interval}, nil
}

// report logs and records an event for each entry of b that does not parse; the other entries
// are reconciled as usual.
func (r *BlockReconciler) report(ctx context.Context, b *v1alpha1.IPBlock, problems map[string]string) {
	for key, problem := range problems {
		log.FromContext(ctx).Info("skipping a malformed entry of an IP block", "block", b.Name, "entry", key, "problem", problem)
		if r.Recorder != nil {
			r.Recorder.Eventf(b, corev1.EventTypeWarning, EventMalformedEntry,
				"entry %q of IP block %s is skipped (its address is neither handed out nor freed): %s; fix or remove it with kubectl edit ipblock %s",
				key, b.Name, problem, b.Name)
		}
	}
}

// holderGone decides whether an allocation's holder is gone; the reason is for the log.
func (r *BlockReconciler) holderGone(ctx context.Context, al v1alpha1.Allocation, now time.Time) (bool, string, error) {
	if al.HeldUntil != nil {
		// A node agent's hold: handed out only in its first half, written within seconds.
		if now.Before(al.HeldUntil.Time) {
			return false, "", nil
		}
		return true, "the node's hold expired (its IPAM agent did not give it back)", nil
	}
	if al.PodName == "" {
		return false, "", nil // no pod identity was given: nothing to compare with
	}
	key := types.NamespacedName{Namespace: al.PodNamespace, Name: al.PodName}
	if al.ReservedUntil != nil {
		if now.Before(al.ReservedUntil.Time) {
			return false, "", nil
		}
		exists, _, err := r.livePod(ctx, key)
		if err != nil || exists {
			return false, "", err
		}
		return true, "sticky reservation expired and no pod of that name exists", nil
	}
	var cached corev1.Pod
	err := r.Client.Get(ctx, key, &cached)
	if err == nil && (al.PodUID == "" || kubeletUID(&cached) == al.PodUID) {
		return false, "", nil
	}
	if err != nil && !apierrors.IsNotFound(err) {
		return false, "", err
	}
	// The cache says gone or re-created; the cache may lag, so ask the API server.
	exists, uid, err := r.livePod(ctx, key)
	switch {
	case err != nil:
		return false, "", err
	case !exists:
		return true, "pod is gone", nil
	case al.PodUID != "" && uid != al.PodUID:
		return true, "pod was re-created with UID " + uid, nil
	}
	return false, "", nil
}

func (r *BlockReconciler) livePod(ctx context.Context, key types.NamespacedName) (bool, string, error) {
	var pod metav1.PartialObjectMetadata
	pod.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Pod"))
	err := r.Live.Get(ctx, key, &pod)
	if apierrors.IsNotFound(err) {
		return false, "", nil
	}
	if err != nil {
		return false, "", fmt.Errorf("reading pod %s: %w", key, err)
	}
	return true, kubeletUID(&pod), nil
}

// kubeletUID is the UID the kubelet gives a pod, which the runtime passes as K8S_POD_UID: the
// API object's UID, except for a static pod, whose API object is a mirror with a UID of its own
// and the kubelet's UID in its kubernetes.io/config.mirror annotation.
func kubeletUID(pod metav1.Object) string {
	if uid := pod.GetAnnotations()[corev1.MirrorPodAnnotationKey]; uid != "" {
		return uid
	}
	return string(pod.GetUID())
}

func (r *BlockReconciler) nodeGone(ctx context.Context, name string) (bool, error) {
	var node metav1.PartialObjectMetadata
	node.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Node"))
	err := r.Live.Get(ctx, types.NamespacedName{Name: name}, &node)
	if apierrors.IsNotFound(err) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("reading node %s: %w", name, err)
	}
	return false, nil
}
