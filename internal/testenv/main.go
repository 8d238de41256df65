package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
)

// What a test package shares across its tests: control planes started on
// first use and a convoy binary built once, both under one directory that
// Main removes after the last test.
var pkg struct {
	dir string

	planesOnce sync.Once
	planes     *Clusters
	planesErr  error

	binOnce sync.Once
	bin     string
	binErr  error
}

// Main runs a test package's tests (TestMain: os.Exit(testenv.Main(m)))
// and then stops what they shared: the planes of Shared, the binary of
// Convoy.
func Main(m *testing.M) int {
	dir, err := os.MkdirTemp("", "convoy-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	pkg.dir = dir
	code := m.Run()
	if pkg.planes != nil {
		if err := pkg.planes.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stop shared control planes:", err)
		}
	}
	if err := os.RemoveAll(dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
	}
	return code
}

// SharedSpecs are the planes Shared starts: API-only, one per wave of the
// test fleets (canary staging, primary prod, disaster recovery dr). A
// TestMain may set fewer before it calls Main.
var SharedSpecs = []Spec{{Name: "staging"}, {Name: "prod"}, {Name: "dr"}}

// Shared returns the package's control planes (SharedSpecs), started by
// the first test that asks and stopped by Main after the last. Tests run
// one after another and each keeps to its own fleet, namespace and lease
// (see Name), so what a test reads of the API servers' request counts
// between two points of its own is its own.
func Shared(t testing.TB) *Clusters {
	t.Helper()
	if pkg.dir == "" {
		t.Fatal("testenv.Shared needs TestMain to call testenv.Main")
	}
	pkg.planesOnce.Do(func() {
		pkg.planes, pkg.planesErr = StartClusters(filepath.Join(pkg.dir, "planes"), SharedSpecs...)
	})
	if pkg.planesErr != nil {
		t.Fatal(pkg.planesErr)
	}
	return pkg.planes
}

// Convoy returns the convoy command built from this module, once per test
// process, for tests that run it as a process (killed mid-rollout, say).
func Convoy(t testing.TB) string {
	t.Helper()
	if pkg.dir == "" {
		t.Fatal("testenv.Convoy needs TestMain to call testenv.Main")
	}
	pkg.binOnce.Do(func() {
		root, err := ModuleRoot()
		if err != nil {
			pkg.binErr = err
			return
		}
		bin := filepath.Join(pkg.dir, "convoy")
		if out, err := exec.Command("go", "build", "-o", bin, filepath.Join(root, "cmd/convoy")).CombinedOutput(); err != nil {
			pkg.binErr = fmt.Errorf("build convoy: %v\n%s", err, out)
			return
		}
		pkg.bin = bin
	})
	if pkg.binErr != nil {
		t.Fatal(pkg.binErr)
	}
	return pkg.bin
}

var notLabel = regexp.MustCompile(`[^a-z0-9]+`)

// names are the names Name gave, by test, and how often each was given,
// so that a test run again in the same process (go test -count 2) gets a
// name of its own: "…-2".
var names struct {
	sync.Mutex
	byTest map[testing.TB]string
	given  map[string]int
}

// Name is a DNS label unique to the test in this process, for its fleet,
// namespace and lease on shared planes: "TestAgentHoldReleasesItself"
// becomes "agent-hold-releases-itself".
func Name(t testing.TB) string {
	names.Lock()
	defer names.Unlock()
	if n, ok := names.byTest[t]; ok {
		return n
	}
	if names.byTest == nil {
		names.byTest, names.given = map[testing.TB]string{}, map[string]int{}
	}
	n := label(t.Name())
	names.given[n]++
	if k := names.given[n]; k > 1 {
		n = fmt.Sprintf("%s-%d", n, k)
	}
	names.byTest[t] = n
	return n
}

// label turns a test's name into a DNS label of at most 50 characters.
func label(name string) string {
	n := strings.TrimPrefix(name, "Test")
	var b strings.Builder
	for i, r := range n {
		if i > 0 && r >= 'A' && r <= 'Z' {
			b.WriteByte('-')
		}
		b.WriteRune(r)
	}
	n = strings.Trim(notLabel.ReplaceAllString(strings.ToLower(b.String()), "-"), "-")
	if len(n) > 50 {
		n = strings.TrimRight(n[:50], "-")
	}
	return n
}
