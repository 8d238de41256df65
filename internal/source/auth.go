package source

import (
	"errors"
	"fmt"

	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	gitssh "github.com/go-git/go-git/v5/plumbing/transport/ssh"
)

// TokenUsername is the basic-auth user sent with Auth.Token when
// Auth.Username is empty; GitHub and most forges accept any user with a token.
const TokenUsername = "x-access-token"

// Auth holds the credentials for a remote. HTTP(S) uses Token or
// Username/Password as basic auth; SSH uses SSHKey, checked against
// KnownHostsFile.
type Auth struct {
	// Username for basic auth (and the SSH user when the URL names none).
	Username string
	// Password for basic auth.
	Password string
	// Token is sent as the basic-auth password, with Username or
	// TokenUsername as the user.
	Token string
	// SSHKey is a PEM private key for ssh:// and scp-like URLs.
	SSHKey []byte
	// SSHPassphrase decrypts SSHKey when it is encrypted.
	SSHPassphrase string
	// KnownHostsFile lists the SSH host keys trusted; required with SSHKey,
	// since an unchecked host would receive the fetch.
	KnownHostsFile string
}

// method returns the go-git auth method for endpoint (a URL without user
// information); urlUser and urlPass came from the configured URL and are used
// only when a has no HTTP credentials.
func (a Auth) method(endpoint, urlUser, urlPass string) (transport.AuthMethod, error) {
	ep, err := transport.NewEndpoint(endpoint)
	if err != nil {
		return nil, errors.New("URL is not a git endpoint")
	}
	switch ep.Protocol {
	case "http", "https":
		if len(a.SSHKey) > 0 {
			return nil, fmt.Errorf("an SSH key is set but the URL is %s", ep.Protocol)
		}
		switch {
		case a.Token != "":
			user := a.Username
			if user == "" {
				user = TokenUsername
			}
			return &githttp.BasicAuth{Username: user, Password: a.Token}, nil
		case a.Username != "" || a.Password != "":
			return &githttp.BasicAuth{Username: a.Username, Password: a.Password}, nil
		case urlUser != "" || urlPass != "":
			return &githttp.BasicAuth{Username: urlUser, Password: urlPass}, nil
		}
		return nil, nil
	case "ssh":
		if len(a.SSHKey) == 0 {
			return nil, errors.New("ssh URL without an SSH key")
		}
		if a.KnownHostsFile == "" {
			return nil, errors.New("SSH key without a known_hosts file: refusing to trust any host")
		}
		user := ep.User
		if user == "" {
			user = a.Username
		}
		if user == "" {
			user = "git"
		}
		keys, err := gitssh.NewPublicKeys(user, a.SSHKey, a.SSHPassphrase)
		if err != nil {
			return nil, fmt.Errorf("SSH key: %v", err)
		}
		callback, err := gitssh.NewKnownHostsCallback(a.KnownHostsFile)
		if err != nil {
			return nil, fmt.Errorf("known_hosts %s: %v", a.KnownHostsFile, err)
		}
		keys.HostKeyCallback = callback
		return keys, nil
	case "git":
		return nil, nil
	case "file":
		if a.Token != "" || a.Password != "" || len(a.SSHKey) > 0 {
			return nil, errors.New("credentials are set for a local repository")
		}
		return nil, nil
	default:
		return nil, fmt.Errorf("protocol %s is not supported", ep.Protocol)
	}
}
