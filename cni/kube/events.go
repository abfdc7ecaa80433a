package kube

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8stypes "k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
)

// eventWriter records Warning Events on pods the way client-go's event recorder does for the
// daemon's one use (a failed attachment), without its broadcaster and scheme: an event is
// named after its pod and the hash of its reason and message, so the same failure again
// (kubelet retrying the sandbox) counts up the one Event instead of adding another.
type eventWriter struct {
	core    rest.Interface
	node    string
	timeout time.Duration
	// slots bound the events being sent; beyond them an event is dropped (they are advice,
	// never worth a goroutine pile-up when the API server is slow).
	slots chan struct{}

	mu     sync.Mutex
	counts map[string]int32 // event namespace/name -> count written
}

// maxPendingEvents bounds the events in flight; maxKnownEvents the counts remembered.
const (
	maxPendingEvents = 64
	maxKnownEvents   = 1024
)

func newEventWriter(core rest.Interface, node string, timeout time.Duration) *eventWriter {
	return &eventWriter{core: core, node: node, timeout: timeout, slots: make(chan struct{}, maxPendingEvents), counts: map[string]int32{}}
}

// warn sends the event in the background.
func (w *eventWriter) warn(pod *corev1.Pod, reason, message string) {
	select {
	case w.slots <- struct{}{}:
	default:
		return
	}
	go func() {
		defer func() { <-w.slots }()
		ctx, cancel := context.WithTimeout(context.Background(), w.timeout)
		defer cancel()
		_ = w.record(ctx, pod, reason, message)
	}()
}

// eventName is the pod's name and a hash of what happened, so a repeat finds its Event.
func eventName(pod *corev1.Pod, reason, message string) string {
	h := fnv.New64a()
	fmt.Fprintf(h, "%s\x00%s\x00%s", pod.UID, reason, message)
	name := pod.Name
	if len(name) > 200 {
		name = name[:200]
	}
	return fmt.Sprintf("%s.%016x", name, h.Sum64())
}

// record creates the Event, or counts it up when it exists.
func (w *eventWriter) record(ctx context.Context, pod *corev1.Pod, reason, message string) error {
	name := eventName(pod, reason, message)
	key := pod.Namespace + "/" + name
	now := metav1.NewTime(time.Now())
	w.mu.Lock()
	count := w.counts[key] + 1
	w.mu.Unlock()
	if count > 1 {
		err := w.countUp(ctx, pod.Namespace, name, count, now)
		if err == nil || !apierrors.IsNotFound(err) {
			w.remember(key, count, err)
			return err
		}
		count = 1 // the Event expired: write it again
	}
	ev := &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{Namespace: pod.Namespace, Name: name},
		InvolvedObject: corev1.ObjectReference{Kind: "Pod", APIVersion: "v1", Namespace: pod.Namespace, Name: pod.Name,
			UID: pod.UID, ResourceVersion: pod.ResourceVersion},
		Reason: reason, Message: message, Type: corev1.EventTypeWarning,
		Source:         corev1.EventSource{Component: "plexus-daemon", Host: w.node},
		FirstTimestamp: now, LastTimestamp: now, Count: 1,
	}
	err := w.core.Post().Namespace(pod.Namespace).Resource("events").Body(ev).Do(ctx).Error()
	if apierrors.IsAlreadyExists(err) { // written before this process knew of it
		count = 2
		err = w.countUp(ctx, pod.Namespace, name, count, now)
	}
	w.remember(key, count, err)
	return err
}

// countUp sets the count and the last time of an existing Event.
func (w *eventWriter) countUp(ctx context.Context, namespace, name string, count int32, now metav1.Time) error {
	patch, err := json.Marshal(map[string]any{"count": count, "lastTimestamp": now})
	if err != nil {
		return err
	}
	return w.core.Patch(k8stypes.MergePatchType).Namespace(namespace).Resource("events").Name(name).Body(patch).Do(ctx).Error()
}

// remember notes the count written (nothing when the write failed); the memory is bounded.
func (w *eventWriter) remember(key string, count int32, err error) {
	if err != nil {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.counts) >= maxKnownEvents {
		clear(w.counts)
	}
	w.counts[key] = count
}
