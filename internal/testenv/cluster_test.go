package testenv_test

import (
	"context"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fluxcd/cli-utils/pkg/kstatus/polling"
	"github.com/fluxcd/pkg/ssa"
	ssautils "github.com/fluxcd/pkg/ssa/utils"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/convoy-gitops/convoy/internal/testenv"
)

func loadObjects(t *testing.T) []*unstructured.Unstructured {
	t.Helper()
	data, err := os.ReadFile("testdata/app.yaml")
	if err != nil {
		t.Fatal(err)
	}
	objs, err := ssautils.ReadObjects(strings.NewReader(string(data)))
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

// TestThreeClustersServerSideApply proves the harness end to end: three
// independent control planes, one of them full, each taking a server-side
// apply, and the full one running the Deployment's Pods until kstatus says
// it is Current (Available).
func TestThreeClustersServerSideApply(t *testing.T) {
	cs := testenv.Start(t,
		testenv.Spec{Name: "staging", Flavour: testenv.Full},
		testenv.Spec{Name: "prod-primary"},
		testenv.Spec{Name: "prod-secondary"},
	)

	// The merged kubeconfig has a context per cluster, each reaching its own API server.
	kc, err := clientcmd.LoadFromFile(cs.KubeconfigFile)
	if err != nil {
		t.Fatal(err)
	}
	hosts := map[string]bool{}
	for _, name := range []string{"staging", "prod-primary", "prod-secondary"} {
		ctx, ok := kc.Contexts[name]
		if !ok {
			t.Fatalf("kubeconfig has no context %q", name)
		}
		hosts[kc.Clusters[ctx.Cluster].Server] = true
	}
	if len(hosts) != 3 {
		t.Fatalf("want 3 distinct API servers, got %v", hosts)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	for _, c := range cs.Items {
		wg.Add(1)
		go func() {
			defer wg.Done()
			applyAndCheck(ctx, t, c)
		}()
	}
	wg.Wait()
}

func applyAndCheck(ctx context.Context, t *testing.T, c *testenv.Cluster) {
	before, err := c.RequestCounts(ctx, nil)
	if err != nil {
		t.Error(err)
		return
	}
	poller := polling.NewStatusPoller(c.Client, c.Client.RESTMapper(), polling.Options{})
	rm := ssa.NewResourceManager(c.Client, poller, ssa.Owner{Field: "convoy", Group: "convoy.dev"})
	objs := loadObjects(t)
	cs, err := rm.ApplyAllStaged(ctx, objs, ssa.DefaultApplyOptions())
	if err != nil {
		t.Errorf("cluster %s: apply: %v", c.Name, err)
		return
	}
	if len(cs.Entries) != len(objs) {
		t.Errorf("cluster %s: change set has %d entries, want %d", c.Name, len(cs.Entries), len(objs))
	}
	after, err := c.RequestCounts(ctx, nil)
	if err != nil {
		t.Error(err)
		return
	}
	if n := after.Sub(before)["APPLY"]; n < len(objs) {
		t.Errorf("cluster %s: API server counted %d APPLY requests, want at least %d", c.Name, n, len(objs))
	}

	// Every object exists, managed by convoy's field manager.
	for _, o := range objs {
		got := &unstructured.Unstructured{}
		got.SetGroupVersionKind(o.GroupVersionKind())
		if err := c.Client.Get(ctx, client.ObjectKeyFromObject(o), got); err != nil {
			t.Errorf("cluster %s: %s: %v", c.Name, ssautils.FmtUnstructured(o), err)
			continue
		}
		managers := []string{}
		for _, mf := range got.GetManagedFields() {
			managers = append(managers, mf.Manager)
		}
		if !slices.Contains(managers, "convoy") {
			t.Errorf("cluster %s: %s managed by %v, want convoy among them", c.Name, ssautils.FmtUnstructured(o), managers)
		}
	}

	var dep appsv1.Deployment
	if err := c.Client.Get(ctx, client.ObjectKey{Namespace: "proof", Name: "app"}, &dep); err != nil {
		t.Error(err)
		return
	}
	if c.Flavour != testenv.Full {
		// No controllers: the Deployment is stored but never progresses.
		if dep.Status.ObservedGeneration != 0 {
			t.Errorf("cluster %s: api-only cluster reconciled the Deployment: %+v", c.Name, dep.Status)
		}
		return
	}
	opts := ssa.DefaultWaitOptions()
	opts.Timeout = 60 * time.Second
	if err := rm.WaitForSetWithContext(ctx, cs.ToObjMetadataSet(), opts); err != nil {
		t.Errorf("cluster %s: wait: %v\nscheduler: %s\nkwok: %s", c.Name, err, c.Logs("kube-scheduler"), c.Logs("kwok"))
		return
	}
	if err := c.Client.Get(ctx, client.ObjectKey{Namespace: "proof", Name: "app"}, &dep); err != nil {
		t.Error(err)
		return
	}
	if dep.Status.AvailableReplicas != 3 {
		t.Errorf("cluster %s: %d available replicas, want 3", c.Name, dep.Status.AvailableReplicas)
	}
	var pods corev1.PodList
	if err := c.Client.List(ctx, &pods, client.InNamespace("proof")); err != nil {
		t.Error(err)
		return
	}
	for _, p := range pods.Items {
		if p.Spec.NodeName == "" || p.Status.Phase != corev1.PodRunning {
			t.Errorf("cluster %s: pod %s on node %q in phase %s, want scheduled and Running", c.Name, p.Name, p.Spec.NodeName, p.Status.Phase)
		}
	}
}
