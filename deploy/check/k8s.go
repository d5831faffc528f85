package check

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// Manifests are the objects of deploy/k8s, decoded strictly into their
// Kubernetes API types: an unknown or misspelt field is an error, as with
// kubectl apply --validate=strict.
type Manifests struct {
	ConfigMaps      map[string]*corev1.ConfigMap
	StatefulSets    map[string]*appsv1.StatefulSet
	Services        map[string]*corev1.Service
	Budgets         map[string]*policyv1.PodDisruptionBudget
	ServiceMonitors map[string]*ServiceMonitor
	Kustomization   *Kustomization
	// Files maps each object ("Kind/name") to its file's base name.
	Files map[string]string
}

// ServiceMonitor is the part of the Prometheus Operator's ServiceMonitor
// (monitoring.coreos.com/v1) that deploy/k8s uses; any other field is an
// error here, so add it when the manifest needs it.
type ServiceMonitor struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		Selector  metav1.LabelSelector `json:"selector"`
		Endpoints []struct {
			Port     string `json:"port"`
			Path     string `json:"path"`
			Scheme   string `json:"scheme"`
			Interval string `json:"interval"`
		} `json:"endpoints"`
	} `json:"spec"`
}

// Kustomization is the part of kustomize's Kustomization deploy/k8s uses.
type Kustomization struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Resources  []string `json:"resources"`
}

// LoadManifests decodes every *.yaml file of dir, every document of each.
func LoadManifests(dir string) (*Manifests, error) {
	m := &Manifests{
		ConfigMaps: map[string]*corev1.ConfigMap{}, StatefulSets: map[string]*appsv1.StatefulSet{},
		Services: map[string]*corev1.Service{}, Budgets: map[string]*policyv1.PodDisruptionBudget{},
		ServiceMonitors: map[string]*ServiceMonitor{}, Files: map[string]string{},
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("%s: no *.yaml file", dir)
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		for i, doc := range splitYAML(data) {
			if err := m.add(filepath.Base(f), doc); err != nil {
				return nil, fmt.Errorf("%s, document %d: %w", f, i+1, err)
			}
		}
	}
	return m, nil
}

// splitYAML splits a YAML stream at its "---" lines, dropping documents
// with nothing but comments.
func splitYAML(data []byte) [][]byte {
	var docs [][]byte
	var cur bytes.Buffer
	flush := func() {
		for line := range strings.Lines(cur.String()) {
			if t := strings.TrimSpace(line); t != "" && !strings.HasPrefix(t, "#") {
				docs = append(docs, bytes.Clone(cur.Bytes()))
				break
			}
		}
		cur.Reset()
	}
	for line := range bytes.Lines(data) {
		if strings.TrimRight(string(line), " \r\n") == "---" {
			flush()
			continue
		}
		cur.Write(line)
	}
	flush()
	return docs
}

// DecodeStrict decodes one YAML document into obj, refusing unknown and
// duplicate fields.
func DecodeStrict(doc []byte, obj any) error {
	return yaml.UnmarshalStrict(doc, obj)
}

func (m *Manifests) add(file string, doc []byte) error {
	var tm metav1.TypeMeta
	if err := yaml.Unmarshal(doc, &tm); err != nil {
		return err
	}
	var obj interface{ GetName() string }
	switch tm.APIVersion + " " + tm.Kind {
	case "v1 ConfigMap":
		o := &corev1.ConfigMap{}
		obj = o
		defer func() { m.ConfigMaps[o.Name] = o }()
	case "apps/v1 StatefulSet":
		o := &appsv1.StatefulSet{}
		obj = o
		defer func() { m.StatefulSets[o.Name] = o }()
	case "v1 Service":
		o := &corev1.Service{}
		obj = o
		defer func() { m.Services[o.Name] = o }()
	case "policy/v1 PodDisruptionBudget":
		o := &policyv1.PodDisruptionBudget{}
		obj = o
		defer func() { m.Budgets[o.Name] = o }()
	case "monitoring.coreos.com/v1 ServiceMonitor":
		o := &ServiceMonitor{}
		obj = o
		defer func() { m.ServiceMonitors[o.Name] = o }()
	case "kustomize.config.k8s.io/v1beta1 Kustomization":
		if err := DecodeStrict(doc, &m.Kustomization); err != nil {
			return err
		}
		m.Files["Kustomization/"] = file
		return nil
	default:
		return fmt.Errorf("apiVersion %q kind %q: not a kind these checks know; teach LoadManifests", tm.APIVersion, tm.Kind)
	}
	if err := DecodeStrict(doc, obj); err != nil {
		return fmt.Errorf("%s: %w", tm.Kind, err)
	}
	if obj.GetName() == "" {
		return fmt.Errorf("%s without metadata.name", tm.Kind)
	}
	key := tm.Kind + "/" + obj.GetName()
	if prev, dup := m.Files[key]; dup {
		return fmt.Errorf("%s also in %s", key, prev)
	}
	m.Files[key] = file
	return nil
}
