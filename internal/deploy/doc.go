// Package deploy holds tests for convoy's deployment artefacts: the Helm chart and the Dockerfile.
package deploy
