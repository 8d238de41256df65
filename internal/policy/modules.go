package policy

// Loading the built-in policies and a repository's own.

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/convoy-gitops/convoy/policies"
	"github.com/open-policy-agent/opa/ast"
	"github.com/open-policy-agent/opa/storage"
	"github.com/open-policy-agent/opa/storage/inmem"
)

// loadModules parses the built-in policies and the .rego files under dirs,
// keyed by file name; withTests includes the _test.rego files.
func loadModules(dirs []string, withTests bool, root ...string) (map[string]*ast.Module, error) {
	modules := map[string]*ast.Module{}
	var errs ast.Errors
	parse := func(name string, src []byte) {
		m, err := ast.ParseModuleWithOpts(name, string(src), ast.ParserOptions{RegoVersion: ast.RegoV1, ProcessAnnotation: true})
		if err != nil {
			var astErrs ast.Errors
			if errors.As(err, &astErrs) {
				errs = append(errs, astErrs...)
				return
			}
			errs = append(errs, ast.NewError(ast.ParseErr, &ast.Location{File: name}, "%v", err))
			return
		}
		modules[name] = m
	}
	keep := func(name string) bool {
		return strings.HasSuffix(name, ".rego") && (withTests || !strings.HasSuffix(name, "_test.rego"))
	}

	entries, err := fs.ReadDir(policies.FS, ".")
	if err != nil {
		return nil, fmt.Errorf("built-in policies: %w", err)
	}
	for _, entry := range entries {
		if !keep(entry.Name()) {
			continue
		}
		src, err := fs.ReadFile(policies.FS, entry.Name())
		if err != nil {
			return nil, fmt.Errorf("built-in policy %s: %w", entry.Name(), err)
		}
		parse(BuiltinPrefix+entry.Name(), src)
	}

	builtins := builtinPackages(modules)
	for _, dir := range dirs {
		err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				if path != dir && strings.HasPrefix(d.Name(), ".") {
					return filepath.SkipDir
				}
				return nil
			}
			if !keep(d.Name()) {
				return nil
			}
			name := path
			if len(root) > 0 && root[0] != "" {
				if rel, err := filepath.Rel(root[0], path); err == nil && filepath.IsLocal(rel) {
					name = filepath.ToSlash(rel)
				}
			}
			src, err := readPolicyFile(path, d)
			if err != nil {
				errs = append(errs, ast.NewError(ast.ParseErr, &ast.Location{File: name, Row: 1}, "%v", err))
				return nil
			}
			parse(name, src)
			if m := modules[name]; m != nil {
				if e := checkRepoPackage(m, builtins); e != nil {
					errs = append(errs, e)
					delete(modules, name)
				}
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("policies %s: %w", dir, err)
		}
	}
	if len(errs) > 0 {
		return nil, compileError(errs)
	}
	return modules, nil
}

// readPolicyFile reads a repository policy: a regular file (a symbolic link
// could read anything on the machine, or never end, as /dev/zero) of at
// most MaxPolicyFile bytes.
func readPolicyFile(path string, d fs.DirEntry) ([]byte, error) {
	if !d.Type().IsRegular() {
		return nil, errors.New("not a regular file: policies are read from regular files only (no symbolic links)")
	}
	info, err := d.Info()
	if err != nil {
		return nil, err
	}
	if info.Size() > MaxPolicyFile {
		return nil, fmt.Errorf("%d bytes, over the %d byte limit of a policy file", info.Size(), MaxPolicyFile)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	src, err := io.ReadAll(io.LimitReader(f, MaxPolicyFile+1))
	if err != nil {
		return nil, err
	}
	if len(src) > MaxPolicyFile {
		return nil, fmt.Errorf("over the %d byte limit of a policy file", MaxPolicyFile)
	}
	return src, nil
}

// MaxPolicyFile caps a repository's policy file.
const MaxPolicyFile = 1 << 20

// configStore holds data for data.convoy.config.
func configStore(data map[string]any) storage.Store {
	if data == nil {
		data = map[string]any{}
	}
	return inmem.NewFromObject(map[string]any{"convoy": map[string]any{"config": data}})
}
