// Package source fetches a config repository from Git: it lists the remote's
// refs to learn whether the watched branch moved, fetches only the revision it
// needs (shallow where it can), optionally verifies the commit's OpenPGP
// signature, and writes that revision's tree as an immutable snapshot
// directory, <CacheDir>/<sha>/, that readers can use without locking.
//
// Credentials never appear in the errors this package returns: URLs are
// redacted and passwords and tokens are scrubbed from every message.
package source
