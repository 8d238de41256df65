package trust_test

import (
	"context"
	"fmt"
	"testing"
)

// BenchmarkJudgeFor measures what judging a revision costs the agent on top
// of its plan: the base's rules (from a snapshot written once) and, per
// commit carried, its change (trailers), files, owners and rule edits. A
// new Judge each time: nothing is remembered between rollouts.
func BenchmarkJudgeFor(b *testing.B) {
	for _, commits := range []int{1, 10} {
		b.Run(fmt.Sprintf("commits=%d", commits), func(b *testing.B) {
			r := newRepo(b)
			base := r.head()
			var target string
			for i := range commits {
				target = r.commit(fmt.Sprintf("change %d"+approved2, i), map[string]string{
					"clusters/staging/app.yaml": fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: app, namespace: default}\ndata: {v: \"%d\"}\n", i+2),
				})
			}
			snaps := b.TempDir() // base snapshots stay, as in the agent's workDir
			_, targetRules := r.judgeIn(target, snaps)
			for b.Loop() {
				j, _ := r.judgeIn(target, snaps)
				if _, err := j.For(context.Background(), base, target, targetRules); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
