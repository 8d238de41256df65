package render

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSwappedForSymlinkAfterCheck: a file that passes the confinement
// check and is then replaced by a symbolic link to a file outside the
// repository is not read: the read goes through the repository's os.Root.
func TestSwappedForSymlinkAfterCheck(t *testing.T) {
	outside := filepath.Join(t.TempDir(), "secret.txt")
	if err := os.WriteFile(outside, []byte("outside-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	repo := t.TempDir()
	file := filepath.Join(repo, "cm.yaml")
	if err := os.WriteFile(file, []byte("kind: ConfigMap\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	fs, err := newRepoFS(repo)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fs.check(file); err != nil { // resolved and cached: inside
		t.Fatal(err)
	}
	if err := os.Remove(file); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, file); err != nil {
		t.Fatal(err)
	}
	b, err := fs.ReadFile(file)
	if err == nil || strings.Contains(string(b), "outside-secret") {
		t.Fatalf("ReadFile after the swap = %q, %v; want an error and nothing from outside", b, err)
	}
	f, err := fs.Open(file)
	if err == nil {
		f.Close()
		t.Fatal("Open after the swap succeeded, want an error")
	}
}
