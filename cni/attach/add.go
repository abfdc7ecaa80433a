package attach

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/go-logr/logr"
	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/plexus-project/plexus/cni/cache"
	"github.com/plexus-project/plexus/cni/network"
)

// EventReason is the reason of the Warning Event a failed attachment records on its pod.
const EventReason = "NetworkAttachFailed"

// Add attaches the pod's networks and returns the default network's result, in the CNI
// version of the call. On any failure, nothing stays attached.
func (a *Attacher) Add(ctx context.Context, c *Call) ([]byte, error) {
	defer a.lock(c.ContainerID)()
	log := logr.FromContextOrDiscard(ctx).WithValues("container", c.ContainerID)
	conf, err := parseShimConf(c.Config)
	if err != nil {
		return nil, err
	}
	ref := parseArgs(c.Args)
	if ref.Namespace == "" || ref.Name == "" {
		return nil, planError(types.ErrInvalidEnvironmentVariables, "plexus needs K8S_POD_NAMESPACE and K8S_POD_NAME in CNI_ARGS (the runtime passes them for Kubernetes pods); got %q", c.Args)
	}
	log = log.WithValues("pod", ref.Namespace+"/"+ref.Name)
	ctx = logr.NewContext(ctx, log)

	// A container ADDed before (the runtime retrying after a timeout) starts clean.
	if old, err := a.host.Cache.Get(c.ContainerID); err != nil {
		return nil, types.NewError(types.ErrInternal, "plexus: reading the result cache", err.Error())
	} else if old != nil {
		log.Info("container was attached before; detaching the old attachments first")
		if err := a.detach(ctx, old, c.Netns); err != nil {
			return nil, err
		}
	}

	pod, err := a.pod(ctx, ref)
	if err != nil {
		return nil, err
	}
	turn := &deviceTurn{mu: &a.devices}
	defer turn.done()
	plan, err := a.plan(ctx, c, conf, ref, pod, turn)
	if err != nil {
		a.fail(ctx, pod, "ADD", reasonOf(err), err)
		return nil, err
	}
	entry := &cache.Entry{ContainerID: c.ContainerID, Netns: c.Netns, IfName: c.IfName,
		PodNamespace: pod.Namespace, PodName: pod.Name, PodUID: string(pod.UID)}
	for _, d := range plan {
		entry.Attachments = append(entry.Attachments, d.att)
	}
	// Recorded before any plugin runs, so a crash in between still leaves DEL what to undo.
	if err := a.host.Cache.Put(entry); err != nil {
		return nil, types.NewError(types.ErrInternal, "plexus: caching the attachments", err.Error())
	}
	turn.done() // the devices taken are in the cache now

	results, err := a.attachAll(ctx, c, plan)
	if err == nil {
		err = a.finish(ctx, c, pod, plan, results, entry)
	}
	if err != nil {
		if rerr := a.detach(ctx, entry, c.Netns); rerr != nil {
			err = fmt.Errorf("%w; undoing the attachments made also failed: %v (a DEL of the container retries)", err, rerr)
		}
		cerr := asCNIError(err)
		a.fail(ctx, pod, "ADD", reasonOf(err), cerr)
		return nil, cerr
	}
	def, err := results[0].GetAsVersion(conf.CNIVersion)
	if err != nil {
		return nil, types.NewError(types.ErrIncompatibleCNIVersion, fmt.Sprintf("the default network's result cannot be given as CNI %s", conf.CNIVersion), err.Error())
	}
	out, err := json.Marshal(def)
	if err != nil {
		return nil, err
	}
	log.V(1).Info("attached", "networks", len(plan))
	return out, nil
}

// pod reads the pod from the cache, waiting a little for it to arrive there (the runtime can
// call before the watch delivered the pod), and checks it is the pod of the call.
func (a *Attacher) pod(ctx context.Context, ref podRef) (*corev1.Pod, error) {
	wctx, cancel := context.WithTimeout(ctx, a.opts.PodWait)
	defer cancel()
	pod, err := a.host.Pods.Pod(wctx, ref.Namespace, ref.Name)
	if apierrors.IsNotFound(err) {
		return nil, types.NewError(types.ErrTryAgainLater, fmt.Sprintf("pod %s/%s is not known to the API server (deleted, or not yet visible to plexus-daemon on node %s)", ref.Namespace, ref.Name, a.opts.NodeName), err.Error())
	}
	if err != nil {
		return nil, types.NewError(types.ErrTryAgainLater, fmt.Sprintf("reading pod %s/%s", ref.Namespace, ref.Name), err.Error())
	}
	if ref.UID != "" && string(pod.UID) != ref.UID {
		return nil, types.NewError(types.ErrTryAgainLater, fmt.Sprintf("pod %s/%s has UID %s, the runtime asked for %s: it was replaced", ref.Namespace, ref.Name, pod.UID, ref.UID), "")
	}
	return pod, nil
}

// attachError is the failure of one delegate.
type attachError struct {
	d   *delegate
	err error
	// cause and reason are the actionable words and the metrics label (see explain).
	cause, reason string
}

// attachAll runs every delegate's ADD at once (they are independent) and returns the results
// in plan order, or the errors of all that failed.
func (a *Attacher) attachAll(ctx context.Context, c *Call, plan []*delegate) ([]types.Result, error) {
	results := make([]types.Result, len(plan))
	errs := make([]error, len(plan))
	var wg sync.WaitGroup
	for i, d := range plan {
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			results[i], errs[i] = a.host.Delegates.AddNetworkList(ctx, d.list, a.runtimeConf(c.ContainerID, c.Netns, &d.att))
			if a.host.Metrics != nil {
				a.host.Metrics.Attached(d.types, time.Since(start), errs[i])
			}
			if errs[i] != nil {
				errs[i] = &attachError{d: d, err: errs[i]}
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, a.describe(err)
	}
	return results, nil
}

func (a *Attacher) runtimeConf(containerID, netns string, att *cache.Attachment) *libcni.RuntimeConf {
	return &libcni.RuntimeConf{ContainerID: containerID, NetNS: netns, IfName: att.IfName, Args: att.Args, CapabilityArgs: att.CapabilityArgs}
}

// finish applies default routes, caches the results and writes the pod's network-status.
func (a *Attacher) finish(ctx context.Context, c *Call, pod *corev1.Pod, plan []*delegate, results []types.Result, entry *cache.Entry) error {
	if err := a.applyDefaultRoutes(c.Netns, plan, results); err != nil {
		return err
	}
	var statuses []network.Status
	for i, d := range plan {
		b, err := json.Marshal(results[i])
		if err != nil {
			return err
		}
		entry.Attachments[i].Result = b
		var dev *nadv1.DeviceInfo
		if d.att.DeviceID != "" && a.host.DeviceInfos != nil {
			dev, _ = a.host.DeviceInfos.Read(d.att.Resource, d.att.DeviceID) // optional: absent for plain netdevices
		}
		st, err := network.StatusFromResult(results[i], d.att.Network, d.att.Default, dev)
		if err != nil {
			return err
		}
		statuses = append(statuses, st...)
	}
	if err := a.host.Cache.Put(entry); err != nil {
		return fmt.Errorf("caching the results: %w", err)
	}
	if err := a.host.Reporter.WriteStatus(ctx, pod, statuses); err != nil {
		return fmt.Errorf("writing the network-status of pod %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	return nil
}

// applyDefaultRoutes honours the default-route of the selections: the routes go into the
// namespace and into the results (so network-status shows the gateway), replacing the default
// routes of the same family elsewhere.
func (a *Attacher) applyDefaultRoutes(netns string, plan []*delegate, results []types.Result) error {
	for i, d := range plan {
		if d.sel == nil || len(d.sel.GatewayRequest) == 0 {
			continue
		}
		if err := a.host.Netns.SetDefaultRoute(netns, d.att.IfName, d.sel.GatewayRequest); err != nil {
			e := &attachError{d: d, err: err, reason: "default-route"}
			e.cause = fmt.Sprintf("setting the default route via %v in the pod: %v", d.sel.GatewayRequest, err)
			return e
		}
		for j := range results {
			r, err := current.NewResultFromResult(results[j])
			if err != nil {
				return err
			}
			r.Routes = withoutDefaults(r.Routes, d.sel.GatewayRequest)
			if j == i {
				for _, gw := range d.sel.GatewayRequest {
					r.Routes = append(r.Routes, defaultRoute(gw))
				}
			}
			results[j] = r
		}
	}
	return nil
}

// fail reports a failed call: metrics, the log and a Warning Event on the pod.
func (a *Attacher) fail(ctx context.Context, pod *corev1.Pod, command, reason string, err error) {
	logr.FromContextOrDiscard(ctx).Error(err, "CNI "+command+" failed", "reason", reason)
	if a.host.Metrics != nil {
		a.host.Metrics.Failed(command, reason)
	}
	if pod != nil && a.host.Reporter != nil {
		msg := err.Error()
		if ce, ok := err.(*types.Error); ok {
			msg = ce.Msg
			if ce.Details != "" {
				msg += " (" + ce.Details + ")"
			}
		}
		a.host.Reporter.Warn(pod, EventReason, strings.TrimSpace(msg))
	}
}
