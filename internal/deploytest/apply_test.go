package deploytest_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/convoy-gitops/convoy/internal/testenv"
)

// warnings collects the API server's Warning headers (deprecated APIs,
// dropped fields).
type warnings struct {
	mu   sync.Mutex
	list []string
}

func (w *warnings) HandleWarningHeader(_ int, _ string, text string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.list = append(w.list, text)
}

func (w *warnings) take() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := w.list
	w.list = nil
	return out
}

// TestChartServerSideDryRun server-side applies each case's rendered objects
// with dryRun=All to a real kube-apiserver: every object must pass the API
// server's validation and its schema (server-side apply refuses a field the
// type does not declare), with no warning. The ServiceMonitor is checked
// against a minimal CRD with the Prometheus Operator's field names.
func TestChartServerSideDryRun(t *testing.T) {
	cluster := testenv.Start(t, testenv.Spec{Name: "chart"}).Items[0]
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// A client of its own that knows CRDs and records warnings.
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	if err := apiextensionsv1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	var warned warnings
	cfg := rest.CopyConfig(cluster.Config)
	cfg.WarningHandler = &warned
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	installCRD(ctx, t, c, "testdata/servicemonitor-crd.yaml")

	chrt := loadChart(t)
	for i, tc := range chartCases() {
		t.Run(tc.name, func(t *testing.T) {
			ns := fmt.Sprintf("chart-%d", i)
			if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: objectMeta(ns)}); err != nil {
				t.Fatalf("create namespace %s: %v", ns, err)
			}
			r := mustRender(t, chrt, ns, tc.values)
			if len(r.objs) != len(tc.wantObjects) {
				t.Fatalf("rendered %v, want %d objects", r.ids(), len(tc.wantObjects))
			}
			for _, obj := range r.objs {
				if err := dryRunApply(ctx, c, obj); err != nil {
					t.Error(err)
				}
			}
			if w := warned.take(); len(w) > 0 {
				t.Errorf("API server warnings: %q", w)
			}
			// dryRun=All stored nothing.
			err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "convoy"}, &appsv1.Deployment{})
			if !apierrors.IsNotFound(err) {
				t.Errorf("get Deployment after a dry run: %v, want NotFound", err)
			}
		})
	}

	// The check can fail: a field the Deployment type does not have, and one
	// the ServiceMonitor CRD does not have, are refused.
	t.Run("unknown fields are refused", func(t *testing.T) {
		ns := "chart-unknown-fields"
		if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: objectMeta(ns)}); err != nil {
			t.Fatalf("create namespace %s: %v", ns, err)
		}
		r := mustRender(t, chrt, ns, "repo: {url: "+repoURL+"}\nserviceMonitor: {enabled: true}")
		for kind, path := range map[string][]string{
			"Deployment":     {"spec", "template", "spec", "restartPolicyy"},
			"ServiceMonitor": {"spec", "endpoint"},
		} {
			obj := r.one(t, kind).DeepCopy()
			if err := unstructured.SetNestedField(obj.Object, "x", path...); err != nil {
				t.Fatal(err)
			}
			err := dryRunApply(ctx, c, obj)
			if err == nil || !strings.Contains(err.Error(), path[len(path)-1]) {
				t.Errorf("%s with .%s: error %v, want one naming the field", kind, strings.Join(path, "."), err)
			}
		}
		warned.take()
	})

	// The namespaces' Pod Security admission would say so if the chart's pod
	// template broke the restricted profile.
	t.Run("pod security warns", func(t *testing.T) {
		ns := "chart-pod-security"
		if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: objectMeta(ns)}); err != nil {
			t.Fatalf("create namespace %s: %v", ns, err)
		}
		dep := mustRender(t, chrt, ns, "repo: {url: "+repoURL+"}").one(t, "Deployment").DeepCopy()
		containers, _, _ := unstructured.NestedSlice(dep.Object, "spec", "template", "spec", "containers")
		if err := unstructured.SetNestedField(containers[0].(map[string]any), true, "securityContext", "allowPrivilegeEscalation"); err != nil {
			t.Fatal(err)
		}
		if err := unstructured.SetNestedSlice(dep.Object, containers, "spec", "template", "spec", "containers"); err != nil {
			t.Fatal(err)
		}
		if err := dryRunApply(ctx, c, dep); err != nil {
			t.Fatal(err)
		}
		if w := warned.take(); len(w) == 0 || !strings.Contains(strings.Join(w, "\n"), "allowPrivilegeEscalation") {
			t.Errorf("warnings %q, want one about allowPrivilegeEscalation", w)
		}
	})
}

// dryRunApply server-side applies obj with dryRun=All.
func dryRunApply(ctx context.Context, c client.Client, obj *unstructured.Unstructured) error {
	id := obj.GetAPIVersion() + "/" + obj.GetKind() + "/" + obj.GetNamespace() + "/" + obj.GetName()
	err := c.Apply(ctx, client.ApplyConfigurationFromUnstructured(obj.DeepCopy()),
		client.DryRunAll, client.ForceOwnership, client.FieldOwner("convoy-chart-test"))
	if err != nil {
		return fmt.Errorf("%s dry-run apply failed: %w", id, err)
	}
	return nil
}

// installCRD creates the CRD in file and waits until it is served.
func installCRD(ctx context.Context, t *testing.T, c client.Client, file string) {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	crd := &apiextensionsv1.CustomResourceDefinition{}
	if err := yaml.UnmarshalStrict(data, crd); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	if err := c.Create(ctx, crd); err != nil {
		t.Fatalf("create CRD %s: %v", crd.Name, err)
	}
	for {
		got := &apiextensionsv1.CustomResourceDefinition{}
		if err := c.Get(ctx, client.ObjectKeyFromObject(crd), got); err == nil {
			for _, cond := range got.Status.Conditions {
				if cond.Type == apiextensionsv1.Established && cond.Status == apiextensionsv1.ConditionTrue {
					return
				}
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("CRD %s not established: %v", crd.Name, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// objectMeta names a namespace whose Pod Security admission warns about any
// pod template that breaks the restricted profile.
func objectMeta(name string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: name, Labels: map[string]string{
		"pod-security.kubernetes.io/enforce": "restricted",
		"pod-security.kubernetes.io/warn":    "restricted",
	}}
}
