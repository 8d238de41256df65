package render_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/convoy-gitops/convoy/internal/render"
)

// A render never opens a socket: generator files and envs and replacement
// paths that name http(s) URLs fail the render, and a server behind them
// sees no request.
func TestRemoteFilesNeverFetched(t *testing.T) {
	var requests atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		requests.Add(1)
		fmt.Fprint(w, "password=internal-secret\n")
	}))
	defer srv.Close()
	cm := configMap("app", "1")
	tests := map[string]string{
		"configMapGenerator files": "configMapGenerator:\n- name: leak\n  namespace: apps\n  files:\n  - " + srv.URL + "/files\n",
		"configMapGenerator envs":  "configMapGenerator:\n- name: leak\n  namespace: apps\n  envs:\n  - " + srv.URL + "/envs\n",
		"secretGenerator files":    "secretGenerator:\n- name: leak\n  namespace: apps\n  files:\n  - key=" + srv.URL + "/secret\n",
		"replacements path":        "replacements:\n- path: " + srv.URL + "/replacement.yaml\n",
	}
	for name, extra := range tests {
		t.Run(name, func(t *testing.T) {
			repo := writeRepo(t, map[string]string{
				"clusters/x/kustomization.yaml": kustomization("app.yaml") + extra,
				"clusters/x/app.yaml":           cm,
			})
			res, err := renderX(t, repo)
			if err == nil {
				t.Fatalf("rendered %v, want the remote file refused", ids(res.Objects))
			}
			if !strings.Contains(err.Error(), "remote file") || !strings.Contains(err.Error(), "not allowed") {
				t.Errorf("error = %v, want one refusing the remote file", err)
			}
		})
	}
	if n := requests.Load(); n != 0 {
		t.Errorf("the server saw %d requests, want 0", n)
	}
}

// A duplicate key before an alias bomb: the decoder stops at the key, so
// the old check never saw the bomb, and kyaml expanded it to gigabytes. The
// count on the node tree refuses it at once.
func TestAliasBombAfterDuplicateKey(t *testing.T) {
	bomb := billionLaughs("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  name: b\ndata:\n")
	repo := writeRepo(t, map[string]string{
		"clusters/x/kustomization.yaml": kustomization("a.yaml"),
		"clusters/x/a.yaml":             bomb,
	})
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	start := time.Now()
	_, err := renderX(t, repo)
	took := time.Since(start)
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	if err == nil || !strings.Contains(err.Error(), "clusters/x/a.yaml") || !strings.Contains(err.Error(), "excessive aliasing") {
		t.Fatalf("error = %v, want the file refused for its aliases", err)
	}
	if took > time.Second {
		t.Errorf("refused after %s, want under a second", took)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 100<<20 {
		t.Errorf("allocated %d MiB, want under 100", alloc>>20)
	}
}

func TestRenderBudgets(t *testing.T) {
	var objs []string
	files := map[string]string{}
	for i := range 30 {
		name := fmt.Sprintf("cm%d.yaml", i)
		objs = append(objs, name)
		files["clusters/x/"+name] = configMap(fmt.Sprintf("cm-%d", i), strings.Repeat("x", 1000))
	}
	files["clusters/x/kustomization.yaml"] = kustomization(objs...)
	repo := writeRepo(t, files)
	for _, tt := range []struct {
		name string
		r    render.Renderer
		want string
	}{
		{"objects", render.Renderer{MaxObjects: 20}, "cluster x: the render is over its budget of 20 (it has 30) objects"},
		{"bytes", render.Renderer{MaxBytes: 10_000}, "cluster x: the render is over its budget of 10000 (it has"},
		{"time", render.Renderer{Timeout: time.Nanosecond}, "cluster x: the render is over its budget of 1ns time"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.r.Cluster(context.Background(), repo, nil, testCluster())
			var be *render.BudgetError
			if !errors.As(err, &be) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %v, want a BudgetError %q", err, tt.want)
			}
		})
	}
	if _, err := (&render.Renderer{}).Cluster(context.Background(), repo, nil, testCluster()); err != nil {
		t.Errorf("within the default budgets: %v", err)
	}
}
