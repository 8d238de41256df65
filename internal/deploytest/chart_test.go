package deploytest_test

import (
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"
)

// chartCase is one set of values and what the chart must render from it.
type chartCase struct {
	name   string
	values string // YAML over values.yaml
	// wantObjects are Kind/name; every object is in the release namespace.
	wantObjects   []string
	wantReplicas  int32
	wantImage     string
	wantResources corev1.ResourceRequirements
	wantRules     []rbacv1.PolicyRule
	// wantConfig is the agent's config file, as YAML; NAMESPACE stands for
	// the release namespace.
	wantConfig string
	// wantFiles maps each file the agent reads (the --config file and every
	// *File in its config) to the ConfigMap or Secret key behind it.
	wantFiles map[string]string
}

var baseObjects = []string{
	"ConfigMap/convoy", "Deployment/convoy", "NetworkPolicy/convoy", "PodDisruptionBudget/convoy", "Role/convoy",
	"RoleBinding/convoy", "Service/convoy", "ServiceAccount/convoy",
}

// leaseRules let one agent hold the Lease named name; create cannot be
// narrowed by name in RBAC.
func leaseRules(name string) []rbacv1.PolicyRule {
	return []rbacv1.PolicyRule{
		{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, Verbs: []string{"create"}},
		{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, ResourceNames: []string{name}, Verbs: []string{"get", "update"}},
	}
}

var eventRule = rbacv1.PolicyRule{
	APIGroups: []string{"", "events.k8s.io"}, Resources: []string{"events"}, Verbs: []string{"create", "patch"},
}

func resources(reqCPU, reqMem, limCPU, limMem string) corev1.ResourceRequirements {
	return corev1.ResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(reqCPU), corev1.ResourceMemory: resource.MustParse(reqMem)},
		Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(limCPU), corev1.ResourceMemory: resource.MustParse(limMem)},
	}
}

func chartCases() []chartCase {
	return []chartCase{
		{
			name:          "defaults",
			values:        "repo: {url: " + repoURL + "}",
			wantObjects:   baseObjects,
			wantReplicas:  2,
			wantImage:     "ghcr.io/convoy-gitops/convoy:0.1.0",
			wantResources: resources("100m", "256Mi", "1", "1Gi"),
			wantRules:     append(leaseRules("convoy"), eventRule),
			wantConfig: `
apiVersion: convoy.dev/v1alpha1
kind: AgentConfig
repo:
  url: ` + repoURL + `
  branch: main
  pollInterval: 1m
  verify: {mode: "off"}
kubeconfig: {file: /etc/convoy/kubeconfig/config}
listen: {http: ":8080"}
leaderElection: {enabled: true, namespace: NAMESPACE, leaseName: convoy}
log: {format: json, level: info}
`,
			wantFiles: map[string]string{
				"/etc/convoy/config.yaml":       "ConfigMap/convoy:config.yaml",
				"/etc/convoy/kubeconfig/config": "Secret/convoy-kubeconfig:config",
			},
		},
		{
			name: "servicemonitor, 3 replicas, no leader election, GitHub and webhook, custom resources",
			values: `
replicaCount: 3
repo: {url: ` + repoURL + `}
leaderElection: {enabled: false}
github: {api: "https://github.example.com/api/v3/", tokenSecretName: convoy-github, repo: platform/fleet-config}
webhook: {secretName: convoy-webhook}
serviceMonitor: {enabled: true, interval: 15s, labels: {release: prometheus}}
resources:
  requests: {cpu: 250m, memory: 512Mi}
  limits: {cpu: 2, memory: 2Gi}
`,
			wantObjects:   append([]string{"ServiceMonitor/convoy"}, baseObjects...),
			wantReplicas:  3,
			wantImage:     "ghcr.io/convoy-gitops/convoy:0.1.0",
			wantResources: resources("250m", "512Mi", "2", "2Gi"),
			wantRules:     []rbacv1.PolicyRule{eventRule},
			wantConfig: `
apiVersion: convoy.dev/v1alpha1
kind: AgentConfig
repo:
  url: ` + repoURL + `
  branch: main
  pollInterval: 1m
  verify: {mode: "off"}
kubeconfig: {file: /etc/convoy/kubeconfig/config}
github: {api: "https://github.example.com/api/v3/", tokenFile: /var/run/secrets/convoy/github/token, repo: platform/fleet-config}
webhook: {secretFile: /var/run/secrets/convoy/webhook/secret}
listen: {http: ":8080"}
leaderElection: {enabled: false, namespace: NAMESPACE, leaseName: convoy}
log: {format: json, level: info}
`,
			wantFiles: map[string]string{
				"/etc/convoy/config.yaml":                "ConfigMap/convoy:config.yaml",
				"/etc/convoy/kubeconfig/config":          "Secret/convoy-kubeconfig:config",
				"/var/run/secrets/convoy/github/token":   "Secret/convoy-github:token",
				"/var/run/secrets/convoy/webhook/secret": "Secret/convoy-webhook:secret",
			},
		},
		{
			name: "git token, signed head, own kubeconfig key, pinned image, text logs",
			values: `
image: {repository: registry.example.com/convoy, tag: v1.2.3, pullPolicy: Always}
repo:
  url: ` + repoURL + `
  branch: release
  pollInterval: 30s
  auth: {method: token, secretName: fleet-git}
  verify: {mode: head, keysSecretName: fleet-keys}
kubeconfig: {secretName: fleet-clusters, key: kubeconfig.yaml}
leaderElection: {leaseName: convoy-prod}
log: {format: text, level: debug}
`,
			wantObjects:   baseObjects,
			wantReplicas:  2,
			wantImage:     "registry.example.com/convoy:v1.2.3",
			wantResources: resources("100m", "256Mi", "1", "1Gi"),
			wantRules:     append(leaseRules("convoy-prod"), eventRule),
			wantConfig: `
apiVersion: convoy.dev/v1alpha1
kind: AgentConfig
repo:
  url: ` + repoURL + `
  branch: release
  pollInterval: 30s
  auth: {tokenFile: /var/run/secrets/convoy/git/token}
  verify: {mode: head, keysFile: /var/run/secrets/convoy/gpg/keys.asc}
kubeconfig: {file: /etc/convoy/kubeconfig/config}
listen: {http: ":8080"}
leaderElection: {enabled: true, namespace: NAMESPACE, leaseName: convoy-prod}
log: {format: text, level: debug}
`,
			wantFiles: map[string]string{
				"/etc/convoy/config.yaml":              "ConfigMap/convoy:config.yaml",
				"/etc/convoy/kubeconfig/config":        "Secret/fleet-clusters:kubeconfig.yaml",
				"/var/run/secrets/convoy/git/token":    "Secret/fleet-git:token",
				"/var/run/secrets/convoy/gpg/keys.asc": "Secret/fleet-keys:keys.asc",
			},
		},
		{
			name: "GitHub App, status token, network policy sources, kubeconfig Secrets",
			values: `
repo: {url: ` + repoURL + `}
rbac: {kubeconfigSecrets: [edge-kubeconfig, dr-kubeconfig]}
github: {repo: platform/fleet-config, app: {id: 12345, installationID: 678, privateKeySecretName: convoy-app}}
statusToken: {secretName: convoy-status}
networkPolicy: {from: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: ingress-nginx}}}]}
`,
			wantObjects:   baseObjects,
			wantReplicas:  2,
			wantImage:     "ghcr.io/convoy-gitops/convoy:0.1.0",
			wantResources: resources("100m", "256Mi", "1", "1Gi"),
			wantRules: append(leaseRules("convoy"),
				rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"secrets"}, ResourceNames: []string{"edge-kubeconfig", "dr-kubeconfig"}, Verbs: []string{"get"}},
				eventRule),
			wantConfig: `
apiVersion: convoy.dev/v1alpha1
kind: AgentConfig
repo:
  url: ` + repoURL + `
  branch: main
  pollInterval: 1m
  verify: {mode: "off"}
kubeconfig: {file: /etc/convoy/kubeconfig/config}
github:
  api: https://api.github.com/
  app: {id: 12345, installationID: 678, privateKeyFile: /var/run/secrets/convoy/github-app/private-key.pem}
  repo: platform/fleet-config
listen: {http: ":8080", statusTokenFile: /var/run/secrets/convoy/status/token}
leaderElection: {enabled: true, namespace: NAMESPACE, leaseName: convoy}
log: {format: json, level: info}
`,
			wantFiles: map[string]string{
				"/etc/convoy/config.yaml":                            "ConfigMap/convoy:config.yaml",
				"/etc/convoy/kubeconfig/config":                      "Secret/convoy-kubeconfig:config",
				"/var/run/secrets/convoy/github-app/private-key.pem": "Secret/convoy-app:private-key.pem",
				"/var/run/secrets/convoy/status/token":               "Secret/convoy-status:token",
			},
		},
		{
			name:          "git basic auth",
			values:        "repo: {url: " + repoURL + ", auth: {method: basic, secretName: fleet-git}}",
			wantObjects:   baseObjects,
			wantReplicas:  2,
			wantImage:     "ghcr.io/convoy-gitops/convoy:0.1.0",
			wantResources: resources("100m", "256Mi", "1", "1Gi"),
			wantRules:     append(leaseRules("convoy"), eventRule),
			wantConfig: `
apiVersion: convoy.dev/v1alpha1
kind: AgentConfig
repo:
  url: ` + repoURL + `
  branch: main
  pollInterval: 1m
  auth: {usernameFile: /var/run/secrets/convoy/git/username, passwordFile: /var/run/secrets/convoy/git/password}
  verify: {mode: "off"}
kubeconfig: {file: /etc/convoy/kubeconfig/config}
listen: {http: ":8080"}
leaderElection: {enabled: true, namespace: NAMESPACE, leaseName: convoy}
log: {format: json, level: info}
`,
			wantFiles: map[string]string{
				"/etc/convoy/config.yaml":              "ConfigMap/convoy:config.yaml",
				"/etc/convoy/kubeconfig/config":        "Secret/convoy-kubeconfig:config",
				"/var/run/secrets/convoy/git/username": "Secret/fleet-git:username",
				"/var/run/secrets/convoy/git/password": "Secret/fleet-git:password",
			},
		},
		{
			name:          "git ssh",
			values:        "repo: {url: 'ssh://git@git.example.com/platform/fleet-config.git', auth: {method: ssh, secretName: fleet-ssh}}",
			wantObjects:   baseObjects,
			wantReplicas:  2,
			wantImage:     "ghcr.io/convoy-gitops/convoy:0.1.0",
			wantResources: resources("100m", "256Mi", "1", "1Gi"),
			wantRules:     append(leaseRules("convoy"), eventRule),
			wantConfig: `
apiVersion: convoy.dev/v1alpha1
kind: AgentConfig
repo:
  url: ssh://git@git.example.com/platform/fleet-config.git
  branch: main
  pollInterval: 1m
  auth: {sshKeyFile: /var/run/secrets/convoy/git/identity, knownHostsFile: /var/run/secrets/convoy/git/known_hosts}
  verify: {mode: "off"}
kubeconfig: {file: /etc/convoy/kubeconfig/config}
listen: {http: ":8080"}
leaderElection: {enabled: true, namespace: NAMESPACE, leaseName: convoy}
log: {format: json, level: info}
`,
			wantFiles: map[string]string{
				"/etc/convoy/config.yaml":                 "ConfigMap/convoy:config.yaml",
				"/etc/convoy/kubeconfig/config":           "Secret/convoy-kubeconfig:config",
				"/var/run/secrets/convoy/git/identity":    "Secret/fleet-ssh:identity",
				"/var/run/secrets/convoy/git/known_hosts": "Secret/fleet-ssh:known_hosts",
			},
		},
	}
}

// TestChartRenders renders the chart for each case and checks every object
// the agent's deployment depends on.
func TestChartRenders(t *testing.T) {
	c := loadChart(t)
	if c.Metadata.AppVersion != "0.1.0" {
		t.Fatalf("Chart.yaml appVersion = %q; the cases expect the image tag 0.1.0 from it", c.Metadata.AppVersion)
	}
	const ns = "convoy-system"
	for _, tc := range chartCases() {
		t.Run(tc.name, func(t *testing.T) {
			r := mustRender(t, c, ns, tc.values)
			checkRendered(t, r, ns, tc)
		})
	}
}

// checkRendered asserts what every render must hold, and tc's expectations.
func checkRendered(t *testing.T, r *rendered, ns string, tc chartCase) {
	t.Helper()
	var wantIDs []string
	for _, id := range tc.wantObjects {
		kind, name, _ := strings.Cut(id, "/")
		wantIDs = append(wantIDs, kind+"/"+ns+"/"+name)
	}
	if diff := cmp.Diff(slices.Sorted(slices.Values(wantIDs)), r.ids()); diff != "" {
		t.Errorf("objects (-want +got):\n%s", diff)
	}
	for _, o := range r.objs {
		labels := o.GetLabels()
		for _, k := range []string{"app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/version",
			"app.kubernetes.io/managed-by", "helm.sh/chart"} {
			if labels[k] == "" {
				t.Errorf("%s/%s has no label %s", o.GetKind(), o.GetName(), k)
			}
		}
	}

	dep := decode[appsv1.Deployment](t, r, "Deployment")
	pod := dep.Spec.Template
	if got := dep.Spec.Replicas; got == nil || *got != tc.wantReplicas {
		t.Errorf("Deployment replicas = %v, want %d", got, tc.wantReplicas)
	}
	if !selects(dep.Spec.Selector.MatchLabels, pod.Labels) {
		t.Errorf("Deployment selector %v does not select its pods %v", dep.Spec.Selector.MatchLabels, pod.Labels)
	}
	if len(pod.Spec.Containers) != 1 {
		t.Fatalf("want one container, got %d", len(pod.Spec.Containers))
	}
	ctr := pod.Spec.Containers[0]
	if ctr.Image != tc.wantImage {
		t.Errorf("image = %q, want %q", ctr.Image, tc.wantImage)
	}
	if diff := cmp.Diff([]string{"run", "--config", "/etc/convoy/config.yaml"}, ctr.Args); diff != "" {
		t.Errorf("args (-want +got):\n%s", diff)
	}
	if len(ctr.Command) != 0 {
		t.Errorf("command %v overrides the image's ENTRYPOINT", ctr.Command)
	}
	checkSecurity(t, pod.Spec, ctr)
	checkProbesAndEnv(t, ctr)
	if diff := cmp.Diff(tc.wantResources, ctr.Resources); diff != "" {
		t.Errorf("resources (-want +got):\n%s", diff)
	}

	// /tmp is the only writable place: an emptyDir for Git snapshots.
	var tmp []string
	for _, m := range ctr.VolumeMounts {
		if !m.ReadOnly {
			tmp = append(tmp, m.MountPath)
		}
	}
	if diff := cmp.Diff([]string{"/tmp"}, tmp); diff != "" {
		t.Errorf("writable mounts (-want +got):\n%s", diff)
	}
	for _, v := range pod.Spec.Volumes {
		if v.Name == "tmp" && (v.EmptyDir == nil || v.EmptyDir.SizeLimit == nil || v.EmptyDir.SizeLimit.String() != "2Gi") {
			t.Errorf("volume tmp = %+v, want an emptyDir of at most 2Gi", v.VolumeSource)
		}
	}

	// The config file and every file it names are mounted, read-only, from the
	// right ConfigMap or Secret key.
	cm := decode[corev1.ConfigMap](t, r, "ConfigMap")
	var gotConfig, wantConfig map[string]any
	if err := yaml.UnmarshalStrict([]byte(cm.Data["config.yaml"]), &gotConfig); err != nil {
		t.Fatalf("ConfigMap config.yaml: %v\n%s", err, cm.Data["config.yaml"])
	}
	if err := yaml.Unmarshal([]byte(strings.ReplaceAll(tc.wantConfig, "NAMESPACE", ns)), &wantConfig); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(wantConfig, gotConfig); diff != "" {
		t.Errorf("agent config (-want +got):\n%s", diff)
	}
	gotFiles := map[string]string{}
	for _, f := range append([]string{ctr.Args[2]}, configFiles(gotConfig)...) {
		src, err := resolveFile(pod.Spec, ctr, f)
		if err != nil {
			t.Error(err)
			continue
		}
		gotFiles[f] = src
	}
	if diff := cmp.Diff(tc.wantFiles, gotFiles); diff != "" {
		t.Errorf("files the agent reads (-want +got):\n%s", diff)
	}
	if sum := pod.Annotations["checksum/config"]; !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(sum) {
		t.Errorf("pod annotation checksum/config = %q, want a SHA-256", sum)
	}

	checkRBAC(t, r, ns, pod.Spec.ServiceAccountName, tc.wantRules)

	svc := decode[corev1.Service](t, r, "Service")
	wantPorts := []corev1.ServicePort{{Name: "http", Port: 8080, TargetPort: intstr.FromString("http"), Protocol: corev1.ProtocolTCP}}
	if diff := cmp.Diff(wantPorts, svc.Spec.Ports); diff != "" {
		t.Errorf("Service ports (-want +got):\n%s", diff)
	}
	if !selects(svc.Spec.Selector, pod.Labels) {
		t.Errorf("Service selector %v does not select the pods %v", svc.Spec.Selector, pod.Labels)
	}

	pdb := decode[policyv1.PodDisruptionBudget](t, r, "PodDisruptionBudget")
	if mu := pdb.Spec.MaxUnavailable; mu == nil || *mu != intstr.FromInt32(1) {
		t.Errorf("PodDisruptionBudget maxUnavailable = %v, want 1", mu)
	}
	if pdb.Spec.MinAvailable != nil || !selects(pdb.Spec.Selector.MatchLabels, pod.Labels) {
		t.Errorf("PodDisruptionBudget spec %+v does not guard the pods %v", pdb.Spec, pod.Labels)
	}

	if slices.Contains(tc.wantObjects, "ServiceMonitor/convoy") {
		checkServiceMonitor(t, r, ns, svc)
	}
}

// checkSecurity asserts the restricted Pod Security Standard and a
// read-only root filesystem.
func checkSecurity(t *testing.T, pod corev1.PodSpec, ctr corev1.Container) {
	t.Helper()
	yes, no, uid := true, false, int64(65532)
	wantPod := &corev1.PodSecurityContext{
		RunAsNonRoot: &yes, RunAsUser: &uid, RunAsGroup: &uid, FSGroup: &uid,
		SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
	}
	if diff := cmp.Diff(wantPod, pod.SecurityContext); diff != "" {
		t.Errorf("pod securityContext (-want +got):\n%s", diff)
	}
	wantCtr := &corev1.SecurityContext{
		RunAsNonRoot: &yes, RunAsUser: &uid, RunAsGroup: &uid,
		ReadOnlyRootFilesystem: &yes, AllowPrivilegeEscalation: &no,
		Capabilities:   &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
		SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
	}
	if diff := cmp.Diff(wantCtr, ctr.SecurityContext); diff != "" {
		t.Errorf("container securityContext (-want +got):\n%s", diff)
	}
	if pod.HostNetwork || pod.HostPID || pod.HostIPC {
		t.Error("pod shares a host namespace")
	}
	if pod.AutomountServiceAccountToken != nil && !*pod.AutomountServiceAccountToken {
		t.Error("automountServiceAccountToken is false: leader election needs the token")
	}
}

func checkProbesAndEnv(t *testing.T, ctr corev1.Container) {
	t.Helper()
	probe := func(path string) *corev1.ProbeHandler {
		return &corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: path, Port: intstr.FromString("http")}}
	}
	if ctr.LivenessProbe == nil || ctr.ReadinessProbe == nil {
		t.Fatalf("probes: liveness %v, readiness %v", ctr.LivenessProbe, ctr.ReadinessProbe)
	}
	if diff := cmp.Diff(probe("/healthz"), &ctr.LivenessProbe.ProbeHandler); diff != "" {
		t.Errorf("liveness probe (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(probe("/readyz"), &ctr.ReadinessProbe.ProbeHandler); diff != "" {
		t.Errorf("readiness probe (-want +got):\n%s", diff)
	}
	wantPorts := []corev1.ContainerPort{{Name: "http", ContainerPort: 8080, Protocol: corev1.ProtocolTCP}}
	if diff := cmp.Diff(wantPorts, ctr.Ports); diff != "" {
		t.Errorf("container ports (-want +got):\n%s", diff)
	}
	field := func(name, path string) corev1.EnvVar {
		return corev1.EnvVar{Name: name, ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: path}}}
	}
	wantEnv := []corev1.EnvVar{field("POD_NAMESPACE", "metadata.namespace"), field("POD_NAME", "metadata.name")}
	if diff := cmp.Diff(wantEnv, ctr.Env); diff != "" {
		t.Errorf("env (-want +got):\n%s", diff)
	}
}

// checkRBAC asserts the Role's rules exactly, a RoleBinding to the pods'
// ServiceAccount, and nothing cluster-scoped.
func checkRBAC(t *testing.T, r *rendered, ns, serviceAccount string, wantRules []rbacv1.PolicyRule) {
	t.Helper()
	for _, o := range r.objs {
		if o.GetNamespace() != ns {
			t.Errorf("%s/%s is in namespace %q, want %q", o.GetKind(), o.GetName(), o.GetNamespace(), ns)
		}
		if strings.HasPrefix(o.GetKind(), "Cluster") {
			t.Errorf("cluster-scoped %s/%s", o.GetKind(), o.GetName())
		}
	}
	sa := decode[corev1.ServiceAccount](t, r, "ServiceAccount")
	if sa.Name != serviceAccount {
		t.Errorf("pods run as ServiceAccount %q, the chart creates %q", serviceAccount, sa.Name)
	}
	role := decode[rbacv1.Role](t, r, "Role")
	if diff := cmp.Diff(wantRules, role.Rules); diff != "" {
		t.Errorf("Role rules (-want +got):\n%s", diff)
	}
	rb := decode[rbacv1.RoleBinding](t, r, "RoleBinding")
	wantRef := rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: role.Name}
	if diff := cmp.Diff(wantRef, rb.RoleRef); diff != "" {
		t.Errorf("RoleBinding roleRef (-want +got):\n%s", diff)
	}
	wantSubjects := []rbacv1.Subject{{Kind: "ServiceAccount", Name: sa.Name, Namespace: ns}}
	if diff := cmp.Diff(wantSubjects, rb.Subjects); diff != "" {
		t.Errorf("RoleBinding subjects (-want +got):\n%s", diff)
	}
}

func checkServiceMonitor(t *testing.T, r *rendered, ns string, svc *corev1.Service) {
	t.Helper()
	sm := r.one(t, "ServiceMonitor")
	if sm.GetAPIVersion() != "monitoring.coreos.com/v1" {
		t.Errorf("ServiceMonitor apiVersion = %s", sm.GetAPIVersion())
	}
	var spec struct {
		NamespaceSelector struct {
			MatchNames []string `json:"matchNames"`
		} `json:"namespaceSelector"`
		Selector struct {
			MatchLabels map[string]string `json:"matchLabels"`
		} `json:"selector"`
		Endpoints []map[string]string `json:"endpoints"`
	}
	js, _ := yaml.Marshal(sm.Object["spec"])
	if err := yaml.UnmarshalStrict(js, &spec); err != nil {
		t.Fatalf("ServiceMonitor spec: %v", err)
	}
	if diff := cmp.Diff([]string{ns}, spec.NamespaceSelector.MatchNames); diff != "" {
		t.Errorf("ServiceMonitor namespaces (-want +got):\n%s", diff)
	}
	if !selects(spec.Selector.MatchLabels, svc.Labels) {
		t.Errorf("ServiceMonitor selector %v does not select the Service %v", spec.Selector.MatchLabels, svc.Labels)
	}
	want := []map[string]string{{"port": "http", "path": "/metrics", "interval": "15s", "scrapeTimeout": "10s"}}
	if diff := cmp.Diff(want, spec.Endpoints); diff != "" {
		t.Errorf("ServiceMonitor endpoints (-want +got):\n%s", diff)
	}
	if sm.GetLabels()["release"] != "prometheus" {
		t.Errorf("ServiceMonitor labels %v lack serviceMonitor.labels", sm.GetLabels())
	}
}

// TestChartConfigChecksum proves that a change of the agent's config rolls
// the pods and that other changes do not.
func TestChartConfigChecksum(t *testing.T) {
	c := loadChart(t)
	base := "repo: {url: " + repoURL + "}\n"
	sum := func(values string) string {
		t.Helper()
		dep := decode[appsv1.Deployment](t, mustRender(t, c, "convoy-system", values), "Deployment")
		return dep.Spec.Template.Annotations["checksum/config"]
	}
	before := sum(base)
	for _, tc := range []struct {
		name, values string
		changes      bool
	}{
		{"log level", base + "log: {level: debug}", true},
		{"branch", "repo: {url: " + repoURL + ", branch: next}", true},
		{"webhook secret", base + "webhook: {secretName: hook}\ngithub: {repo: acme/fleet}", true},
		{"replicas", base + "replicaCount: 5", false},
		{"resources", base + "resources: {limits: {memory: 4Gi}}", false},
	} {
		if got := sum(tc.values) != before; got != tc.changes {
			t.Errorf("%s: checksum changed = %v, want %v", tc.name, got, tc.changes)
		}
	}
}

// TestChartRejectsBadValues proves values.schema.json and the templates'
// checks turn wrong values into errors that name the value.
func TestChartRejectsBadValues(t *testing.T) {
	c := loadChart(t)
	url := "repo: {url: " + repoURL + "}\n"
	for _, tc := range []struct {
		name, values string
		wantErr      []string // all in the error
	}{
		{"replicas of the wrong type", url + `replicaCount: "two"`, []string{"schema", "replicaCount", "integer"}},
		{"unknown top-level key", url + "replicas: 2", []string{"schema", "additional properties 'replicas' not allowed"}},
		{"unknown nested key", "repo: {url: " + repoURL + ", branches: [main]}", []string{"schema", "/repo", "'branches'"}},
		{"bad enum", url + "log: {format: xml}", []string{"schema", "/log/format"}},
		{"bad pull policy", url + "image: {pullPolicy: Sometimes}", []string{"schema", "/image/pullPolicy"}},
		{"bad quantity", url + "resources: {limits: {memory: lots}}", []string{"schema", "/resources/limits/memory"}},
		{"bad secret name", url + "webhook: {secretName: Not_A_Name}", []string{"schema", "/webhook/secretName"}},
		{"no repository", "", []string{"repo.url is required"}},
		{"token without secret", "repo: {url: " + repoURL + ", auth: {method: token}}", []string{"repo.auth.secretName is required when repo.auth.method is token"}},
		{"signed head without keys", "repo: {url: " + repoURL + ", verify: {mode: head}}", []string{"repo.verify.keysSecretName is required"}},
		{"webhook without GitHub repository", url + "webhook: {secretName: hook}", []string{"github.repo (OWNER/REPO) is required when webhook.secretName is set"}},
		{"bad GitHub repository", url + "github: {repo: acme}", []string{"schema", "/github/repo"}},
		{"no kubeconfig", url + `kubeconfig: {secretName: ""}`, []string{"kubeconfig.secretName is required"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := renderChart(c, "convoy-system", tc.values)
			if err == nil {
				t.Fatalf("values\n%s\nrendered without error", tc.values)
			}
			t.Logf("values %q: %v", tc.values, err)
			for _, want := range tc.wantErr {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error does not contain %q:\n%v", want, err)
				}
			}
		})
	}
}

// TestChartNotes checks NOTES.txt warns about several agents without leader
// election and stays quiet otherwise.
func TestChartNotes(t *testing.T) {
	c := loadChart(t)
	url := "repo: {url: " + repoURL + "}\n"
	if notes := mustRender(t, c, "convoy-system", url).notes; strings.Contains(notes, "WARNING") || !strings.Contains(notes, repoURL) {
		t.Errorf("default NOTES.txt:\n%s", notes)
	}
	notes := mustRender(t, c, "convoy-system", url+"replicaCount: 3\nleaderElection: {enabled: false}").notes
	if !strings.Contains(notes, "WARNING: 3 replicas without leader election") {
		t.Errorf("NOTES.txt does not warn about 3 replicas without leader election:\n%s", notes)
	}
}

// selects says whether a selector's labels all appear in labels.
func selects(selector, labels map[string]string) bool {
	if len(selector) == 0 {
		return false
	}
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}
