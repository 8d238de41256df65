# syntax=docker/dockerfile:1
# convoy: a static binary on distroless, running as non-root (65532:65532).
# Build: docker build --build-arg VERSION=$(git describe --tags --always) \
#          --build-arg COMMIT=$(git rev-parse --short HEAD) -t convoy .

FROM golang:1.26 AS builder
WORKDIR /src
ENV GOTOOLCHAIN=local
COPY go.mod go.sum ./
# go.mod replaces sigs.k8s.io/kustomize/api with this patched copy (see its README).
COPY internal/third_party/kustomize-api/go.mod ./internal/third_party/kustomize-api/
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY cmd ./cmd
COPY internal ./internal
COPY policies ./policies
ARG VERSION=dev
ARG COMMIT=unknown
# The -X names are the ones the Makefile's LDFLAGS stamp (internal/commands/version.go).
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=linux go build -trimpath \
      -ldflags "-s -w -X github.com/convoy-gitops/convoy/internal/commands.version=${VERSION} -X github.com/convoy-gitops/convoy/internal/commands.commit=${COMMIT}" \
      -o /out/convoy ./cmd/convoy

# static-debian12 has CA certificates, tzdata and the nonroot user (65532); no shell.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=builder /out/convoy /convoy
USER 65532:65532
ENTRYPOINT ["/convoy"]
