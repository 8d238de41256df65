package agent

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/convoy-gitops/convoy/internal/fleet"
	"github.com/convoy-gitops/convoy/internal/rollout"
	"github.com/convoy-gitops/convoy/internal/testenv"
)

// TestConnectReusesClients: the agent connects to a cluster for every
// drift reconcile and status refresh. Connects with an unchanged
// kubeconfig return the same Applier, whose REST mapper already knows the
// API groups, so a record read after the first sends no discovery
// request; a kubeconfig that now names another endpoint gets a new
// Applier, as do a rollout's connect, a connect after forget of this
// cluster (not of another) and one after a failed status read. Discovery
// requests are counted by the API server's own apiserver_request_total.
func TestConnectReusesClients(t *testing.T) {
	cs := testenv.Shared(t)
	c := cs.Get("staging")
	// Two proxies in front of the same API server: two endpoints of one
	// cluster. The kubeconfig names the first, later the second.
	p1, p2 := testenv.NewAPIProxy(t, c), testenv.NewAPIProxy(t, c)
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	if err := cs.KubeconfigVia(kubeconfig, p1); err != nil {
		t.Fatal(err)
	}

	a := &Agent{clusters: &rollout.Clusters{Kubeconfig: kubeconfig}}
	cluster := &fleet.Cluster{Name: "staging", Kubeconfig: fleet.KubeconfigRef{Context: "staging"}}
	ctx := context.Background()
	discovery := func() int {
		t.Helper()
		n, err := c.DiscoveryRequests(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	// read connects and reads the record, as a status refresh does, and
	// returns the Applier and the discovery requests it cost.
	read := func() (rollout.Cluster, int) {
		t.Helper()
		before := discovery()
		ap, err := a.clusters.Cached(testenv.Name(t))(ctx, cluster)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ap.ReadRecord(ctx); err != nil {
			t.Fatal(err)
		}
		return ap, discovery() - before
	}

	first, n := read()
	if n == 0 {
		t.Fatal("the first record read sent no discovery request; the count does not see them")
	}
	for i := range 2 {
		again, n := read()
		if again != first {
			t.Errorf("connect %d with the same kubeconfig built a new Applier", i+2)
		}
		if n != 0 {
			t.Errorf("record read %d sent %d discovery requests, want 0", i+2, n)
		}
	}

	// Another fleet's or cluster's forget keeps it; a rollout's connect
	// does not use it.
	a.clusters.Forget("other", "")
	a.clusters.Forget(testenv.Name(t), "other-cluster")
	if again, _ := read(); again != first {
		t.Error("forget of another fleet or cluster dropped this cluster's Applier")
	}
	if rollout, err := a.clusters.Connect(testenv.Name(t))(ctx, cluster); err != nil || rollout == first {
		t.Errorf("a rollout's connect: err %v, cached Applier %v; want a new one", err, rollout == first)
	}

	// After a rollout, or a reconcile or read of this cluster that failed,
	// the agent forgets it.
	a.clusters.Forget(testenv.Name(t), "")
	fresh, n := read()
	if fresh == first || n == 0 {
		t.Errorf("connect after forget: same Applier %v, %d discovery requests; want a new one that discovers", fresh == first, n)
	}

	if err := cs.KubeconfigVia(kubeconfig, p2); err != nil {
		t.Fatal(err)
	}
	moved, n := read()
	if moved == fresh {
		t.Error("connect after the kubeconfig moved to another endpoint reused the old Applier")
	}
	if n == 0 {
		t.Error("the new Applier sent no discovery request: it did not start afresh")
	}

	// A status read that fails (the endpoint down) drops the entry: the
	// read once the endpoint is back starts afresh.
	p2.Down()
	if st := a.clusterStatus(ctx, &fleet.Fleet{Name: testenv.Name(t)}, cluster); st.Error == "" {
		t.Fatal("status read with the endpoint down: no error")
	}
	if err := p2.Up(); err != nil {
		t.Fatal(err)
	}
	back, n := read()
	if back == moved || n == 0 {
		t.Errorf("read after a failed status read: same Applier %v, %d discovery requests; want a new one that discovers", back == moved, n)
	}
}
