# syntax=docker/dockerfile:1
# convoy: a static binary on distroless, running as non-root.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY cmd ./cmd
COPY internal ./internal
COPY policies ./policies
ARG VERSION=dev
ARG COMMIT=unknown
RUN CGO_ENABLED=0 go build -trimpath \
    -ldflags "-s -w -X github.com/convoy-gitops/convoy/internal/commands.version=${VERSION} -X github.com/convoy-gitops/convoy/internal/commands.commit=${COMMIT}" \
    -o /out/convoy ./cmd/convoy

FROM gcr.io/distroless/static:nonroot
COPY --from=build /out/convoy /convoy
USER 65532:65532
ENTRYPOINT ["/convoy"]
