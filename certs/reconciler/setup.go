package reconciler

import (
	"context"
	"slices"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"
)

// SetupWithManager registers the reconciler with mgr. It watches the Secrets it keeps (through a
// cache of their namespace only, so it needs no cluster-wide Secret access) and the webhook
// configurations it injects into, and makes a first pass when it starts leading.
func SetupWithManager(mgr ctrl.Manager, opts Options) error {
	opts.setDefaults()
	if err := opts.validate(); err != nil {
		return err
	}
	secrets, err := cache.New(mgr.GetConfig(), cache.Options{
		Scheme: mgr.GetScheme(), Mapper: mgr.GetRESTMapper(),
		DefaultNamespaces: map[string]cache.Config{opts.Namespace: {}},
	})
	if err != nil {
		return err
	}
	if err := mgr.Add(secrets); err != nil {
		return err
	}
	key := reconcile.Request{NamespacedName: types.NamespacedName{Namespace: opts.Namespace, Name: "plexus-certs"}}
	one := handler.EnqueueRequestsFromMapFunc(func(context.Context, client.Object) []reconcile.Request {
		return []reconcile.Request{key}
	})
	secretNames := []string{opts.CASecret}
	for _, s := range opts.Serving {
		secretNames = append(secretNames, s.SecretName)
	}
	named := func(names []string) predicate.Predicate {
		return predicate.NewPredicateFuncs(func(o client.Object) bool { return slices.Contains(names, o.GetName()) })
	}
	r := &Reconciler{Client: mgr.GetClient(), Opts: opts}
	if apiReader := mgr.GetAPIReader(); apiReader != nil {
		r.Client = readThrough{Client: mgr.GetClient(), reader: apiReader}
	}
	return ctrl.NewControllerManagedBy(mgr).
		Named("certs").
		WithOptions(controller.Options{MaxConcurrentReconciles: 1}).
		WatchesRawSource(source.Kind(secrets, &corev1.Secret{},
			handler.TypedEnqueueRequestsFromMapFunc(func(context.Context, *corev1.Secret) []reconcile.Request { return []reconcile.Request{key} }),
			predicate.NewTypedPredicateFuncs(func(s *corev1.Secret) bool { return slices.Contains(secretNames, s.Name) }))).
		Watches(&admissionregistrationv1.MutatingWebhookConfiguration{}, one, builder.WithPredicates(named(opts.WebhookConfigurations))).
		Watches(&admissionregistrationv1.ValidatingWebhookConfiguration{}, one, builder.WithPredicates(named(opts.WebhookConfigurations))).
		WatchesRawSource(source.Func(func(_ context.Context, q workqueue.TypedRateLimitingInterface[reconcile.Request]) error {
			q.Add(key)
			return nil
		})).
		Complete(r)
}

// readThrough reads from the API server instead of a cache: a pass must see its own last
// writes (the successor CA, the trust time) or it would issue twice.
type readThrough struct {
	client.Client
	reader client.Reader
}

func (c readThrough) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	return c.reader.Get(ctx, key, obj, opts...)
}
