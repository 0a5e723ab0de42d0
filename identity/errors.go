package identity

import "errors"

// Errors the CA wraps, so that callers can tell refusals apart with errors.Is.
var (
	// ErrInvalidID: a trust domain, path segment or SPIFFE ID breaks the
	// naming rules (lowercase letters, digits, '.', '-', '_'; no empty, "."
	// or ".." segments).
	ErrInvalidID = errors.New("invalid SPIFFE ID")
	// ErrUnsupportedKey: the public key is not ECDSA P-256/P-384, Ed25519 or
	// RSA of 2048 to 8192 bits, or is malformed.
	ErrUnsupportedKey = errors.New("unsupported public key (use ECDSA P-256/P-384, Ed25519 or RSA 2048-8192)")
	// ErrInvalidRequest: a certificate request is unfit (TTL out of range,
	// time not set, bad DNS name or subject, wrong trust domain).
	ErrInvalidRequest = errors.New("invalid certificate request")
	// ErrCAValidity: the requested validity falls outside the root's; the CA
	// must be rotated.
	ErrCAValidity = errors.New("outside the CA certificate's validity (rotate the CA)")
	// ErrInvalidCA: a loaded certificate or key is not a usable root CA.
	ErrInvalidCA = errors.New("invalid CA certificate or key")
	// ErrNotSVID: a certificate is not a valid X.509-SVID issued under the
	// given roots.
	ErrNotSVID = errors.New("not a valid X.509-SVID")
)
