package source

import (
	"errors"
	"fmt"
	"strings"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	pgperrors "github.com/ProtonMail/go-crypto/openpgp/errors"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// VerifyMode selects which commits must carry a trusted signature.
type VerifyMode string

const (
	// VerifyOff checks no signature.
	VerifyOff VerifyMode = "off"
	// VerifyHead requires the fetched commit to be signed by a key of the
	// keyring.
	VerifyHead VerifyMode = "head"
)

// VerificationError is a commit that failed signature verification.
type VerificationError struct {
	Revision string // the commit's SHA
	// KeyID is the OpenPGP key ID (16 upper-case hex digits) the signature
	// names; "" when the commit is unsigned or the signature unreadable.
	KeyID  string
	Reason string // "unsigned", "key not in the keyring", "bad signature: …"
}

func (e *VerificationError) Error() string {
	if e.KeyID == "" {
		return fmt.Sprintf("verify commit %s: %s", e.Revision, e.Reason)
	}
	return fmt.Sprintf("verify commit %s: signed by key %s: %s", e.Revision, e.KeyID, e.Reason)
}

type keyring = openpgp.EntityList

// readKeyring reads every armored key block of armored (openpgp's own
// reader stops after the first), and refuses an empty result.
func readKeyring(armored string) (keyring, error) {
	const begin = "-----BEGIN PGP "
	var ring keyring
	for rest := armored; ; {
		start := strings.Index(rest, begin)
		if start < 0 {
			break
		}
		block := rest[start:]
		rest = ""
		if next := strings.Index(block[len(begin):], begin); next >= 0 {
			block, rest = block[:len(begin)+next], block[len(begin)+next:]
		}
		entities, err := openpgp.ReadArmoredKeyRing(strings.NewReader(block))
		if err != nil {
			return nil, err
		}
		ring = append(ring, entities...)
	}
	if len(ring) == 0 {
		return nil, errors.New("no armored OpenPGP public key")
	}
	return ring, nil
}

// check verifies c when the mode asks for it, recording the outcome in info.
func (s *Source) check(c *object.Commit, info *Commit) error {
	if s.verify != VerifyHead {
		return nil
	}
	fail := func(reason string) error {
		return &VerificationError{Revision: c.Hash.String(), KeyID: info.SignerKeyID, Reason: reason}
	}
	if c.PGPSignature == "" {
		return fail("unsigned")
	}
	if strings.Count(c.PGPSignature, "-----BEGIN ") > 1 {
		return fail("more than one signature")
	}
	if !strings.HasPrefix(strings.TrimSpace(c.PGPSignature), "-----BEGIN PGP SIGNATURE-----") {
		return fail("not an OpenPGP signature")
	}
	signed := &plumbing.MemoryObject{}
	if err := c.EncodeWithoutSignature(signed); err != nil {
		return fail(err.Error())
	}
	body, err := signed.Reader()
	if err != nil {
		return fail(err.Error())
	}
	defer body.Close()
	_, err = openpgp.CheckArmoredDetachedSignature(s.keyring, body, strings.NewReader(c.PGPSignature), nil)
	switch {
	case err == nil:
		info.Verified = true
		return nil
	case errors.Is(err, pgperrors.ErrUnknownIssuer):
		return fail("key not in the keyring")
	default:
		return fail("bad signature: " + err.Error())
	}
}

// signatureKeyID returns the issuer key ID an armored signature names, or "".
func signatureKeyID(armored string) string {
	block, err := armor.Decode(strings.NewReader(armored))
	if err != nil {
		return ""
	}
	p, err := packet.Read(block.Body)
	if err != nil {
		return ""
	}
	sig, ok := p.(*packet.Signature)
	if !ok {
		return ""
	}
	if sig.IssuerKeyId != nil {
		return fmt.Sprintf("%016X", *sig.IssuerKeyId)
	}
	if n := len(sig.IssuerFingerprint); n >= 8 {
		return fmt.Sprintf("%X", sig.IssuerFingerprint[n-8:])
	}
	return ""
}
