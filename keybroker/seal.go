package keybroker

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
)

// Sealer encrypts state at rest under a 256-bit data key with AES-256-GCM.
// The store key is the additional data, so a sealed value cannot be moved
// to another key.
type Sealer struct {
	aead cipher.AEAD
}

// DataKeySize is the size of the data key.
const DataKeySize = 32

// NewSealer returns a sealer for a 32-byte data key.
func NewSealer(dataKey []byte) (*Sealer, error) {
	if len(dataKey) != DataKeySize {
		return nil, fmt.Errorf("keybroker: data key must be %d bytes", DataKeySize)
	}
	block, err := aes.NewCipher(dataKey)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &Sealer{aead: aead}, nil
}

// Seal encrypts plaintext for storage under key.
func (s *Sealer) Seal(key string, plaintext []byte) ([]byte, error) {
	nonce := make([]byte, s.aead.NonceSize(), s.aead.NonceSize()+len(plaintext)+s.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	return s.aead.Seal(nonce, nonce, plaintext, []byte(key)), nil
}

// ErrUnseal means stored state does not decrypt: a wrong data key, or
// state tampered with or moved.
var ErrUnseal = errors.New("keybroker: stored state does not decrypt under the data key")

// Open decrypts what Seal produced for the same key.
func (s *Sealer) Open(key string, sealed []byte) ([]byte, error) {
	n := s.aead.NonceSize()
	if len(sealed) < n+s.aead.Overhead() {
		return nil, ErrUnseal
	}
	pt, err := s.aead.Open(nil, sealed[:n], sealed[n:], []byte(key))
	if err != nil {
		return nil, ErrUnseal
	}
	return pt, nil
}
