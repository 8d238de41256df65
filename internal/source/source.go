package source

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	"github.com/go-git/go-git/v5/storage/memory"
)

// DefaultTimeout bounds one Fetch when Options.Timeout is zero.
const DefaultTimeout = 2 * time.Minute

// DefaultBranch is the branch watched when Options.Branch is empty.
const DefaultBranch = "main"

// Options configure a Source.
type Options struct {
	// URL of the repository: https://, http://, ssh://, scp-like
	// (git@host:org/repo), file:// or a local path of a git repository.
	// Credentials in an HTTP URL's user information are used as basic auth
	// when Auth has none, and never reach go-git's endpoint or any message.
	URL string
	// Branch watched; DefaultBranch when empty.
	Branch string
	// Revision pins a commit instead of following the branch: a full SHA
	// (which must be reachable from Branch unless a ref points at it), or a
	// ref (refs/tags/v1, a tag or a branch name). Empty follows Branch.
	Revision string
	// Auth for the remote.
	Auth Auth
	// Timeout bounds one Fetch; DefaultTimeout when zero.
	Timeout time.Duration
	// CacheDir holds the snapshots, one directory per revision. Required.
	CacheDir string
	// Verify selects commit signature verification; VerifyOff when empty.
	Verify VerifyMode
	// Keyring holds the trusted armored OpenPGP public keys (one or more
	// armor blocks) for VerifyHead.
	Keyring string
}

// Source fetches one repository's revisions into snapshot directories. It is
// safe for concurrent use; so are several Sources sharing a CacheDir.
type Source struct {
	url         string // as given to go-git: no user information
	rawURL      string // as configured, for scrubbing
	redactedURL string
	branch      string
	revision    string
	auth        transport.AuthMethod
	timeout     time.Duration
	cacheDir    string
	verify      VerifyMode
	keyring     keyring
	secrets     []string
}

var fullSHA = regexp.MustCompile(`^[0-9a-f]{40}$`)

// New checks opts and returns a Source. Errors name the option at fault and
// never contain a credential.
func New(opts Options) (*Source, error) {
	s := &Source{
		rawURL:      opts.URL,
		redactedURL: RedactURL(opts.URL),
		branch:      opts.Branch,
		revision:    opts.Revision,
		timeout:     opts.Timeout,
		cacheDir:    opts.CacheDir,
		verify:      opts.Verify,
	}
	if s.branch == "" {
		s.branch = DefaultBranch
	}
	if s.timeout <= 0 {
		s.timeout = DefaultTimeout
	}
	if s.verify == "" {
		s.verify = VerifyOff
	}
	if opts.URL == "" {
		return nil, errors.New("source: URL is empty")
	}
	if opts.CacheDir == "" {
		return nil, fmt.Errorf("source %s: CacheDir is empty", s.redactedURL)
	}
	if !plumbing.NewBranchReferenceName(s.branch).IsBranch() || strings.ContainsAny(s.branch, " ~^:?*[\\") {
		return nil, fmt.Errorf("source %s: branch %q is not a valid branch name", s.redactedURL, s.branch)
	}
	endpointURL, urlUser, urlPass, err := splitURL(opts.URL)
	if err != nil {
		return nil, fmt.Errorf("source %s: %w", s.redactedURL, err)
	}
	s.url = endpointURL
	s.secrets = secretForms(opts.Auth.Password, opts.Auth.Token, opts.Auth.SSHPassphrase, urlPass)
	if urlPass == "" && strings.HasPrefix(opts.URL, "http") {
		s.secrets = append(s.secrets, secretForms(urlUser)...) // https://TOKEN@host
	}
	s.auth, err = opts.Auth.method(endpointURL, urlUser, urlPass)
	if basic, ok := s.auth.(*githttp.BasicAuth); ok {
		// What a server could echo: the Authorization header's value.
		s.secrets = append(s.secrets, base64.StdEncoding.EncodeToString([]byte(basic.Username+":"+basic.Password)))
	}
	// Longest first, so a secret containing another is replaced whole.
	sort.Slice(s.secrets, func(i, j int) bool { return len(s.secrets[i]) > len(s.secrets[j]) })
	if err != nil {
		return nil, fmt.Errorf("source %s: %s", s.redactedURL, s.scrub(err.Error()))
	}
	switch s.verify {
	case VerifyOff:
	case VerifyHead:
		if s.keyring, err = readKeyring(opts.Keyring); err != nil {
			return nil, fmt.Errorf("source %s: keyring: %w", s.redactedURL, err)
		}
	default:
		return nil, fmt.Errorf("source %s: verify mode %q: want %q or %q", s.redactedURL, s.verify, VerifyOff, VerifyHead)
	}
	return s, nil
}

// splitURL returns the URL go-git gets (no user information; local paths
// made absolute) and the user and password the URL carried.
func splitURL(raw string) (endpoint, user, pass string, err error) {
	if !strings.Contains(raw, "://") {
		if fi, statErr := os.Stat(raw); statErr == nil && fi.IsDir() {
			abs, err := filepath.Abs(raw)
			return abs, "", "", err
		}
		if _, err := transport.NewEndpoint(raw); err != nil {
			return "", "", "", fmt.Errorf("URL is neither a URL, an scp-like address nor a local directory")
		}
		return raw, "", "", nil // scp-like: the user is part of the address
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", "", "", errors.New("URL does not parse")
	}
	switch u.Scheme {
	case "http", "https":
		if u.User != nil {
			user = u.User.Username()
			pass, _ = u.User.Password()
			u.User = nil
		}
	case "ssh", "file", "git":
	default:
		return "", "", "", fmt.Errorf("URL scheme %q: want https, http, ssh, git or file", u.Scheme)
	}
	return u.String(), user, pass, nil
}

// Fetch brings the configured revision into the cache and returns its
// snapshot.
//
// It lists the remote's refs first. When the wanted revision is
// lastRevision, it returns a Snapshot with Unchanged set and only Revision
// (and Dir, when that snapshot is still cached) filled in, having fetched no
// objects. When the revision's snapshot is already cached, it returns it
// without fetching. Otherwise it fetches the revision (depth 1 where the
// revision is a ref's head, the branch's full history for an older SHA),
// verifies it as configured and writes its snapshot.
//
// Errors start with "fetch <redacted URL>:" and match ErrUnreachable,
// ErrAuth, ErrNotFound, context errors or *VerificationError under
// errors.Is / errors.As.
func (s *Source) Fetch(ctx context.Context, lastRevision string) (*Snapshot, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()

	want, err := s.resolve(ctx)
	if err != nil {
		return nil, s.failure(ctx, err)
	}
	if want.hash != "" && want.hash == lastRevision {
		snap := &Snapshot{Revision: want.hash, Unchanged: true}
		if dir := s.snapshotDir(want.hash); isDir(dir) {
			snap.Dir = dir
		}
		return snap, nil
	}
	var commit *object.Commit
	var dir string
	if want.hash != "" {
		commit, dir, _ = s.cached(want.hash)
	}
	if commit == nil {
		if commit, err = s.fetchCommit(ctx, want); err != nil {
			return nil, s.failure(ctx, err)
		}
	}
	snap := &Snapshot{Revision: commit.Hash.String(), Dir: dir, Commit: commitInfo(commit)}
	if err := s.check(commit, &snap.Commit); err != nil {
		return nil, s.failure(ctx, err)
	}
	if snap.Dir == "" {
		if snap.Dir, err = s.writeSnapshot(ctx, commit); err != nil {
			return nil, s.failure(ctx, err)
		}
	}
	return snap, nil
}

// wanted is what resolve learned from the remote's refs.
type wanted struct {
	ref     plumbing.ReferenceName // the ref to fetch
	hash    string                 // the commit wanted; "" when only the fetch tells (a tag not peeled)
	shallow bool                   // the commit is ref's head, so depth 1 is enough
}

// resolve lists the remote's refs and decides what to fetch.
func (s *Source) resolve(ctx context.Context) (wanted, error) {
	remote := git.NewRemote(memory.NewStorage(), &config.RemoteConfig{Name: "origin", URLs: []string{s.url}})
	refs, err := remote.ListContext(ctx, &git.ListOptions{Auth: s.auth, PeelingOption: git.AppendPeeled})
	if err != nil {
		return wanted{}, err
	}
	heads := make(map[plumbing.ReferenceName]string, len(refs))
	for _, r := range refs {
		if r.Type() == plumbing.HashReference {
			heads[r.Name()] = r.Hash().String()
		}
	}
	// commitOf is a ref's commit: its peeled value for annotated tags.
	commitOf := func(name plumbing.ReferenceName) (string, bool) {
		if h, ok := heads[name+"^{}"]; ok {
			return h, true
		}
		h, ok := heads[name]
		return h, ok
	}
	branch := plumbing.NewBranchReferenceName(s.branch)

	switch {
	case s.revision == "":
		h, ok := commitOf(branch)
		if !ok {
			return wanted{}, fmt.Errorf("branch %s: %w", s.branch, ErrNotFound)
		}
		return wanted{ref: branch, hash: h, shallow: true}, nil

	case fullSHA.MatchString(s.revision):
		if h, ok := commitOf(branch); ok && h == s.revision {
			return wanted{ref: branch, hash: h, shallow: true}, nil
		}
		names := make([]string, 0, len(heads))
		for name := range heads {
			names = append(names, string(name))
		}
		sort.Strings(names) // deterministic choice among refs at the revision
		for _, name := range names {
			n := plumbing.ReferenceName(strings.TrimSuffix(name, "^{}"))
			if h, _ := commitOf(n); h == s.revision && (n.IsBranch() || n.IsTag()) {
				return wanted{ref: n, hash: h, shallow: true}, nil
			}
		}
		if _, ok := heads[branch]; !ok {
			return wanted{}, fmt.Errorf("branch %s: %w", s.branch, ErrNotFound)
		}
		return wanted{ref: branch, hash: s.revision}, nil

	default:
		candidates := []plumbing.ReferenceName{plumbing.ReferenceName(s.revision)}
		if !strings.HasPrefix(s.revision, "refs/") {
			candidates = []plumbing.ReferenceName{
				plumbing.NewTagReferenceName(s.revision),
				plumbing.NewBranchReferenceName(s.revision),
			}
		}
		for _, n := range candidates {
			if h, ok := commitOf(n); ok {
				return wanted{ref: n, hash: h, shallow: true}, nil
			}
		}
		return wanted{}, fmt.Errorf("revision %s (a full SHA, a tag or a branch): %w", s.revision, ErrNotFound)
	}
}

// fetchCommit fetches want into memory and returns its commit.
func (s *Source) fetchCommit(ctx context.Context, want wanted) (*object.Commit, error) {
	if want.shallow {
		c, err := s.fetchInto(ctx, want, 1)
		if err == nil || !errors.Is(err, plumbing.ErrObjectNotFound) {
			return c, err
		}
		// The ref moved on between listing and fetching; a pinned SHA is
		// still found in the full history below.
	}
	return s.fetchInto(ctx, want, 0)
}

func (s *Source) fetchInto(ctx context.Context, want wanted, depth int) (*object.Commit, error) {
	repo, err := git.Init(memory.NewStorage(), nil)
	if err != nil {
		return nil, err
	}
	remote, err := repo.CreateRemote(&config.RemoteConfig{Name: "origin", URLs: []string{s.url}})
	if err != nil {
		return nil, err
	}
	spec := config.RefSpec(fmt.Sprintf("+%s:%s", want.ref, want.ref))
	err = remote.FetchContext(ctx, &git.FetchOptions{
		RefSpecs: []config.RefSpec{spec},
		Depth:    depth,
		Tags:     git.NoTags,
		Auth:     s.auth,
	})
	if err != nil && !errors.Is(err, git.NoErrAlreadyUpToDate) {
		return nil, err
	}
	hash := plumbing.NewHash(want.hash)
	if want.hash == "" || !fullSHA.MatchString(s.revision) {
		// Following a ref: take what was fetched, which is newer than the
		// listing if the ref moved meanwhile.
		ref, err := repo.Storer.Reference(want.ref)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", want.ref, err)
		}
		hash = ref.Hash()
	}
	obj, err := repo.Storer.EncodedObject(plumbing.AnyObject, hash)
	if err != nil {
		return nil, fmt.Errorf("revision %s in %s: %w", hash, want.ref, err)
	}
	if obj.Type() == plumbing.TagObject {
		tag, err := object.DecodeTag(repo.Storer, obj)
		if err != nil {
			return nil, err
		}
		return tag.Commit()
	}
	return object.DecodeCommit(repo.Storer, obj)
}

func isDir(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.IsDir()
}

// URL is the repository's URL with any credentials removed, for logs and
// status.
func (s *Source) URL() string { return s.redactedURL }
