package inject

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestSchedulerName(t *testing.T) {
	cases := []struct {
		name, option, networks, podScheduler, want string
	}{
		{"no option: left alone", "", "net1", corev1.DefaultSchedulerName, corev1.DefaultSchedulerName},
		{"defaulted by the API server", "plexus-scheduler", "net1", corev1.DefaultSchedulerName, "plexus-scheduler"},
		{"unset", "plexus-scheduler", "macvlan-n4", "", "plexus-scheduler"},
		{"already ours", "plexus-scheduler", "net1", "plexus-scheduler", "plexus-scheduler"},
		{"the user's own scheduler is kept", "plexus-scheduler", "net1", "gpu-scheduler", "gpu-scheduler"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pod := podWith(tc.networks)
			pod.Spec.SchedulerName = tc.podScheduler
			out := apply(t, New(lookup(), Options{SchedulerName: tc.option}), pod)
			if out.Spec.SchedulerName != tc.want {
				t.Errorf("schedulerName = %q, want %q", out.Spec.SchedulerName, tc.want)
			}
		})
	}
}
