// Package testenv starts the real parts convoy's tests run against: local
// Kubernetes control planes (kube-apiserver and etcd, plus
// kube-controller-manager, kube-scheduler and kwok nodes for "full" clusters),
// a git smart-HTTP server, and a GitHub REST stand-in.
//
// The binaries come from bin/ at the module root, built by `make tools`;
// nothing is downloaded at test time.
package testenv
