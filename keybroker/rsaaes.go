package keybroker

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	_ "crypto/sha1" // CKM_RSA_AES_KEY_WRAP's OAEP hash
	_ "crypto/sha256"
	_ "crypto/sha512"
	"errors"
	"fmt"

	"github.com/tink-crypto/tink-go/v2/kwp/subtle"
)

// aesWrapKeySize is the size of the ephemeral AES key of an RSA-AES wrap.
const aesWrapKeySize = 32

// WrapRSAAES wraps key as Azure Key Vault does for its RSA_AES_KEY_WRAP
// release modes (PKCS#11 CKM_RSA_AES_KEY_WRAP): a fresh AES-256 key,
// encrypted with RSA-OAEP (hash: SHA-1 for CKM_RSA_AES_KEY_WRAP, SHA-256
// and SHA-384 for RSA_AES_KEY_WRAP_256/_384) to pub, followed by key
// wrapped with AES key wrap with padding (RFC 5649, NIST SP 800-38F KWP,
// from Tink). The key must be at least 16 bytes.
func WrapRSAAES(pub *rsa.PublicKey, hash crypto.Hash, key []byte) ([]byte, error) {
	if pub == nil || !hash.Available() {
		return nil, errors.New("keybroker: RSA-AES wrap needs an RSA key and an available hash")
	}
	aesKey := make([]byte, aesWrapKeySize)
	if _, err := rand.Read(aesKey); err != nil {
		return nil, err
	}
	encKey, err := rsa.EncryptOAEP(hash.New(), rand.Reader, pub, aesKey, nil)
	if err != nil {
		return nil, fmt.Errorf("keybroker: RSA-OAEP: %w", err)
	}
	kwp, err := subtle.NewKWP(aesKey)
	if err != nil {
		return nil, err
	}
	wrapped, err := kwp.Wrap(key)
	if err != nil {
		return nil, fmt.Errorf("keybroker: AES key wrap with padding: %w", err)
	}
	return append(encKey, wrapped...), nil
}

// UnwrapRSAAES reverses WrapRSAAES with the TEE's RSA private key.
func UnwrapRSAAES(priv *rsa.PrivateKey, hash crypto.Hash, wrapped []byte) ([]byte, error) {
	n := priv.Size()
	if len(wrapped) <= n {
		return nil, errors.New("keybroker: RSA-AES wrapped key too short")
	}
	aesKey, err := rsa.DecryptOAEP(hash.New(), nil, priv, wrapped[:n], nil)
	if err != nil {
		return nil, fmt.Errorf("keybroker: RSA-OAEP: %w", err)
	}
	kwp, err := subtle.NewKWP(aesKey)
	if err != nil {
		return nil, err
	}
	return kwp.Unwrap(wrapped[n:])
}
