package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/plexus-project/plexus/test/cluster"
)

func sleeper() corev1.PodSpec {
	return corev1.PodSpec{
		TerminationGracePeriodSeconds: ptr(int64(1)),
		Tolerations:                   []corev1.Toleration{{Operator: corev1.TolerationOpExists}},
		Containers: []corev1.Container{{
			Name: "main", Image: cluster.BusyboxImage, ImagePullPolicy: corev1.PullNever,
			Command: []string{"sleep", "3600"},
		}},
	}
}

// TestControllers proves kube-controller-manager runs the workload controllers: a DaemonSet
// gets a pod on every node, a Deployment and a StatefulSet their replicas.
func TestControllers(t *testing.T) {
	s := requireSuite(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	apps := s.Clientset.AppsV1()
	labels := func(app string) map[string]string { return map[string]string{"app": app} }
	ds := &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Name: "e2e-ds", Namespace: "default"},
		Spec: appsv1.DaemonSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels("e2e-ds")},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels("e2e-ds")}, Spec: sleeper()},
		},
	}
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "e2e-deploy", Namespace: "default"},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr(int32(3)),
			Selector: &metav1.LabelSelector{MatchLabels: labels("e2e-deploy")},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels("e2e-deploy")}, Spec: sleeper()},
		},
	}
	sts := &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Name: "e2e-sts", Namespace: "default"},
		Spec: appsv1.StatefulSetSpec{
			Replicas:            ptr(int32(2)),
			PodManagementPolicy: appsv1.ParallelPodManagement,
			Selector:            &metav1.LabelSelector{MatchLabels: labels("e2e-sts")},
			Template:            corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels("e2e-sts")}, Spec: sleeper()},
		},
	}
	if _, err := apps.DaemonSets("default").Create(ctx, ds, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := apps.Deployments("default").Create(ctx, dep, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := apps.StatefulSets("default").Create(ctx, sts, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		bg := context.Background()
		_ = apps.DaemonSets("default").Delete(bg, ds.Name, metav1.DeleteOptions{})
		_ = apps.Deployments("default").Delete(bg, dep.Name, metav1.DeleteOptions{})
		_ = apps.StatefulSets("default").Delete(bg, sts.Name, metav1.DeleteOptions{})
	})
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 90*time.Second, true, func(ctx context.Context) (bool, error) {
		d, err1 := apps.DaemonSets("default").Get(ctx, ds.Name, metav1.GetOptions{})
		p, err2 := apps.Deployments("default").Get(ctx, dep.Name, metav1.GetOptions{})
		st, err3 := apps.StatefulSets("default").Get(ctx, sts.Name, metav1.GetOptions{})
		if err1 != nil || err2 != nil || err3 != nil {
			return false, nil
		}
		return d.Status.NumberReady == int32(len(s.Nodes)) && p.Status.ReadyReplicas == 3 && st.Status.ReadyReplicas == 2, nil
	})
	if err != nil {
		t.Fatalf("workloads not ready: %v", err)
	}
}

// TestInClusterAPI proves pods reach the API server the in-cluster way: the kubernetes
// service IP (DNAT on every node, as there is no kube-proxy), a service-account token signed
// by the cluster's key, and the CA from the kube-root-ca.crt ConfigMap.
func TestInClusterAPI(t *testing.T) {
	s := requireSuite(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, hostNetwork := range []bool{false, true} {
		name := "e2e-api"
		if hostNetwork {
			name = "e2e-api-hostnet"
		}
		spec := sleeper()
		spec.HostNetwork = hostNetwork
		spec.NodeName = s.Nodes[len(s.Nodes)-1].Name
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"}, Spec: spec}
		if _, err := s.Clientset.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_ = s.Clientset.CoreV1().Pods("default").Delete(context.Background(), name, metav1.DeleteOptions{})
		})
		if _, err := waitRunning(ctx, s.Cluster, time.Minute, name); err != nil {
			t.Fatal(err)
		}
		// busybox's wget has no CA option: TLS is checked by the clients of the components;
		// here the token is what must be accepted.
		script := `TOKEN=$(cat /var/run/secrets/kubernetes.io/serviceaccount/token) && ` +
			`test -s /var/run/secrets/kubernetes.io/serviceaccount/ca.crt && ` +
			`wget -q -O- --no-check-certificate --header "Authorization: Bearer $TOKEN" ` +
			`https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT/api`
		out, err := kubectl(ctx, s.Cluster, "exec", name, "--", "sh", "-c", script)
		if err != nil {
			t.Fatalf("hostNetwork=%v: %v", hostNetwork, err)
		}
		if !strings.Contains(out, `"kind": "APIVersions"`) && !strings.Contains(out, `"kind":"APIVersions"`) {
			t.Errorf("hostNetwork=%v: /api answered %q", hostNetwork, out)
		}
	}
}

// TestLogsAndExec proves the API server reaches the kubelets (logs, exec) on their node IPs.
func TestLogsAndExec(t *testing.T) {
	s := requireSuite(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, n := range s.Nodes {
		pod := busyboxPod("e2e-logs-"+n.Name, n.Name)
		pod.Spec.Containers[0].Command = []string{"sh", "-c", "echo hello from " + n.Name + "; sleep 3600"}
		runPod(ctx, t, s.Cluster, pod)
		err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 10*time.Second, true, func(ctx context.Context) (bool, error) {
			out, err := kubectl(ctx, s.Cluster, "logs", pod.Name)
			return err == nil && strings.Contains(out, "hello from "+n.Name), nil
		})
		if err != nil {
			t.Errorf("logs of %s: %v", pod.Name, err)
		}
		if out, err := kubectl(ctx, s.Cluster, "exec", pod.Name, "--", "cat", "/proc/1/cmdline"); err != nil || !strings.Contains(out, "sleep") {
			t.Errorf("exec in %s: %q %v", pod.Name, out, err)
		}
	}
}

// TestSchedulerConfig proves Options.SchedulerConfig reaches kube-scheduler: a pod naming the
// suite configuration's second profile is scheduled.
func TestSchedulerConfig(t *testing.T) {
	s := requireSuite(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "e2e-second-scheduler", Namespace: "default"}, Spec: sleeper()}
	p.Spec.SchedulerName = secondScheduler
	if _, err := s.Clientset.CoreV1().Pods("default").Create(ctx, p, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = s.Clientset.CoreV1().Pods("default").Delete(context.Background(), p.Name, metav1.DeleteOptions{})
	})
	if _, err := waitRunning(ctx, s.Cluster, 45*time.Second, p.Name); err != nil {
		t.Fatal(err)
	}
}
