package apply

import (
	"context"
	"fmt"
	"strings"

	"github.com/fluxcd/cli-utils/pkg/kstatus/polling"
	"github.com/fluxcd/cli-utils/pkg/kstatus/polling/clusterreader"
	"github.com/fluxcd/cli-utils/pkg/kstatus/polling/engine"
	"github.com/fluxcd/cli-utils/pkg/object"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// lastAppliedAnnotation is kubectl's client-side apply record: a copy of
// the whole object as last applied by kubectl, when someone did.
const lastAppliedAnnotation = "kubectl.kubernetes.io/last-applied-configuration"

// newStatusPoller returns the kstatus poller of a cluster's health waits.
// It is kstatus's own (a caching cluster reader that LISTs every kind and
// namespace of the polled set, and the ReplicaSets and Pods of its
// Deployments and StatefulSets, before each poll, so that crash-looping
// pods still fail the wait) except that every listed object is trimmed by
// trimForPoll as it arrives.
func newStatusPoller(c client.Reader, mapper meta.RESTMapper) *polling.StatusPoller {
	return polling.NewStatusPoller(c, mapper, polling.Options{ClusterReaderFactory: pollReaderFactory})
}

// pollReaderFactory makes kstatus's caching cluster reader over a
// trimmingReader.
var pollReaderFactory = engine.ClusterReaderFactoryFunc(
	func(r client.Reader, m meta.RESTMapper, ids object.ObjMetadataSet) (engine.ClusterReader, error) {
		return clusterreader.NewCachingClusterReader(trimmingReader{r}, m, ids)
	})

// trimmingReader is a client.Reader whose unstructured lists lack what
// trimForPoll drops. Only List is wrapped: the caching reader fills its
// cache with LISTs and answers the status readers from that cache.
//
// A poll's cache holds every listed object of the polled kinds and
// namespaces, and the last status of each polled object keeps its object
// until the next change: with two clusters waiting at once, these caches
// were the agent's largest heap after the plan itself. Most of a
// Deployment's or ReplicaSet's bytes as unstructured maps are its managed
// fields (every field path of every manager) and its pod template, and
// kstatus reads neither.
type trimmingReader struct {
	client.Reader
}

// List lists the objects and trims each.
func (r trimmingReader) List(ctx context.Context, list client.ObjectList, opts ...client.ListOption) error {
	if err := r.Reader.List(ctx, list, opts...); err != nil {
		return untilDeadline(ctx, err)
	}
	if u, ok := list.(*unstructured.UnstructuredList); ok {
		for i := range u.Items {
			trimForPoll(u.Items[i].Object)
		}
	}
	return nil
}

// trimForPoll deletes from an object what no kstatus status reader reads:
// metadata.managedFields, the kubectl last-applied annotation, the pod
// template of a workload (Deployment, ReplicaSet, StatefulSet, DaemonSet,
// Job) and the spec of a Pod. It keeps everything the readers use:
// generation, labels (a Deployment's ReplicaSets and a ReplicaSet's Pods
// are found by them), the deletion timestamp, the rest of the spec
// (replicas, selector, update strategy, completions) and the status.
func trimForPoll(obj map[string]any) {
	md, ok := obj["metadata"].(map[string]any)
	if !ok {
		return
	}
	delete(md, "managedFields")
	if ann, ok := md["annotations"].(map[string]any); ok {
		delete(ann, lastAppliedAnnotation)
		if len(ann) == 0 {
			delete(md, "annotations")
		}
	}
	apiVersion, _ := obj["apiVersion"].(string)
	kind, _ := obj["kind"].(string)
	switch {
	case apiVersion == "v1" && kind == "Pod":
		delete(obj, "spec")
	case templated[apiVersion+"/"+kind]:
		if spec, ok := obj["spec"].(map[string]any); ok {
			delete(spec, "template")
		}
	}
}

// templated are the kinds whose spec.template is a pod template that
// kstatus does not read (it reads their replica counts, strategy and
// status).
var templated = map[string]bool{
	"apps/v1/Deployment": true, "apps/v1/ReplicaSet": true, "apps/v1/StatefulSet": true,
	"apps/v1/DaemonSet": true, "batch/v1/Job": true,
}

// untilDeadline turns client-go's rate limiter refusing a LIST, because
// the wait for a token would pass ctx's deadline, into that deadline: it
// waits for ctx to end and returns ctx's error. The refusal is not a
// context error, and kstatus stops the poll on it (as on the end of its
// context) but then reports it as the poll's failure, which ssa returns
// as the health wait's result in place of the objects still unhealthy at
// the timeout. Any other error is returned as it is.
func untilDeadline(ctx context.Context, err error) error {
	if _, ok := ctx.Deadline(); !ok || !strings.Contains(err.Error(), "would exceed context deadline") {
		return err
	}
	<-ctx.Done()
	return fmt.Errorf("%w (%v)", ctx.Err(), err)
}
