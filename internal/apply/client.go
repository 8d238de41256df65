package apply

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/convoy-gitops/convoy/internal/fleet"
)

// Client-side limits. client-go's defaults (5 QPS, burst 10) would make a
// 1,000-object apply take minutes; the API server's own priority and
// fairness is the real limit.
const (
	DefaultQPS     = 200
	DefaultBurst   = 400
	DefaultTimeout = 30 * time.Second
)

// Connector turns a cluster's kubeconfig reference into a REST config.
type Connector struct {
	// KubeconfigFile holds the contexts named by `kubeconfig: {context: …}`.
	// Empty means the usual loading rules ($KUBECONFIG, ~/.kube/config).
	KubeconfigFile string
	// Local reaches the cluster the agent runs in, where `secretRef`
	// Secrets live. Nil when secretRef is not supported (the CLI without
	// an agent cluster).
	Local client.Reader
	// LocalNamespace is the one namespace secretRef Secrets are read from:
	// the agent's own. A change names the Secret, so it may name no other.
	LocalNamespace string
}

// LabelKubeconfig marks a Secret that holds a cluster's kubeconfig for
// convoy: secretRef reads no other Secret.
const LabelKubeconfig = "convoy.dev/kubeconfig"

// RESTConfig returns the config for cluster c.
func (k *Connector) RESTConfig(ctx context.Context, c *fleet.Cluster) (*rest.Config, error) {
	cfg, err := k.restConfig(ctx, c)
	if err != nil {
		return nil, fmt.Errorf("cluster %s: kubeconfig: %w", c.Name, err)
	}
	cfg = rest.CopyConfig(cfg)
	cfg.QPS, cfg.Burst, cfg.Timeout = DefaultQPS, DefaultBurst, DefaultTimeout
	cfg.UserAgent = "convoy"
	return cfg, nil
}

func (k *Connector) restConfig(ctx context.Context, c *fleet.Cluster) (*rest.Config, error) {
	ref := c.Kubeconfig
	switch {
	case ref.InCluster:
		return rest.InClusterConfig()
	case ref.SecretRef != nil:
		if k.Local == nil {
			return nil, fmt.Errorf("secretRef %s/%s needs the agent's cluster; use kubeconfig contexts with the CLI", ref.SecretRef.Namespace, ref.SecretRef.Name)
		}
		if ref.SecretRef.Namespace != k.LocalNamespace || k.LocalNamespace == "" {
			return nil, fmt.Errorf("secretRef %s/%s: kubeconfig Secrets are read from the agent's namespace %q only", ref.SecretRef.Namespace, ref.SecretRef.Name, k.LocalNamespace)
		}
		var s corev1.Secret
		key := client.ObjectKey{Namespace: ref.SecretRef.Namespace, Name: ref.SecretRef.Name}
		if err := k.Local.Get(ctx, key, &s); err != nil {
			return nil, fmt.Errorf("read Secret %s: %w", key, err)
		}
		if s.Labels[LabelKubeconfig] != "true" {
			return nil, fmt.Errorf("Secret %s is not labelled %s=true: convoy reads kubeconfigs only from Secrets marked for it", key, LabelKubeconfig)
		}
		data, ok := s.Data[ref.SecretRef.Key]
		if !ok {
			return nil, fmt.Errorf("Secret %s has no key %q", key, ref.SecretRef.Key)
		}
		if err := CheckKubeconfig(data); err != nil {
			return nil, fmt.Errorf("Secret %s key %q: %w", key, ref.SecretRef.Key, err)
		}
		cfg, err := clientcmd.RESTConfigFromKubeConfig(data)
		if err != nil {
			// The parser's message can quote the file; never pass it on.
			return nil, fmt.Errorf("Secret %s key %q is not a valid kubeconfig", key, ref.SecretRef.Key)
		}
		return cfg, nil
	default:
		rules := clientcmd.NewDefaultClientConfigLoadingRules()
		if k.KubeconfigFile != "" {
			rules.ExplicitPath = k.KubeconfigFile
		}
		overrides := &clientcmd.ConfigOverrides{CurrentContext: ref.Context}
		cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, overrides).ClientConfig()
		if err != nil {
			return nil, fmt.Errorf("context %q: %w", ref.Context, err)
		}
		return cfg, nil
	}
}

// CheckKubeconfig refuses a kubeconfig from a Secret that would run a
// program (exec credential plugins, auth providers), read files of the
// agent's machine (certificate, key, token or CA paths) or skip verifying
// the API server (insecure-skip-tls-verify): a Secret should hold the
// credentials themselves. Its messages never quote the file.
func CheckKubeconfig(data []byte) error {
	cfg, err := clientcmd.Load(data)
	if err != nil {
		return errors.New("not a valid kubeconfig")
	}
	var problems []string
	for name, u := range cfg.AuthInfos {
		switch {
		case u.Exec != nil:
			problems = append(problems, fmt.Sprintf("user %q: exec credential plugins are not allowed", name))
		case u.AuthProvider != nil:
			problems = append(problems, fmt.Sprintf("user %q: auth-provider is not allowed", name))
		}
		if u.ClientCertificate != "" || u.ClientKey != "" || u.TokenFile != "" {
			problems = append(problems, fmt.Sprintf("user %q: file paths (client-certificate, client-key, tokenFile) are not allowed: embed the data", name))
		}
	}
	for name, c := range cfg.Clusters {
		if c.InsecureSkipTLSVerify {
			problems = append(problems, fmt.Sprintf("cluster %q: insecure-skip-tls-verify is not allowed", name))
		}
		if c.CertificateAuthority != "" {
			problems = append(problems, fmt.Sprintf("cluster %q: certificate-authority is a file path: embed certificate-authority-data", name))
		}
	}
	if len(problems) > 0 {
		sort.Strings(problems)
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}
