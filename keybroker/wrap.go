package keybroker

import (
	"crypto/ecdh"
	"crypto/hpke"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/trustbound/trustbound/api"
)

// The HPKE suites a TEE key may name (RFC 9180 and draft-ietf-hpke-pq IDs).
// The KEM is the TEE's choice among these; KDF and AEAD are fixed.
var (
	SuiteKDF  = hpke.HKDFSHA256()
	SuiteAEAD = hpke.AES256GCM()
	// KEMs lists the accepted KEMs: the ML-KEM-768 + X25519 hybrid
	// (post-quantum safe, the agent's default), X25519 and P-256.
	KEMs = []hpke.KEM{hpke.MLKEM768X25519(), hpke.DHKEM(ecdh.X25519()), hpke.DHKEM(ecdh.P256())}
)

// ErrSuite means the TEE key names an HPKE suite trustbound does not use.
var ErrSuite = errors.New("keybroker: unsupported HPKE suite")

// RecipientKey parses a TEE's HPKE key, checking its suite.
func RecipientKey(k api.HPKEKey) (hpke.PublicKey, error) {
	if err := checkKDFAEAD(k); err != nil {
		return nil, err
	}
	i := slices.IndexFunc(KEMs, func(m hpke.KEM) bool { return m.ID() == k.KEM })
	if i < 0 {
		return nil, fmt.Errorf("%w: kem 0x%04x", ErrSuite, k.KEM)
	}
	pub, err := KEMs[i].NewPublicKey(k.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("keybroker: TEE HPKE key: %w", err)
	}
	return pub, nil
}

// checkKDFAEAD checks that k names trustbound's fixed KDF and AEAD.
func checkKDFAEAD(k api.HPKEKey) error {
	if k.KDF != SuiteKDF.ID() || k.AEAD != SuiteAEAD.ID() {
		return fmt.Errorf("%w: kdf 0x%04x aead 0x%04x", ErrSuite, k.KDF, k.AEAD)
	}
	return nil
}

// Wrap seals plaintext to the TEE's HPKE key with info as context.
func Wrap(to hpke.PublicKey, info string, plaintext []byte) ([]byte, error) {
	return hpke.Seal(to, SuiteKDF, SuiteAEAD, []byte(info), plaintext)
}

// NewTEEKey generates an HPKE key pair inside the TEE with the default
// (hybrid post-quantum) KEM, returning the private key and its wire form.
func NewTEEKey() (hpke.PrivateKey, api.HPKEKey, error) {
	kem := KEMs[0]
	priv, err := kem.GenerateKey()
	if err != nil {
		return nil, api.HPKEKey{}, err
	}
	return priv, api.HPKEKey{KEM: kem.ID(), KDF: SuiteKDF.ID(), AEAD: SuiteAEAD.ID(), PublicKey: priv.PublicKey().Bytes()}, nil
}

// Unwrap opens a released secret inside the TEE.
func Unwrap(priv hpke.PrivateKey, s api.WrappedSecret) ([]byte, error) {
	pt, err := hpke.Open(priv, SuiteKDF, SuiteAEAD, []byte(s.Info), s.Sealed)
	if err != nil {
		return nil, fmt.Errorf("keybroker: secret %q does not open with this TEE's key: %w", s.Name, err)
	}
	return pt, nil
}

// WrapAll seals plaintexts to the TEE's HPKE key under one HPKE context
// with info: one encapsulation for all of them (an ML-KEM encapsulation
// and an X25519 exchange with the default KEM, where Wrap makes one per
// secret). The i-th ciphertext is the context's i-th message, with aads[i]
// as its additional data; UnwrapAll opens them in the same order.
func WrapAll(to hpke.PublicKey, info string, aads []string, plaintexts [][]byte) (enc []byte, sealed [][]byte, err error) {
	if len(aads) != len(plaintexts) {
		return nil, nil, errors.New("keybroker: one additional data string per secret is needed")
	}
	enc, s, err := hpke.NewSender(to, SuiteKDF, SuiteAEAD, []byte(info))
	if err != nil {
		return nil, nil, err
	}
	sealed = make([][]byte, len(plaintexts))
	for i, pt := range plaintexts {
		if sealed[i], err = s.Seal([]byte(aads[i]), pt); err != nil {
			return nil, nil, err
		}
	}
	return enc, sealed, nil
}

// UnwrapAll opens, inside the TEE, a release whose secrets were sealed
// under one HPKE context (api.ReleaseContext): secrets in the order given,
// each with its Info as additional data. The context's info must end with
// api.ReleaseSecrets of exactly these secrets, so a release cut short or
// reordered is refused even where each message would open. It returns the
// values in that order, or an error naming the first secret that does not
// open; on an error, the values already opened are zeroed and none is
// returned. The caller checks the rest of the info (workload, token).
func UnwrapAll(priv hpke.PrivateKey, rc api.ReleaseContext, secrets []api.WrappedSecret) ([][]byte, error) {
	if len(secrets) == 0 {
		return nil, nil // a release of no secret seals nothing
	}
	if !strings.HasSuffix(rc.Info, ": "+api.ReleaseSecrets(secrets)) {
		return nil, fmt.Errorf("%w: the release's HPKE context was made for other secrets than the %d given, or in another order", ErrReleaseMismatch, len(secrets))
	}
	r, err := hpke.NewRecipient(rc.Enc, priv, SuiteKDF, SuiteAEAD, []byte(rc.Info))
	if err != nil {
		return nil, fmt.Errorf("keybroker: the release does not open with this TEE's key: %w", err)
	}
	return openInOrder(r.Open, secrets)
}

// ErrReleaseMismatch means the secrets of a release are not the ones, or
// not in the order, its HPKE context names.
var ErrReleaseMismatch = errors.New("keybroker: release does not match its HPKE context")

// openInOrder opens secrets in order with open (an HPKE context's Open),
// each with its Info as additional data. If one does not open, every value
// opened before it is overwritten with zeros before openInOrder returns:
// a release that fails half way leaves no secret in memory.
func openInOrder(open func(aad, ciphertext []byte) ([]byte, error), secrets []api.WrappedSecret) ([][]byte, error) {
	out := make([][]byte, len(secrets))
	for i, s := range secrets {
		v, err := open([]byte(s.Info), s.Sealed)
		if err != nil {
			clear(v)
			for _, done := range out[:i] {
				clear(done)
			}
			return nil, fmt.Errorf("keybroker: secret %q does not open with this TEE's key in this release: %w", s.Name, err)
		}
		out[i] = v
	}
	return out, nil
}
