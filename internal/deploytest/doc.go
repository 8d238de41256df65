// Package deploytest tests convoy's deployment artefacts, the Helm chart and the
// Dockerfile, as a user meets them: it holds tests only.
package deploytest
