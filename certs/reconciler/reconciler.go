package reconciler

import (
	"bytes"
	"context"
	"fmt"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/plexus-project/plexus/certs"
)

// Reconciler keeps the CA, the serving certificates and the injected bundles. It has one key:
// every event it watches asks for the same complete pass.
type Reconciler struct {
	// Client reads straight from the API server (the Secrets are few and read once a pass)
	// and writes.
	Client client.Client
	Opts   Options

	// ownerRef is the pass's owner of the Secrets (see owner).
	ownerRef *metav1.OwnerReference
}

var _ reconcile.Reconciler = (*Reconciler)(nil)

// minRequeue bounds how soon a pass with nothing due runs again.
const minRequeue = time.Second

// Reconcile makes one pass: advance the CA, store it, inject the bundle, renew the serving
// certificates, and only then record the successor CA as trusted.
func (r *Reconciler) Reconcile(ctx context.Context, _ reconcile.Request) (reconcile.Result, error) {
	log := log.FromContext(ctx)
	now := r.Opts.Clock()
	caSecret, err := r.getSecret(ctx, r.Opts.CASecret)
	if err != nil {
		return reconcile.Result{}, err
	}
	if r.ownerRef, err = r.owner(ctx); err != nil {
		return reconcile.Result{}, err
	}
	auth, problem := authorityFrom(caSecret)
	if problem != nil {
		log.Error(problem, "repairing the CA Secret")
	}
	did, err := auth.Advance(now, r.Opts.policy())
	if err != nil {
		return reconcile.Result{}, fmt.Errorf("advancing the CA in Secret %s/%s: %w", r.Opts.Namespace, r.Opts.CASecret, err)
	}
	if did != "" {
		log.Info(did, "secret", r.Opts.CASecret, "current", auth.Current.Cert.NotAfter, "hasSuccessor", auth.Next != nil)
	}
	if caSecret, err = r.saveCA(ctx, caSecret, &auth, now); err != nil {
		return reconcile.Result{}, err
	}
	bundle := auth.Bundle(now)
	if err := r.inject(ctx, bundle); err != nil {
		return reconcile.Result{}, err
	}
	next := auth.NextEvent(r.Opts.policy())
	for _, s := range r.Opts.Serving {
		renew, err := r.ensureServing(ctx, s, auth.Current, bundle, now)
		if err != nil {
			return reconcile.Result{}, err
		}
		if renew.Before(next) {
			next = renew
		}
	}
	if auth.Next != nil && auth.NextTrustedAt.IsZero() {
		auth.MarkTrusted(now)
		if _, err := r.saveCA(ctx, caSecret, &auth, now); err != nil {
			return reconcile.Result{}, err
		}
		next = now.Add(r.Opts.TrustDelay)
	}
	return reconcile.Result{RequeueAfter: max(next.Sub(r.Opts.Clock()), minRequeue)}, nil
}

func (r *Reconciler) getSecret(ctx context.Context, name string) (*corev1.Secret, error) {
	var s corev1.Secret
	err := r.Client.Get(ctx, types.NamespacedName{Namespace: r.Opts.Namespace, Name: name}, &s)
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading Secret %s/%s: %w", r.Opts.Namespace, name, err)
	}
	return &s, nil
}

// saveCA writes auth to the CA Secret (created when s is nil) if it changed.
func (r *Reconciler) saveCA(ctx context.Context, s *corev1.Secret, auth *certs.Authority, now time.Time) (*corev1.Secret, error) {
	create := s == nil
	if create {
		s = &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: r.Opts.Namespace, Name: r.Opts.CASecret, Labels: labels()}, Type: corev1.SecretTypeOpaque}
	}
	owned := r.own(s)
	if !writeAuthority(s, auth, now) && !owned && !create {
		return s, nil
	}
	var err error
	if create {
		err = r.Client.Create(ctx, s)
	} else {
		err = r.Client.Update(ctx, s)
	}
	if err != nil {
		return nil, fmt.Errorf("writing the CA Secret %s/%s: %w", r.Opts.Namespace, r.Opts.CASecret, err)
	}
	return s, nil
}

// ensureServing keeps the serving Secret of s signed by ca with bundle beside it; it returns when
// the certificate is next due for renewal.
func (r *Reconciler) ensureServing(ctx context.Context, s Serving, ca *certs.KeyPair, bundle []byte, now time.Time) (time.Time, error) {
	sec, err := r.getSecret(ctx, s.SecretName)
	if err != nil {
		return time.Time{}, err
	}
	create := sec == nil
	if create {
		sec = &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: r.Opts.Namespace, Name: s.SecretName, Labels: labels()}, Type: corev1.SecretTypeTLS}
	}
	req := certs.ServingRequest{CommonName: s.SecretName, DNSNames: s.DNSNames, IPs: s.IPs, Lifetime: r.Opts.Lifetime}
	leaf := servingLeaf(sec)
	why := certs.ReissueReason(leaf, ca.Cert, req, now, r.Opts.RenewFraction)
	owned := r.own(sec)
	if why == "" && bytes.Equal(sec.Data[KeyBundle], bundle) && !owned {
		return certs.RenewAt(leaf, r.Opts.RenewFraction), nil
	}
	if sec.Data == nil {
		sec.Data = map[string][]byte{}
	}
	if why != "" {
		kp, err := ca.Issue(req, now)
		if err != nil {
			return time.Time{}, fmt.Errorf("issuing the serving certificate of Secret %s/%s: %w", r.Opts.Namespace, s.SecretName, err)
		}
		sec.Data[corev1.TLSCertKey], sec.Data[corev1.TLSPrivateKeyKey] = kp.CertPEM, kp.KeyPEM
		leaf = kp.Cert
		log.FromContext(ctx).Info("issued a serving certificate", "secret", s.SecretName, "reason", why, "notAfter", kp.Cert.NotAfter)
	}
	sec.Data[KeyBundle] = bundle
	if create {
		err = r.Client.Create(ctx, sec)
	} else {
		err = r.Client.Update(ctx, sec)
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("writing the serving Secret %s/%s: %w", r.Opts.Namespace, s.SecretName, err)
	}
	return certs.RenewAt(leaf, r.Opts.RenewFraction), nil
}

// inject sets bundle as the caBundle of every webhook of the configured webhook
// configurations; a configuration that does not exist yet is skipped (its creation triggers a
// pass).
func (r *Reconciler) inject(ctx context.Context, bundle []byte) error {
	for _, name := range r.Opts.WebhookConfigurations {
		var m admissionregistrationv1.MutatingWebhookConfiguration
		if err := r.Client.Get(ctx, types.NamespacedName{Name: name}, &m); client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("reading MutatingWebhookConfiguration %s: %w", name, err)
		} else if err == nil && setBundle(bundle, len(m.Webhooks), func(i int) *[]byte { return &m.Webhooks[i].ClientConfig.CABundle }) {
			if err := r.Client.Update(ctx, &m); err != nil {
				return fmt.Errorf("injecting the CA bundle into MutatingWebhookConfiguration %s: %w", name, err)
			}
		}
		var v admissionregistrationv1.ValidatingWebhookConfiguration
		if err := r.Client.Get(ctx, types.NamespacedName{Name: name}, &v); client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("reading ValidatingWebhookConfiguration %s: %w", name, err)
		} else if err == nil && setBundle(bundle, len(v.Webhooks), func(i int) *[]byte { return &v.Webhooks[i].ClientConfig.CABundle }) {
			if err := r.Client.Update(ctx, &v); err != nil {
				return fmt.Errorf("injecting the CA bundle into ValidatingWebhookConfiguration %s: %w", name, err)
			}
		}
	}
	return nil
}

// owner is the MutatingWebhookConfiguration of the first configured name, when it exists: the
// Secrets are made its dependents, so that removing the install (helm uninstall deletes the
// configuration) lets the garbage collector remove the certificates too.
func (r *Reconciler) owner(ctx context.Context) (*metav1.OwnerReference, error) {
	if len(r.Opts.WebhookConfigurations) == 0 {
		return nil, nil
	}
	var m admissionregistrationv1.MutatingWebhookConfiguration
	err := r.Client.Get(ctx, types.NamespacedName{Name: r.Opts.WebhookConfigurations[0]}, &m)
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading MutatingWebhookConfiguration %s: %w", r.Opts.WebhookConfigurations[0], err)
	}
	return &metav1.OwnerReference{APIVersion: "admissionregistration.k8s.io/v1", Kind: "MutatingWebhookConfiguration", Name: m.Name, UID: m.UID}, nil
}

// own makes s a dependent of the pass's owner; it reports whether s changed.
func (r *Reconciler) own(s *corev1.Secret) bool {
	if r.ownerRef == nil {
		return false
	}
	for _, ref := range s.OwnerReferences {
		if ref.UID == r.ownerRef.UID {
			return false
		}
	}
	s.OwnerReferences = append(s.OwnerReferences, *r.ownerRef)
	return true
}

func setBundle(bundle []byte, n int, field func(int) *[]byte) (changed bool) {
	for i := range n {
		if f := field(i); !bytes.Equal(*f, bundle) {
			*f, changed = bundle, true
		}
	}
	return changed
}

func labels() map[string]string {
	return map[string]string{"app.kubernetes.io/name": "plexus", "app.kubernetes.io/managed-by": "plexus-controller"}
}
