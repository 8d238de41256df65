package deploytest_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// The chart's NetworkPolicy lets traffic in to the HTTP port only, from the
// release namespace by default or from the sources given, and selects the
// agent's pods.
func TestChartNetworkPolicy(t *testing.T) {
	c := loadChart(t)
	http := intstr.FromString("http")
	for _, tt := range []struct {
		values string
		from   []networkingv1.NetworkPolicyPeer
	}{
		{"repo: {url: " + repoURL + "}", []networkingv1.NetworkPolicyPeer{{NamespaceSelector: selector("kubernetes.io/metadata.name", "convoy-system")}}},
		{"repo: {url: " + repoURL + "}\nnetworkPolicy: {from: [{namespaceSelector: {matchLabels: {team: edge}}}]}", []networkingv1.NetworkPolicyPeer{{NamespaceSelector: selector("team", "edge")}}},
	} {
		r := mustRender(t, c, "convoy-system", tt.values)
		np := decode[networkingv1.NetworkPolicy](t, r, "NetworkPolicy")
		dep := decode[appsv1.Deployment](t, r, "Deployment")
		if !selects(np.Spec.PodSelector.MatchLabels, dep.Spec.Template.Labels) {
			t.Errorf("NetworkPolicy selects %v, not the agent's pods %v", np.Spec.PodSelector.MatchLabels, dep.Spec.Template.Labels)
		}
		if len(np.Spec.Ingress) != 1 || len(np.Spec.Ingress[0].Ports) != 1 || *np.Spec.Ingress[0].Ports[0].Port != http {
			t.Fatalf("ingress %+v, want the http port only", np.Spec.Ingress)
		}
		if diff := cmp.Diff(tt.from, np.Spec.Ingress[0].From); diff != "" {
			t.Errorf("from (-want +got):\n%s", diff)
		}
	}
	r := mustRender(t, c, "convoy-system", "repo: {url: "+repoURL+"}\nnetworkPolicy: {enabled: false}")
	for _, o := range r.objs {
		if o.GetKind() == "NetworkPolicy" {
			t.Error("a NetworkPolicy with networkPolicy.enabled false")
		}
	}
}

func selector(key, value string) *metav1.LabelSelector {
	return &metav1.LabelSelector{MatchLabels: map[string]string{key: value}}
}
