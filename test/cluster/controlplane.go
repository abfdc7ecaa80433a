package cluster

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// Ports of the control plane, on the host end of the node network (unique per NetworkID).
const (
	apiServerPort = 6443
	etcdPort      = 2379
	etcdPeerPort  = 2380
)

// Identities the API server knows by static token.
const (
	adminUser      = "plexus-admin"
	schedulerUser  = "system:kube-scheduler"
	controllerUser = "system:kube-controller-manager"
)

func (c *Cluster) identities() []identity {
	ids := []identity{
		{user: adminUser, groups: []string{"system:masters"}},
		{user: schedulerUser},
		{user: controllerUser},
	}
	for _, u := range c.opts.Users {
		ids = append(ids, identity{user: u.Name, groups: u.Groups})
	}
	for _, n := range c.nodeNames() {
		ids = append(ids, identity{user: "system:node:" + n, groups: []string{"system:nodes"}})
	}
	return ids
}

// APIServerURL is where kube-apiserver listens.
func (c *Cluster) APIServerURL() string {
	return fmt.Sprintf("https://%s", net.JoinHostPort(c.addr.BridgeIP().String(), fmt.Sprint(apiServerPort)))
}

// startControlPlane writes the cluster's keys and kubeconfigs and starts etcd and
// kube-apiserver; finishControlPlane waits for them.
func (c *Cluster) startControlPlane(ctx context.Context) error {
	ip := c.addr.BridgeIP().String()
	p, err := newPKI(filepath.Join(c.dir, "pki"), []net.IP{net.ParseIP(ip), net.ParseIP(c.addr.KubernetesServiceIP().String())}, c.identities())
	if err != nil {
		return fmt.Errorf("writing the cluster keys: %w", err)
	}
	c.pki = p
	for _, u := range []string{adminUser, schedulerUser, controllerUser} {
		if err := p.writeKubeconfig(c.kubeconfigPath(u), c.APIServerURL(), u); err != nil {
			return err
		}
	}
	etcdURL := fmt.Sprintf("http://%s:%d", ip, etcdPort)
	peerURL := fmt.Sprintf("http://%s:%d", ip, etcdPeerPort)
	if _, err := c.start("etcd", []string{c.bin("etcd"),
		"--name=" + c.opts.Name, "--data-dir=" + filepath.Join(c.dir, "etcd"),
		"--listen-client-urls=" + etcdURL, "--advertise-client-urls=" + etcdURL,
		"--listen-peer-urls=" + peerURL, "--initial-advertise-peer-urls=" + peerURL,
		"--initial-cluster=" + c.opts.Name + "=" + peerURL,
		"--unsafe-no-fsync", "--log-level=warn",
	}, nil); err != nil {
		return err
	}
	apiArgs := []string{c.bin("kube-apiserver"),
		"--etcd-servers=" + etcdURL,
		"--bind-address=" + ip, "--advertise-address=" + ip, fmt.Sprintf("--secure-port=%d", apiServerPort),
		"--tls-cert-file=" + p.path("apiserver.crt"), "--tls-private-key-file=" + p.path("apiserver.key"),
		"--client-ca-file=" + p.path("ca.crt"),
		"--kubelet-client-certificate=" + p.path("apiserver-kubelet-client.crt"),
		"--kubelet-client-key=" + p.path("apiserver-kubelet-client.key"),
		"--kubelet-preferred-address-types=InternalIP",
		"--token-auth-file=" + p.path("tokens.csv"),
		"--authorization-mode=Node,RBAC",
		"--service-cluster-ip-range=" + c.addr.ServicePrefix().String(),
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file=" + p.path("sa.pub"),
		"--service-account-signing-key-file=" + p.path("sa.key"),
		"--allow-privileged=true",
		// Webhooks and aggregated APIs are reached at their endpoints (pod IPs, which the host
		// routes to the nodes): there is no kube-proxy to serve cluster IPs.
		"--enable-aggregator-routing=true",
		"--profiling=false",
		"--v=1",
	}
	if len(c.opts.AuditUsers) > 0 {
		audit, err := auditArgs(filepath.Join(c.dir, "pki"), c.AuditLogPath(), c.opts.AuditUsers)
		if err != nil {
			return fmt.Errorf("the API server's audit log: %w", err)
		}
		apiArgs = append(apiArgs, audit...)
	}
	if _, err := c.start("kube-apiserver", apiArgs, nil); err != nil {
		return err
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", c.Kubeconfig)
	if err != nil {
		return err
	}
	c.Config = cfg
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	c.Clientset = cs
	return nil
}

// finishControlPlane waits for kube-apiserver to be ready, starts kube-scheduler and
// kube-controller-manager, then installs the CRDs.
func (c *Cluster) finishControlPlane(ctx context.Context) error {
	p := c.pki
	if err := c.waitAPIServer(ctx); err != nil {
		return err
	}
	schedArgs := []string{c.bin("kube-scheduler"), "--secure-port=0", "--v=1"}
	if cfg := c.opts.SchedulerConfig; cfg != "" {
		if strings.Contains(cfg, "clientConnection:") || strings.Contains(cfg, "leaderElection:") {
			return fmt.Errorf("SchedulerConfig: leave clientConnection and leaderElection out; Up sets them")
		}
		cfg = strings.TrimRight(cfg, "\n") + fmt.Sprintf("\nclientConnection:\n  kubeconfig: %q\nleaderElection:\n  leaderElect: false\n", c.kubeconfigPath(schedulerUser))
		path := filepath.Join(c.dir, "pki", "scheduler.yaml")
		if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
			return err
		}
		schedArgs = append(schedArgs, "--config="+path)
	} else {
		schedArgs = append(schedArgs, "--kubeconfig="+c.kubeconfigPath(schedulerUser), "--leader-elect=false")
	}
	if _, err := c.start("kube-scheduler", schedArgs, nil); err != nil {
		return err
	}
	ccm := c.kubeconfigPath(controllerUser)
	if _, err := c.start("kube-controller-manager", []string{c.bin("kube-controller-manager"),
		"--kubeconfig=" + ccm, "--authentication-kubeconfig=" + ccm, "--authorization-kubeconfig=" + ccm,
		"--leader-elect=false", "--bind-address=127.0.0.1", "--secure-port=0",
		"--service-account-private-key-file=" + p.path("sa.key"),
		"--root-ca-file=" + p.path("ca.crt"),
		"--use-service-account-credentials=true",
		"--controllers=*,-bootstrapsigner,-tokencleaner",
		"--node-monitor-grace-period=20s", "--node-monitor-period=1s",
		// The default 20 requests/s spreads the start of its ~40 controllers over 4 s.
		"--kube-api-qps=200", "--kube-api-burst=400",
		"--v=1",
	}, nil); err != nil {
		return err
	}
	// CRDs and the default namespace's objects go in while the scheduler and the controller
	// manager start.
	if len(c.opts.CRDDirs) > 0 {
		if err := installCRDs(ctx, c.Config, c.opts.CRDDirs); err != nil {
			return fmt.Errorf("installing the CRDs of %v: %w", c.opts.CRDDirs, err)
		}
	}
	if err := c.bootstrapDefaultNamespace(ctx); err != nil {
		return err
	}
	return nil
}

// waitAPIServer polls /readyz until the API server answers ok, or its process died.
func (c *Cluster) waitAPIServer(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	var last error
	for {
		b, err := c.Clientset.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		if err == nil && string(b) == "ok" {
			return nil
		}
		last = err
		for _, name := range []string{"etcd", "kube-apiserver"} {
			if !c.running(name) {
				return fmt.Errorf("%s exited; see %s", name, c.logPath(name))
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("kube-apiserver not ready at %s (last: %v); see %s", c.APIServerURL(), last, c.logPath("kube-apiserver"))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (c *Cluster) bin(name string) string { return filepath.Join(c.opts.BinDir, name) }

func (c *Cluster) logPath(name string) string { return filepath.Join(c.dir, "logs", name+".log") }

func (c *Cluster) kubeconfigPath(user string) string {
	if user == adminUser {
		return c.Kubeconfig
	}
	return filepath.Join(c.dir, "pki", filepath.Base(user)+".kubeconfig")
}

// running says whether the recorded process called name is alive.
func (c *Cluster) running(name string) bool {
	c.state.mu.Lock()
	defer c.state.mu.Unlock()
	for _, p := range c.state.Processes {
		if p.Name == name {
			return alive(p.PID)
		}
	}
	return false
}

func checkBinaries(dir string, names ...string) error {
	for _, n := range names {
		if _, err := os.Stat(filepath.Join(dir, n)); err != nil {
			return fmt.Errorf("%s not found in %s: run `make test-bins` (it builds the Kubernetes test binaries): %w", n, dir, err)
		}
	}
	return nil
}

// bootstrapDefaultNamespace creates, in namespace default, the ServiceAccount and the
// kube-root-ca.crt ConfigMap that kube-controller-manager would create a few seconds after it
// starts (the same objects, from the same CA file), so that pods can be created as soon as
// the nodes are Ready. kube-controller-manager owns them from then on.
func (c *Cluster) bootstrapDefaultNamespace(ctx context.Context) error {
	ca, err := os.ReadFile(c.pki.path("ca.crt"))
	if err != nil {
		return err
	}
	core := c.Clientset.CoreV1()
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default", Namespace: "default"}}
	if _, err := core.ServiceAccounts("default").Create(ctx, sa, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating the default service account: %w", err)
	}
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "kube-root-ca.crt", Namespace: "default"},
		Data:       map[string]string{"ca.crt": string(ca)},
	}
	if _, err := core.ConfigMaps("default").Create(ctx, cm, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating the kube-root-ca.crt ConfigMap: %w", err)
	}
	return nil
}
