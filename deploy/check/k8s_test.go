package check

import (
	"net"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"
)

// serveConfig is what the manifests' checks read of factory2.yml.
type serveConfig struct {
	State struct {
		Dir string `json:"dir"`
	} `json:"state"`
	Processing struct {
		TransactionTimeout string `json:"transaction_timeout"`
	} `json:"processing"`
	HTTP struct {
		Addr        string `json:"addr"`
		TLSCertFile string `json:"tls_cert_file"`
		TLSKeyFile  string `json:"tls_key_file"`
		// The token files, which must be on a mount too.
		TokenFile      string `json:"token_file"`
		AdminTokenFile string `json:"admin_token_file"`
		ReadTokenFile  string `json:"read_token_file"`
	} `json:"http"`
	InstanceID string `json:"instance_id"`
}

// TestKubernetesManifests: deploy/k8s decodes strictly into the Kubernetes
// API types, and its objects agree with each other and with the
// configuration they carry: the binary accepts the ConfigMap's
// configuration (factory2 config check), the probes and the Service reach
// its http.addr, the state directory is on the pod's own volume, each pod
// has its own instance_id, and the pod runs as non-root.
func TestKubernetesManifests(t *testing.T) {
	m, err := LoadManifests(deployPath("k8s"))
	if err != nil {
		t.Fatal(err)
	}
	sts := m.StatefulSets["factory2"]
	cm := m.ConfigMaps["factory2-config"]
	if sts == nil || cm == nil || m.Services["factory2"] == nil || m.Kustomization == nil {
		t.Fatalf("want the StatefulSet factory2, the ConfigMap factory2-config, the Service factory2 and a kustomization.yaml; have %v", m.Files)
	}
	checkKustomization(t, m)

	pod := sts.Spec.Template
	if len(pod.Spec.Containers) != 1 {
		t.Fatalf("pod: %d containers, want 1", len(pod.Spec.Containers))
	}
	c := pod.Spec.Containers[0]
	mounts := volumeMounts(t, sts, c)

	// The configuration: where the pod reads it, and what the binary says
	// of it.
	cfgPath := flagValue(c.Args, "--config")
	if !slices.Contains(c.Args, "serve") || cfgPath == "" {
		t.Fatalf("container args %q: want serve --config FILE", c.Args)
	}
	files := configFiles(t, pod.Spec, cm, mounts, cfgPath)
	text, ok := files[cfgPath]
	if !ok {
		t.Fatalf("--config %s: no ConfigMap key is mounted there (mounted: %v)", cfgPath, keys(files))
	}
	var cfg serveConfig
	if err := yaml.Unmarshal([]byte(text), &cfg); err != nil {
		t.Fatalf("%s: %v", cfgPath, err)
	}
	policy, err := os.ReadFile(deployPath("policies", "fedora.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if got := cm.Data["policies-fedora.yaml"]; got != string(policy) {
		t.Errorf("ConfigMap key policies-fedora.yaml differs from deploy/policies/fedora.yaml: copy it again")
	}
	configCheck(t, files, cfgPath)

	// instance_id: the pod's name, unless the file sets one (which every
	// replica would share).
	if cfg.InstanceID != "" {
		t.Errorf("factory2.yml sets instance_id %q: every replica would share it", cfg.InstanceID)
	}
	if e := env(c, "FACTORY2_INSTANCE_ID"); e == nil || e.ValueFrom == nil || e.ValueFrom.FieldRef == nil || e.ValueFrom.FieldRef.FieldPath != "metadata.name" {
		t.Errorf("env FACTORY2_INSTANCE_ID: %+v, want it from fieldRef metadata.name", e)
	}

	// State on the pod's own volume.
	stateMount := mountOf(mounts, cfg.State.Dir)
	if stateMount == nil {
		t.Errorf("state.dir %s: on no volume mount (the root file system is read-only)", cfg.State.Dir)
	} else if !slices.ContainsFunc(sts.Spec.VolumeClaimTemplates, func(p corev1.PersistentVolumeClaim) bool { return p.Name == stateMount.Name }) {
		t.Errorf("state.dir %s is on volume %s, not one of the volumeClaimTemplates: the state would not outlive the pod", cfg.State.Dir, stateMount.Name)
	} else if stateMount.ReadOnly {
		t.Errorf("state volume %s mounted read-only", stateMount.Name)
	}
	for _, f := range []string{cfg.HTTP.TLSCertFile, cfg.HTTP.TLSKeyFile} {
		if f != "" && mountOf(mounts, f) == nil {
			t.Errorf("http TLS file %s: on no volume mount", f)
		}
	}
	for _, f := range []string{cfg.HTTP.TokenFile, cfg.HTTP.AdminTokenFile, cfg.HTTP.ReadTokenFile} {
		if f != "" && mountOf(mounts, f) == nil {
			t.Errorf("http token file %s: on no volume mount", f)
		}
	}
	// The tokens' Secret: optional (the pod starts without it), read-only,
	// and where the ConfigMap's commented token files point.
	if m := mountOf(mounts, "/etc/factory2/http-tokens/token"); m == nil || !m.ReadOnly {
		t.Errorf("/etc/factory2/http-tokens: mount %+v, want the Secret factory2-http-tokens read-only", m)
	} else if i := slices.IndexFunc(pod.Spec.Volumes, func(v corev1.Volume) bool { return v.Name == m.Name }); i < 0 ||
		pod.Spec.Volumes[i].Secret == nil || pod.Spec.Volumes[i].Secret.SecretName != "factory2-http-tokens" ||
		pod.Spec.Volumes[i].Secret.Optional == nil || !*pod.Spec.Volumes[i].Secret.Optional {
		t.Errorf("volume %s: want the optional Secret factory2-http-tokens", m.Name)
	}
	if !strings.Contains(text, "token_file: /etc/factory2/http-tokens/token") {
		t.Errorf("factory2.yml does not show http.token_file in the Secret's mount")
	}

	// HTTP: probes, Service, scrape annotations.
	_, portText, err := net.SplitHostPort(cfg.HTTP.Addr)
	if err != nil {
		t.Fatalf("http.addr %q: %v", cfg.HTTP.Addr, err)
	}
	httpPort, _ := strconv.Atoi(portText)
	if host, _, _ := net.SplitHostPort(cfg.HTTP.Addr); host == "127.0.0.1" || host == "localhost" {
		t.Errorf("http.addr %s: loopback, the kubelet and Prometheus cannot reach it", cfg.HTTP.Addr)
	}
	scheme := corev1.URISchemeHTTP
	if cfg.HTTP.TLSCertFile != "" {
		scheme = corev1.URISchemeHTTPS
	}
	for name, p := range map[string]struct {
		probe *corev1.Probe
		path  string
	}{"liveness": {c.LivenessProbe, "/healthz"}, "readiness": {c.ReadinessProbe, "/readyz"}, "startup": {c.StartupProbe, "/healthz"}} {
		if p.probe == nil || p.probe.HTTPGet == nil {
			t.Errorf("%s probe: want an httpGet", name)
			continue
		}
		g := p.probe.HTTPGet
		if g.Path != p.path || containerPort(c, g.Port) != httpPort || g.Scheme != scheme {
			t.Errorf("%s probe: %s %s port %s (%d), want %s %s port %d (http.addr)", name, g.Scheme, g.Path, g.Port.String(), containerPort(c, g.Port), scheme, p.path, httpPort)
		}
	}
	if a := pod.Annotations; a["prometheus.io/scrape"] != "true" || a["prometheus.io/port"] != portText || a["prometheus.io/path"] != "/metrics" ||
		!strings.EqualFold(a["prometheus.io/scheme"], string(scheme)) {
		t.Errorf("pod scrape annotations %v: want scrape true, port %s, path /metrics, scheme %s", a, portText, scheme)
	}
	podLabels := labels.Set(pod.Labels)
	checkSelector(t, "StatefulSet selector", sts.Spec.Selector, podLabels)
	headless := m.Services[sts.Spec.ServiceName]
	if headless == nil || headless.Spec.ClusterIP != corev1.ClusterIPNone {
		t.Errorf("serviceName %q: want a headless Service of that name", sts.Spec.ServiceName)
	}
	for name, svc := range m.Services {
		if !labels.SelectorFromSet(svc.Spec.Selector).Matches(podLabels) || len(svc.Spec.Selector) == 0 {
			t.Errorf("Service %s: selector %v does not select the pods (%v)", name, svc.Spec.Selector, pod.Labels)
		}
		for _, p := range svc.Spec.Ports {
			if containerPort(c, p.TargetPort) != httpPort {
				t.Errorf("Service %s port %s: targetPort %s is not the HTTP port %d", name, p.Name, p.TargetPort.String(), httpPort)
			}
		}
	}
	for name, pdb := range m.Budgets {
		checkSelector(t, "PodDisruptionBudget "+name, pdb.Spec.Selector, podLabels)
	}
	checkServiceMonitors(t, m, scheme)

	// Security, resources, shutdown.
	psc, csc := pod.Spec.SecurityContext, c.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser == 0 {
		t.Errorf("pod securityContext %+v: want runAsNonRoot and a non-zero runAsUser", psc)
	}
	if csc == nil || csc.AllowPrivilegeEscalation == nil || *csc.AllowPrivilegeEscalation ||
		csc.ReadOnlyRootFilesystem == nil || !*csc.ReadOnlyRootFilesystem ||
		csc.Capabilities == nil || !slices.Contains(csc.Capabilities.Drop, "ALL") {
		t.Errorf("container securityContext %+v: want no privilege escalation, a read-only root and every capability dropped", csc)
	}
	// Measured: about 500 MB resident at 20,000 packages.
	measured := resource.MustParse("500M")
	req, lim := c.Resources.Requests[corev1.ResourceMemory], c.Resources.Limits[corev1.ResourceMemory]
	if req.Cmp(measured) < 0 || lim.Cmp(req) <= 0 {
		t.Errorf("memory request %s, limit %s: want the request at least the measured %s and the limit above it", req.String(), lim.String(), measured.String())
	}
	if _, ok := c.Resources.Requests[corev1.ResourceCPU]; !ok {
		t.Errorf("no cpu request")
	}
	txn := 30 * time.Second
	if cfg.Processing.TransactionTimeout != "" {
		if txn, err = time.ParseDuration(cfg.Processing.TransactionTimeout); err != nil {
			t.Fatalf("processing.transaction_timeout: %v", err)
		}
	}
	if g := pod.Spec.TerminationGracePeriodSeconds; g == nil || time.Duration(*g)*time.Second <= txn {
		t.Errorf("terminationGracePeriodSeconds %v: want more than processing.transaction_timeout (%v), for a clean commit", g, txn)
	}
}

// TestDecodeStrict: a misspelt or unknown field fails the manifests'
// decoding.
func TestDecodeStrict(t *testing.T) {
	data, err := os.ReadFile(deployPath("k8s", "statefulset.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "statefulset.yaml"), strings.Replace(string(data), "livenessProbe:", "livenesProbe:", 1))
	if _, err := LoadManifests(dir); err == nil || !strings.Contains(err.Error(), "livenesProbe") {
		t.Errorf("misspelt field: %v, want an error naming livenesProbe", err)
	}
	writeFile(t, filepath.Join(dir, "statefulset.yaml"), "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\n")
	if _, err := LoadManifests(dir); err == nil {
		t.Errorf("a kind the checks do not know: no error")
	}
}

func checkKustomization(t *testing.T, m *Manifests) {
	t.Helper()
	listed := map[string]bool{}
	for _, r := range m.Kustomization.Resources {
		if _, err := os.Stat(deployPath("k8s", r)); err != nil {
			t.Errorf("kustomization.yaml: resource %s: %v", r, err)
		}
		listed[r] = true
	}
	for obj, file := range m.Files {
		isMonitor := strings.HasPrefix(obj, "ServiceMonitor/")
		if obj == "Kustomization/" {
			continue
		}
		if listed[file] == isMonitor {
			t.Errorf("%s (%s): listed in kustomization.yaml is %v; want every file but the ServiceMonitor's (its CRD is optional)", obj, file, listed[file])
		}
	}
}

func checkSelector(t *testing.T, what string, sel *metav1.LabelSelector, set labels.Set) {
	t.Helper()
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil || s.Empty() || !s.Matches(set) {
		t.Errorf("%s %v does not select the pods (%v): %v", what, sel, set, err)
	}
}

func checkServiceMonitors(t *testing.T, m *Manifests, scheme corev1.URIScheme) {
	t.Helper()
	if len(m.ServiceMonitors) == 0 {
		t.Errorf("no ServiceMonitor")
	}
	for name, sm := range m.ServiceMonitors {
		sel, err := metav1.LabelSelectorAsSelector(&sm.Spec.Selector)
		if err != nil {
			t.Fatal(err)
		}
		var selected []*corev1.Service
		for _, svc := range m.Services {
			if sel.Matches(labels.Set(svc.Labels)) {
				selected = append(selected, svc)
			}
		}
		if len(selected) != 1 {
			t.Errorf("ServiceMonitor %s selects %d Services, want 1 (else each pod is scraped twice)", name, len(selected))
			continue
		}
		for _, e := range sm.Spec.Endpoints {
			if !slices.ContainsFunc(selected[0].Spec.Ports, func(p corev1.ServicePort) bool { return p.Name == e.Port }) ||
				e.Path != "/metrics" || !strings.EqualFold(e.Scheme, string(scheme)) {
				t.Errorf("ServiceMonitor %s endpoint %+v: want port a port name of Service %s, path /metrics, scheme %s", name, e, selected[0].Name, scheme)
			}
		}
	}
}

// volumeMounts are the container's mounts, each checked to name a volume
// of the pod or a volumeClaimTemplate.
func volumeMounts(t *testing.T, sts *appsv1.StatefulSet, c corev1.Container) []corev1.VolumeMount {
	t.Helper()
	for _, m := range c.VolumeMounts {
		if !slices.ContainsFunc(sts.Spec.Template.Spec.Volumes, func(v corev1.Volume) bool { return v.Name == m.Name }) &&
			!slices.ContainsFunc(sts.Spec.VolumeClaimTemplates, func(p corev1.PersistentVolumeClaim) bool { return p.Name == m.Name }) {
			t.Errorf("volume mount %s at %s: no volume or volumeClaimTemplate of that name", m.Name, m.MountPath)
		}
	}
	return c.VolumeMounts
}

// mountOf is the mount holding path: the longest mount path it is under.
func mountOf(mounts []corev1.VolumeMount, p string) *corev1.VolumeMount {
	var best *corev1.VolumeMount
	for i, m := range mounts {
		if (p == m.MountPath || strings.HasPrefix(p, strings.TrimSuffix(m.MountPath, "/")+"/")) &&
			(best == nil || len(m.MountPath) > len(best.MountPath)) {
			best = &mounts[i]
		}
	}
	return best
}

// configFiles are the files the ConfigMap cm puts in the container, by
// their path there.
func configFiles(t *testing.T, spec corev1.PodSpec, cm *corev1.ConfigMap, mounts []corev1.VolumeMount, cfgPath string) map[string]string {
	t.Helper()
	files := map[string]string{}
	for _, v := range spec.Volumes {
		if v.ConfigMap == nil || v.ConfigMap.Name != cm.Name {
			continue
		}
		for _, m := range mounts {
			if m.Name != v.Name {
				continue
			}
			if len(v.ConfigMap.Items) == 0 {
				for k, text := range cm.Data {
					files[path.Join(m.MountPath, k)] = text
				}
			}
			for _, it := range v.ConfigMap.Items {
				text, ok := cm.Data[it.Key]
				if !ok {
					t.Errorf("volume %s: item key %s is not in ConfigMap %s", v.Name, it.Key, cm.Name)
				}
				files[path.Join(m.MountPath, it.Path)] = text
			}
		}
	}
	return files
}

// configCheck lays files out under a temporary directory as the pod sees
// them and runs `factory2 config check` on the configuration.
func configCheck(t *testing.T, files map[string]string, cfgPath string) {
	t.Helper()
	root := t.TempDir()
	for p, text := range files {
		local := filepath.Join(root, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(local), 0o755); err != nil {
			t.Fatal(err)
		}
		writeFile(t, local, text)
	}
	out, err := exec.Command(factory2(t), "config", "check", filepath.Join(root, filepath.FromSlash(cfgPath))).CombinedOutput()
	if err != nil {
		t.Errorf("factory2 config check of the ConfigMap's %s: %v\n%s", cfgPath, err, out)
	}
}

func containerPort(c corev1.Container, p intstr.IntOrString) int {
	if p.Type == intstr.Int {
		return p.IntValue()
	}
	for _, cp := range c.Ports {
		if cp.Name == p.StrVal {
			return int(cp.ContainerPort)
		}
	}
	return -1
}

func env(c corev1.Container, name string) *corev1.EnvVar {
	for i, e := range c.Env {
		if e.Name == name {
			return &c.Env[i]
		}
	}
	return nil
}

func flagValue(args []string, flag string) string {
	for i, a := range args {
		if a == flag && i+1 < len(args) {
			return args[i+1]
		}
		if v, ok := strings.CutPrefix(a, flag+"="); ok {
			return v
		}
	}
	return ""
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
