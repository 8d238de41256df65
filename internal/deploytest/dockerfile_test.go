package deploytest_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"maps"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	dfparser "github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
)

const (
	modulePath  = "github.com/convoy-gitops/convoy"
	repoRoot    = "../.."
	builderBase = "golang:1.26"
	finalBase   = "gcr.io/distroless/static-debian12:nonroot"
)

// parseDockerfile parses the repository's Dockerfile with BuildKit's own
// parser, as `docker build` does.
func parseDockerfile(t *testing.T) []instructions.Stage {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	res, err := dfparser.Parse(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("Dockerfile: %v", err)
	}
	for _, w := range res.Warnings {
		t.Errorf("Dockerfile line %d: %s", w.Location.Start.Line, w.Short)
	}
	stages, metaArgs, err := instructions.Parse(res.AST, nil)
	if err != nil {
		t.Fatalf("Dockerfile: %v", err)
	}
	if len(metaArgs) != 0 {
		t.Errorf("ARGs before the first FROM: %v", metaArgs)
	}
	return stages
}

// TestDockerfile checks the image's build: a Go builder stage that makes a
// static, stamped, trimmed ./cmd/convoy, and a distroless final stage that
// holds only that binary and runs it as 65532.
func TestDockerfile(t *testing.T) {
	stages := parseDockerfile(t)
	if len(stages) != 2 {
		t.Fatalf("want 2 stages (builder, final), got %d", len(stages))
	}
	builder, final := stages[0], stages[1]
	if builder.Name != "builder" || builder.BaseName != builderBase {
		t.Errorf("first stage FROM %s AS %s, want FROM %s AS builder", builder.BaseName, builder.Name, builderBase)
	}
	if final.BaseName != finalBase {
		t.Errorf("final stage FROM %s, want %s", final.BaseName, finalBase)
	}

	build := goBuild(t, builder)
	if diff := cmp.Diff(map[string]string{"CGO_ENABLED": "0", "GOOS": "linux"}, build.env); diff != "" {
		t.Errorf("go build environment (-want +got):\n%s", diff)
	}
	if !slices.Contains(build.flags, "-trimpath") {
		t.Errorf("go build flags %q lack -trimpath", build.flags)
	}
	if diff := cmp.Diff([]string{"./cmd/convoy"}, build.packages); diff != "" {
		t.Errorf("go build packages (-want +got):\n%s", diff)
	}
	// The version variables: stamped from the build args, under the names the
	// Makefile uses, which are string variables of internal/commands.
	wantX := map[string]string{
		modulePath + "/internal/commands.version": "v9.9.9",
		modulePath + "/internal/commands.commit":  "abc1234",
	}
	if diff := cmp.Diff(wantX, build.stamps); diff != "" {
		t.Errorf("-ldflags -X with VERSION=v9.9.9 COMMIT=abc1234 (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(slices.Sorted(maps.Keys(wantX)), makefileStamps(t)); diff != "" {
		t.Errorf("Makefile LDFLAGS -X names (-want +got):\n%s", diff)
	}
	for _, name := range []string{"version", "commit"} {
		if !hasStringVar(t, filepath.Join(repoRoot, "internal", "commands"), name) {
			t.Errorf("internal/commands has no package-level string variable %q for -X to set", name)
		}
	}

	// The final stage: the binary and nothing else, as 65532, exec form.
	var kinds []string
	for _, cmd := range final.Commands {
		kinds = append(kinds, cmd.Name())
	}
	if diff := cmp.Diff([]string{"COPY", "USER", "ENTRYPOINT"}, kinds); diff != "" {
		t.Fatalf("final stage instructions (-want +got):\n%s", diff)
	}
	cp := final.Commands[0].(*instructions.CopyCommand)
	if cp.From != "builder" || !slices.Equal(cp.SourcePaths, []string{build.output}) || cp.DestPath != "/convoy" {
		t.Errorf("final stage COPY --from=%s %v %s, want COPY --from=builder %s /convoy", cp.From, cp.SourcePaths, cp.DestPath, build.output)
	}
	if u := final.Commands[1].(*instructions.UserCommand).User; u != "65532:65532" {
		t.Errorf("USER %s, want 65532:65532", u)
	}
	ep := final.Commands[2].(*instructions.EntrypointCommand)
	if ep.PrependShell || !slices.Equal(ep.CmdLine, []string{"/convoy"}) {
		t.Errorf(`ENTRYPOINT %q (shell form %v), want ["/convoy"]`, ep.CmdLine, ep.PrependShell)
	}
}

// TestDockerBuildContext checks that every file `go build ./cmd/convoy`
// reads reaches the builder stage (kept by .dockerignore, copied to the same
// place under WORKDIR) and that .dockerignore keeps bin/, .git and the rest
// out of the build context.
func TestDockerBuildContext(t *testing.T) {
	f, err := os.Open(filepath.Join(repoRoot, ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	patterns, err := ignorefile.ReadAll(f)
	if err != nil {
		t.Fatalf(".dockerignore: %v", err)
	}
	pm, err := patternmatcher.New(patterns)
	if err != nil {
		t.Fatalf(".dockerignore: %v", err)
	}
	excluded := func(p string) bool {
		t.Helper()
		ex, err := pm.MatchesOrParentMatches(p)
		if err != nil {
			t.Fatalf(".dockerignore on %s: %v", p, err)
		}
		return ex
	}
	for _, p := range []string{"bin", "bin/kube-apiserver", "bin/kwok-stages/pod-ready.yaml", ".git", ".git/HEAD",
		".git/objects/pack/x.pack", "fixtures/fleet/fleet.yaml", "charts/convoy/values.yaml", "tools/go.mod",
		"internal/fleet/fleet_test.go", "internal/commands/testdata/render-fleet.golden.json"} {
		if !excluded(p) {
			t.Errorf(".dockerignore lets %s into the build context", p)
		}
	}

	stages := parseDockerfile(t)
	copied := builderCopies(t, stages[0])
	for _, file := range buildInputs(t) {
		if excluded(file) {
			t.Errorf(".dockerignore keeps out %s, which go build needs", file)
		}
		if !copied(file) {
			t.Errorf("the builder stage does not COPY %s to /src/%s", file, file)
		}
	}
}

// buildInputs lists, relative to the repository, the files `go build
// ./cmd/convoy` reads from the repository: go.mod, go.sum and each package's
// Go and embedded files, of the module and of the modules go.mod replaces
// with a directory in it (their go.mod too).
func buildInputs(t *testing.T) []string {
	t.Helper()
	cmd := exec.Command("go", "list", "-e", "-deps", "-json=Dir,GoFiles,EmbedFiles,Module", "./cmd/convoy")
	cmd.Dir = repoRoot
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("go list: %v\n%s", err, ee.Stderr)
		}
		t.Fatalf("go list: %v", err)
	}
	root, err := filepath.Abs(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	files := []string{"go.mod", "go.sum"}
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p struct {
			Dir                 string
			GoFiles, EmbedFiles []string
			Module              *struct {
				Path    string
				Replace *struct{ Path, GoMod string }
			}
		}
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("go list output: %v", err)
		}
		if p.Module == nil {
			continue
		}
		local := p.Module.Replace != nil && strings.HasPrefix(p.Module.Replace.Path, "./")
		if p.Module.Path != modulePath && !local {
			continue
		}
		paths := make([]string, 0, len(p.GoFiles)+len(p.EmbedFiles)+1)
		for _, f := range append(p.GoFiles, p.EmbedFiles...) {
			paths = append(paths, filepath.Join(p.Dir, f))
		}
		if local {
			paths = append(paths, p.Module.Replace.GoMod)
		}
		for _, f := range paths {
			rel, err := filepath.Rel(root, f)
			if err != nil {
				t.Fatal(err)
			}
			if rel := filepath.ToSlash(rel); !slices.Contains(files, rel) {
				files = append(files, rel)
			}
		}
	}
	if len(files) < 10 || !slices.Contains(files, "cmd/convoy/main.go") {
		t.Fatalf("go list found too little of ./cmd/convoy: %q", files)
	}
	return files
}

// builderCopies returns whether a context file reaches the same relative
// place under the builder's WORKDIR through its COPY instructions.
func builderCopies(t *testing.T, stage instructions.Stage) func(string) bool {
	t.Helper()
	workdir := "/"
	type copyRule struct{ src, dst string }
	var rules []copyRule
	for _, cmd := range stage.Commands {
		switch c := cmd.(type) {
		case *instructions.WorkdirCommand:
			workdir = path.Join(workdir, c.Path)
		case *instructions.CopyCommand:
			if c.From != "" {
				continue
			}
			dst := c.DestPath
			if !path.IsAbs(dst) {
				dst = path.Join(workdir, dst)
			}
			for _, src := range c.SourcePaths {
				src = path.Clean(src)
				if len(c.SourcePaths) > 1 || strings.HasSuffix(c.DestPath, "/") {
					// several sources, or a directory destination: each lands inside it
					rules = append(rules, copyRule{src, path.Join(dst, path.Base(src))})
				} else {
					rules = append(rules, copyRule{src, dst})
				}
			}
		}
	}
	if workdir != "/src" {
		t.Errorf("builder WORKDIR %s, want /src", workdir)
	}
	return func(file string) bool {
		for _, r := range rules {
			if file == r.src || strings.HasPrefix(file, r.src+"/") {
				if path.Join(r.dst, strings.TrimPrefix(file, r.src)) == path.Join(workdir, file) {
					return true
				}
			}
		}
		return false
	}
}

// goCommand is the builder stage's `go build`, expanded as the shell would
// with VERSION=v9.9.9 and COMMIT=abc1234 passed as build args.
type goCommand struct {
	env      map[string]string // assignments before `go`
	flags    []string          // flags other than -ldflags and -o
	stamps   map[string]string // -X name=value of -ldflags
	output   string            // -o
	packages []string
}

func goBuild(t *testing.T, stage instructions.Stage) goCommand {
	t.Helper()
	args := map[string]string{}
	var runs []*instructions.RunCommand
	for _, cmd := range stage.Commands {
		switch c := cmd.(type) {
		case *instructions.ArgCommand:
			for _, a := range c.Args {
				if a.Value != nil {
					args[a.Key] = *a.Value
				}
			}
		case *instructions.RunCommand:
			if strings.Contains(strings.Join(c.CmdLine, " "), "go build") {
				runs = append(runs, c)
			}
		}
	}
	if len(runs) != 1 {
		t.Fatalf("want one RUN with go build in the builder stage, got %d", len(runs))
	}
	run := runs[0]
	if !run.PrependShell || len(run.CmdLine) != 1 {
		t.Fatalf("RUN %q: want the shell form", run.CmdLine)
	}
	if diff := cmp.Diff(map[string]string{"VERSION": "dev", "COMMIT": "unknown"}, args); diff != "" {
		t.Errorf("builder ARG defaults (-want +got):\n%s", diff)
	}
	args["VERSION"], args["COMMIT"] = "v9.9.9", "abc1234"
	var env []string
	for k, v := range args {
		env = append(env, k+"="+v)
	}
	words, err := shell.NewLex('\\').ProcessWords(run.CmdLine[0], shell.EnvsFromSlice(env))
	if err != nil {
		t.Fatalf("RUN %q: %v", run.CmdLine[0], err)
	}
	if slices.ContainsFunc(words, func(w string) bool { return w == "&&" || w == ";" || w == "|" }) {
		t.Fatalf("RUN %q: want go build alone", run.CmdLine[0])
	}
	g := goCommand{env: map[string]string{}, stamps: map[string]string{}}
	assign := regexp.MustCompile(`^([A-Z_][A-Z0-9_]*)=(.*)$`)
	for len(words) > 0 {
		m := assign.FindStringSubmatch(words[0])
		if m == nil {
			break
		}
		g.env[m[1]] = m[2]
		words = words[1:]
	}
	if len(words) < 2 || words[0] != "go" || words[1] != "build" {
		t.Fatalf("RUN %q: want [VAR=value…] go build …", run.CmdLine[0])
	}
	words = words[2:]
	for i := 0; i < len(words); i++ {
		w := words[i]
		switch {
		case w == "-ldflags" || w == "-o":
			if i+1 == len(words) {
				t.Fatalf("go build %s without a value", w)
			}
			i++
			if w == "-o" {
				g.output = words[i]
				continue
			}
			fields := strings.Fields(words[i])
			for j := 0; j < len(fields); j++ {
				if fields[j] == "-X" && j+1 < len(fields) {
					name, value, _ := strings.Cut(fields[j+1], "=")
					g.stamps[name] = value
					j++
				}
			}
		case strings.HasPrefix(w, "-"):
			g.flags = append(g.flags, w)
		default:
			g.packages = append(g.packages, w)
		}
	}
	return g
}

// makefileStamps returns the -X names of the Makefile's LDFLAGS, sorted.
func makefileStamps(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, m := range regexp.MustCompile(`-X (\S+)=`).FindAllSubmatch(data, -1) {
		names = append(names, string(m[1]))
	}
	slices.Sort(names)
	return names
}

// hasStringVar says whether the package in dir declares a package-level
// variable name of type string.
func hasStringVar(t *testing.T, dir, name string) bool {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, file := range files {
		if strings.HasSuffix(file, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, file, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatalf("parse %s: %v", file, err)
		}
		for _, decl := range f.Decls {
			gd, ok := decl.(*ast.GenDecl)
			if !ok || gd.Tok != token.VAR {
				continue
			}
			for _, spec := range gd.Specs {
				vs := spec.(*ast.ValueSpec)
				for i, n := range vs.Names {
					if n.Name != name {
						continue
					}
					if id, ok := vs.Type.(*ast.Ident); ok && id.Name == "string" {
						return true
					}
					if vs.Type == nil && i < len(vs.Values) {
						if lit, ok := vs.Values[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
							return true
						}
					}
				}
			}
		}
	}
	return false
}
