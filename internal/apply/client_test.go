package apply_test

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/convoy-gitops/convoy/internal/apply"
	"github.com/convoy-gitops/convoy/internal/fleet"
	"github.com/convoy-gitops/convoy/internal/testenv"
)

const goodKubeconfig = `apiVersion: v1
kind: Config
clusters:
- name: c
  cluster: {server: "https://10.0.0.1:6443", certificate-authority-data: "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCg=="}
users:
- name: u
  user: {token: abc}
contexts:
- name: c
  context: {cluster: c, user: u}
current-context: c
`

func TestCheckKubeconfig(t *testing.T) {
	tests := map[string]struct{ from, to, want string }{
		"embedded credentials":       {"", "", ""},
		"exec plugin":                {"user: {token: abc}", "user: {exec: {apiVersion: client.authentication.k8s.io/v1, command: /bin/sh, args: [-c, 'curl evil']}}", `user "u": exec credential plugins are not allowed`},
		"auth provider":              {"user: {token: abc}", "user: {auth-provider: {name: gcp}}", `user "u": auth-provider is not allowed`},
		"token file":                 {"user: {token: abc}", "user: {tokenFile: /var/run/secrets/kubernetes.io/serviceaccount/token}", `user "u": file paths`},
		"client key path":            {"user: {token: abc}", "user: {client-certificate: /etc/c.crt, client-key: /etc/c.key}", `user "u": file paths`},
		"insecure skip tls":          {`certificate-authority-data: "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCg=="`, "insecure-skip-tls-verify: true", `cluster "c": insecure-skip-tls-verify is not allowed`},
		"certificate authority path": {`certificate-authority-data: "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCg=="`, "certificate-authority: /etc/ca.crt", `cluster "c": certificate-authority is a file path`},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			err := apply.CheckKubeconfig([]byte(strings.Replace(goodKubeconfig, tt.from, tt.to, 1)))
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("error = %v, want %q", err, tt.want)
			}
		})
	}
}

// secretRef reads kubeconfigs from the agent's namespace only, from Secrets
// labelled for convoy, and refuses one that would run a program.
func TestSecretRefKubeconfig(t *testing.T) {
	c := testenv.Shared(t).Get("staging")
	ctx := context.Background()
	// Names of the test's own: the plane is shared.
	team, good, unlabelled, execName := testenv.Name(t)+"-team", testenv.Name(t)+"-good", testenv.Name(t)+"-unlabelled", testenv.Name(t)+"-exec"
	for _, ns := range []string{"convoy-system", team} {
		if err := c.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
	}
	secret := func(ns, name string, labelled bool, kubeconfig string) {
		s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Data: map[string][]byte{"kubeconfig": []byte(kubeconfig)}}
		if labelled {
			s.Labels = map[string]string{apply.LabelKubeconfig: "true"}
		}
		if err := c.Client.Create(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	exec := strings.Replace(goodKubeconfig, "user: {token: abc}", "user: {exec: {apiVersion: client.authentication.k8s.io/v1, command: /bin/sh}}", 1)
	secret("convoy-system", good, true, goodKubeconfig)
	secret("convoy-system", unlabelled, false, goodKubeconfig)
	secret("convoy-system", execName, true, exec)
	secret(team, "theirs", true, goodKubeconfig)
	k := &apply.Connector{Local: c.Client, LocalNamespace: "convoy-system"}
	for _, tt := range []struct{ ns, name, want string }{
		{"convoy-system", good, ""},
		{"convoy-system", unlabelled, "is not labelled convoy.dev/kubeconfig=true"},
		{"convoy-system", execName, "exec credential plugins are not allowed"},
		{team, "theirs", `read from the agent's namespace "convoy-system" only`},
	} {
		cl := &fleet.Cluster{Name: "x", Kubeconfig: fleet.KubeconfigRef{SecretRef: &fleet.SecretRef{Namespace: tt.ns, Name: tt.name, Key: "kubeconfig"}}}
		cfg, err := k.RESTConfig(ctx, cl)
		switch {
		case tt.want == "" && (err != nil || cfg.Host != "https://10.0.0.1:6443"):
			t.Errorf("%s/%s: %v, host %v", tt.ns, tt.name, err, cfg)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%s/%s: error = %v, want %q", tt.ns, tt.name, err, tt.want)
		}
	}
}
