package commands

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"runtime"
	"strings"
	"sync"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/convoy-gitops/convoy/internal/fleet"
	"github.com/convoy-gitops/convoy/internal/render"
)

// renderOutput is the JSON form of convoy render.
type renderOutput struct {
	Revision string `json:"revision"`
	// Uncommitted: a work tree rendered as it is (--worktree).
	Uncommitted bool            `json:"uncommitted,omitempty"`
	Clusters    []renderCluster `json:"clusters"`
}

// renderCluster is one cluster of renderOutput.
type renderCluster struct {
	Name    string           `json:"name"`
	Wave    string           `json:"wave"`
	Objects []map[string]any `json:"objects"`
}

func newRenderCmd() *cobra.Command {
	var (
		repo     string
		revision string
		worktree bool
		insecure bool
		clusters []string
		output   string
	)
	cmd := &cobra.Command{
		Use:   "render --repo DIR [--cluster NAME]... [-o yaml|json]",
		Short: "Render clusters' manifests",
		Long: `Render renders the clusters of a config repository with kustomize, in wave
order, with the cluster variables substituted. What is rendered is one commit
read from the repository's object store (HEAD by default), never the work
tree, unless --worktree asks for it; a directory that is no git repository is
rendered as it is. Every cluster is rendered before
anything is printed: on any error nothing goes to stdout, each problem goes to
stderr on its own line, and the exit code is 2.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			out, err := runRender(cmd, repo, revision, worktree, insecure, clusters, output)
			if err != nil {
				return withCode(ExitError, err)
			}
			_, err = cmd.OutOrStdout().Write(out)
			return err
		},
	}
	cmd.Flags().StringVar(&repo, "repo", "", "config repository: directory or Git URL")
	cmd.Flags().StringVar(&revision, "revision", "", "commit to render: HEAD (default), a branch, a tag, a SHA, HEAD~1…")
	cmd.Flags().BoolVar(&worktree, "worktree", false, "render the work tree as it is, uncommitted changes included")
	cmd.Flags().BoolVar(&insecure, "allow-insecure", false, "accept http:// and git:// repository URLs (tests and local servers only)")
	cmd.Flags().StringArrayVar(&clusters, "cluster", nil, "render only this cluster (repeatable); default: all")
	cmd.Flags().StringVarP(&output, "output", "o", "yaml", "output format: yaml or json")
	return cmd
}

// runRender renders and formats; it returns the whole output or an error.
func runRender(cmd *cobra.Command, repo, revision string, worktree, insecure bool, names []string, output string) ([]byte, error) {
	if output != "yaml" && output != "json" {
		return nil, fmt.Errorf("--output %q: expected yaml or json", output)
	}
	co, err := openRepo(cmd.Context(), repoOptions{repo: repo, revision: revision, worktree: worktree, allowInsecure: insecure})
	if err != nil {
		return nil, err
	}
	f := co.Fleet
	selected, err := selectClusters(f, names)
	if err != nil {
		return nil, err
	}
	var r render.Renderer
	results, err := r.All(cmd.Context(), co.Dir, f, selected)
	if err != nil {
		return nil, err
	}
	doc := renderOutput{Revision: co.Revision, Uncommitted: co.Worktree, Clusters: make([]renderCluster, len(results))}
	for i, res := range results {
		c := f.ClusterByName(res.Cluster)
		doc.Clusters[i] = renderCluster{Name: c.Name, Wave: c.Wave, Objects: objectMaps(res.Objects)}
	}
	if output == "json" {
		b, err := json.MarshalIndent(doc, "", "  ")
		if err != nil {
			return nil, err
		}
		return append(b, '\n'), nil
	}
	return renderYAML(doc)
}

// selectClusters returns the names of the clusters to render, in wave order:
// the named ones, or all of them. Unknown names are errors.
func selectClusters(f *fleet.Fleet, names []string) ([]string, error) {
	want := map[string]bool{}
	var errs []error
	for _, n := range names {
		if f.ClusterByName(n) == nil {
			errs = append(errs, fmt.Errorf("--cluster %s: no such cluster in %s", n, fleet.FileName))
			continue
		}
		want[n] = true
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	var ordered []string
	seen := map[string]bool{}
	add := func(n string) {
		if !seen[n] && (len(want) == 0 || want[n]) && f.ClusterByName(n) != nil {
			seen[n] = true
			ordered = append(ordered, n)
		}
	}
	for _, w := range f.Rollout.Waves {
		for _, n := range w.Clusters {
			add(n)
		}
	}
	// A valid fleet has every cluster in a wave; keep any other at the end.
	for _, c := range f.Clusters {
		add(c.Name)
	}
	return ordered, nil
}

// objectMaps returns the objects' contents.
func objectMaps(objs []*unstructured.Unstructured) []map[string]any {
	out := make([]map[string]any, len(objs))
	for i, u := range objs {
		out[i] = u.Object
	}
	return out
}

// renderYAML formats doc as multi-document YAML, each cluster's first
// document headed by a "# cluster: <name>" comment.
func renderYAML(doc renderOutput) ([]byte, error) {
	// Encoding is a third of a large render's time: the objects are
	// encoded on every core, then written in order.
	type item struct {
		cluster string
		obj     map[string]any
		y       []byte
		err     error
	}
	var items []*item
	for _, c := range doc.Clusters {
		for _, obj := range c.Objects {
			items = append(items, &item{cluster: c.Name, obj: obj})
		}
	}
	next := make(chan *item)
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for it := range next {
				it.y, it.err = yaml.Marshal(it.obj)
			}
		}()
	}
	for _, it := range items {
		next <- it
	}
	close(next)
	wg.Wait()

	var b bytes.Buffer
	k := 0
	for _, c := range doc.Clusters {
		if len(c.Objects) == 0 {
			fmt.Fprintf(&b, "---\n# cluster: %s\n", c.Name)
		}
		for i := range c.Objects {
			it := items[k]
			k++
			if it.err != nil {
				return nil, fmt.Errorf("cluster %s: %w", c.Name, it.err)
			}
			b.WriteString("---\n")
			if i == 0 {
				fmt.Fprintf(&b, "# cluster: %s\n", c.Name)
			}
			b.Write(it.y)
		}
	}
	return b.Bytes(), nil
}

// urlLike matches repository addresses rather than directories.
var urlLike = regexp.MustCompile(`^([a-zA-Z][a-zA-Z0-9+.-]*://|[a-zA-Z0-9_.-]+@[^/:]+:)`)

// looksLikeURL reports whether repo names a remote repository.
func looksLikeURL(repo string) bool {
	return urlLike.MatchString(repo) || strings.HasPrefix(repo, "github.com/")
}
