package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

const (
	serviceCIDR   = "10.96.0.0/16"
	clusterCIDR   = "10.244.0.0/16"
	kwokPodCIDR   = "10.250.0.0/16"  // pods on nodes without spec.podCIDR
	kwokNodeIP    = "172.31.255.254" // fallback InternalIP, see README
	kubeVersion   = "v1.36.3"
	nodeIPPrefix  = "172.31.0."
	kwokNodeAnnot = "kwok.x-k8s.io/node"
)

// writeCredentials generates the CA, serving certificate, service-account
// key pair and one client certificate + kubeconfig per component.
func (cp *controlPlane) writeCredentials() error {
	p, err := newPKI(cp.path("pki"), "ca", "bigip-operator-e2e-ca")
	if err != nil {
		return err
	}
	cp.pki = p
	// Separate CA for the aggregation layer (request-header authentication),
	// as kubeadm sets it up; also lets kube-controller-manager and
	// kube-scheduler find a complete extension-apiserver-authentication.
	fp, err := newPKI(cp.path("pki"), "front-proxy-ca", "bigip-operator-e2e-front-proxy-ca")
	if err != nil {
		return err
	}
	if _, _, err := fp.issue("front-proxy-client", "front-proxy-client", nil, false, nil, nil); err != nil {
		return err
	}
	if _, _, err := p.issue("apiserver", "kube-apiserver", nil, true,
		[]string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"},
		[]net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("10.96.0.1")}); err != nil {
		return err
	}
	if err := p.serviceAccountKey(); err != nil {
		return err
	}
	users := []struct{ name, cn, org, kubeconfig string }{
		{"admin", "kubernetes-admin", "system:masters", "kubeconfig"},
		{"kube-controller-manager", "system:kube-controller-manager", "", "kube-controller-manager.kubeconfig"},
		{"kube-scheduler", "system:kube-scheduler", "", "kube-scheduler.kubeconfig"},
		// kwok updates the status of nodes and pods, node leases and events;
		// like kwokctl it uses a cluster-admin credential.
		{"kwok", "kwok-controller", "system:masters", "kwok.kubeconfig"},
	}
	for _, u := range users {
		var orgs []string
		if u.org != "" {
			orgs = []string{u.org}
		}
		certPEM, keyPEM, err := p.issue(u.name, u.cn, orgs, false, nil, nil)
		if err != nil {
			return err
		}
		if err := p.writeKubeconfig(cp.path(u.kubeconfig), cp.apiserverURL, u.cn, certPEM, keyPEM); err != nil {
			return err
		}
	}
	cp.kubeconfig = cp.path("kubeconfig")
	return os.WriteFile(cp.path("kwok.yaml"), []byte(kwokStages()), 0o644)
}

func (cp *controlPlane) apiserverArgs(port, etcdPort int) []string {
	pki := cp.pki.path
	return []string{
		"--etcd-servers=http://127.0.0.1:" + strconv.Itoa(etcdPort),
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(port),
		"--cert-dir=" + cp.path("pki"),
		"--tls-cert-file=" + pki("apiserver.crt"),
		"--tls-private-key-file=" + pki("apiserver.key"),
		"--client-ca-file=" + pki("ca.crt"),
		"--requestheader-client-ca-file=" + pki("front-proxy-ca.crt"),
		"--requestheader-allowed-names=front-proxy-client",
		"--requestheader-username-headers=X-Remote-User",
		"--requestheader-group-headers=X-Remote-Group",
		"--requestheader-extra-headers-prefix=X-Remote-Extra-",
		"--proxy-client-cert-file=" + pki("front-proxy-client.crt"),
		"--proxy-client-key-file=" + pki("front-proxy-client.key"),
		"--authorization-mode=Node,RBAC",
		"--enable-admission-plugins=NodeRestriction",
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file=" + pki("sa.pub"),
		"--service-account-signing-key-file=" + pki("sa.key"),
		"--service-cluster-ip-range=" + serviceCIDR,
		"--allow-privileged=true",
		// The advertise address is loopback, which Endpoints validation
		// rejects; the "kubernetes" Service gets no endpoints.
		"--endpoint-reconciler-type=none",
		// On SIGTERM, end the open watch streams (clients see a normal end of
		// the watch and re-watch) instead of waiting for them: otherwise the
		// HTTP server's graceful shutdown waits for the other components'
		// watches up to --request-timeout (60s) and a restart (SIGUSR1)
		// would end in SIGKILL after apiserverGrace.
		"--shutdown-watch-termination-grace-period=5s",
		"--profiling=false",
		"--v=" + strconv.Itoa(cp.opts.verbosity),
	}
}

func (cp *controlPlane) kcmArgs(port int) []string {
	pki := cp.pki.path
	return append(cp.componentArgs("kube-controller-manager.kubeconfig", port),
		"--controllers="+cp.opts.controllers,
		"--use-service-account-credentials=true",
		"--service-account-private-key-file="+pki("sa.key"),
		"--root-ca-file="+pki("ca.crt"),
		"--cluster-signing-cert-file="+pki("ca.crt"),
		"--cluster-signing-key-file="+pki("ca.key"),
		"--cluster-name=bigip-operator-e2e",
		"--cluster-cidr="+clusterCIDR,
		"--service-cluster-ip-range="+serviceCIDR,
		"--allocate-node-cidrs=false",
	)
}

func (cp *controlPlane) schedulerArgs(port int) []string {
	return cp.componentArgs("kube-scheduler.kubeconfig", port)
}

// componentArgs are the flags the controller-manager and the scheduler share: one
// kubeconfig (a file in the data dir) for the API and for delegated authn/authz, loopback
// serving, no leader election, no profiling.
func (cp *controlPlane) componentArgs(kubeconfigFile string, port int) []string {
	kubeconfig := cp.path(kubeconfigFile)
	return []string{
		"--kubeconfig=" + kubeconfig,
		"--authentication-kubeconfig=" + kubeconfig,
		"--authorization-kubeconfig=" + kubeconfig,
		"--bind-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(port),
		"--leader-elect=false",
		"--profiling=false",
		"--v=" + strconv.Itoa(cp.opts.verbosity),
	}
}

func (cp *controlPlane) kwokArgs() []string {
	return []string{
		"--kubeconfig=" + cp.path("kwok.kubeconfig"),
		"--config=" + cp.path("kwok.yaml"),
		"--manage-nodes-with-annotation-selector=" + kwokNodeAnnot + "=fake",
		"--node-ip=" + kwokNodeIP,
		"--cidr=" + kwokPodCIDR,
		"--node-lease-duration-seconds=40",
	}
}

func (cp *controlPlane) clientset() (*kubernetes.Clientset, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", cp.kubeconfig)
	if err != nil {
		return nil, err
	}
	cfg.QPS = 50
	cfg.Burst = 100
	return kubernetes.NewForConfig(cfg)
}

func apiserverReady(ctx context.Context, cs kubernetes.Interface) (bool, error) {
	body, err := cs.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
	if err != nil {
		return false, err
	}
	return string(body) == "ok", nil
}

// clusterReady: the default namespace and its default ServiceAccount exist
// (pods can be admitted) and at least n nodes exist, all Ready and free of
// not-ready/unreachable taints (pods can be scheduled).
func clusterReady(ctx context.Context, cs kubernetes.Interface, n int) (bool, error) {
	if _, err := cs.CoreV1().Namespaces().Get(ctx, "default", metav1.GetOptions{}); err != nil {
		return false, err
	}
	if _, err := cs.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{}); err != nil {
		return false, err
	}
	nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return false, err
	}
	if len(nodes.Items) < n {
		return false, fmt.Errorf("%d of %d nodes exist", len(nodes.Items), n)
	}
	for _, node := range nodes.Items {
		ready := false
		for _, c := range node.Status.Conditions {
			if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
				ready = true
			}
		}
		if !ready {
			return false, fmt.Errorf("node %s is not Ready", node.Name)
		}
		for _, t := range node.Spec.Taints {
			if t.Key == corev1.TaintNodeNotReady || t.Key == corev1.TaintNodeUnreachable {
				return false, fmt.Errorf("node %s has taint %s", node.Name, t.Key)
			}
		}
	}
	return true, nil
}

// fakeNode returns node-<i>: managed by kwok (annotation), with its own
// InternalIP 172.31.0.<i> and pod CIDR 10.244.<i>.0/24.
func fakeNode(i int) *corev1.Node {
	name := fmt.Sprintf("node-%d", i)
	ip := nodeIPPrefix + strconv.Itoa(i)
	podCIDR := fmt.Sprintf("10.244.%d.0/24", i)
	capacity := corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse("32"),
		corev1.ResourceMemory: resource.MustParse("256Gi"),
		corev1.ResourcePods:   resource.MustParse("110"),
	}
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name: name,
			Annotations: map[string]string{
				kwokNodeAnnot:                        "fake",
				"e2e.bigip-operator.dev/internal-ip": ip,
				"node.alpha.kubernetes.io/ttl":       "0",
			},
			Labels: map[string]string{
				"type":                   "kwok",
				"kubernetes.io/hostname": name,
				"kubernetes.io/os":       "linux",
				"kubernetes.io/arch":     "amd64",
			},
		},
		Spec: corev1.NodeSpec{
			PodCIDR:  podCIDR,
			PodCIDRs: []string{podCIDR},
		},
		Status: corev1.NodeStatus{
			Addresses: []corev1.NodeAddress{
				{Type: corev1.NodeInternalIP, Address: ip},
				{Type: corev1.NodeHostName, Address: name},
			},
			Capacity:    capacity,
			Allocatable: capacity,
			NodeInfo: corev1.NodeSystemInfo{
				KubeletVersion:  kubeVersion,
				Architecture:    "amd64",
				OperatingSystem: "linux",
			},
		},
	}
}

func createNode(ctx context.Context, cs kubernetes.Interface, i int) error {
	_, err := cs.CoreV1().Nodes().Create(ctx, fakeNode(i), metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		return nil
	}
	return err
}
