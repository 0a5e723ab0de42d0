package token

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/trustbound/trustbound/api"
)

// The JWS algorithms tokens are signed with. ES256 is the default; RS256 is
// for relying parties that accept nothing else (Azure Attestation signs
// with RS256).
const (
	ES256 = "ES256"
	RS256 = "RS256"
)

// algorithms lists the supported algorithms in the order they are
// advertised.
var algorithms = []string{ES256, RS256}

// RSABits is the modulus size of the RS256 keys GenerateKey makes; NewKey
// accepts RSA keys of 2048 bits and more.
const RSABits = 3072

const minRSABits = 2048

// Key is one token signing key.
type Key struct {
	// ID is the key's kid: its RFC 7638 JWK thumbprint (SHA-256,
	// base64url without padding).
	ID string
	// Algorithm is the JWS algorithm the key signs with, ES256 or RS256.
	// Tokens whose header names another algorithm are refused.
	Algorithm string
	// Private is *ecdsa.PrivateKey (P-256) for ES256, *rsa.PrivateKey for
	// RS256.
	Private crypto.Signer
	// NotBefore is when the key became the current signing key of its
	// algorithm.
	NotBefore time.Time
	// Retire is when the key stops being published and accepted: zero while
	// the key is current, and after a rotation the rotation time plus the
	// keyring's maximum token lifetime, when every token it signed has
	// expired.
	Retire time.Time
}

// Public returns the verification key.
func (k Key) Public() crypto.PublicKey { return k.Private.Public() }

// GenerateKey makes a new signing key for alg (ES256: P-256; RS256: RSA
// with RSABits bits), in service from now.
func GenerateKey(alg string, now time.Time) (Key, error) {
	var priv crypto.Signer
	var err error
	switch alg {
	case ES256:
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case RS256:
		priv, err = rsa.GenerateKey(rand.Reader, RSABits)
	default:
		return Key{}, fmt.Errorf("token: unsupported signing algorithm %q (ES256 or RS256)", alg)
	}
	if err != nil {
		return Key{}, fmt.Errorf("token: generating %s key: %w", alg, err)
	}
	return NewKey(alg, priv, now)
}

// NewKey wraps an existing private key (for example one loaded from sealed
// storage) as a signing key for alg, in service from now.
func NewKey(alg string, priv crypto.Signer, now time.Time) (Key, error) {
	if err := checkKeyType(alg, priv); err != nil {
		return Key{}, err
	}
	kid, err := Thumbprint(priv.Public())
	if err != nil {
		return Key{}, err
	}
	return Key{ID: kid, Algorithm: alg, Private: priv, NotBefore: now}, nil
}

// Thumbprint is the RFC 7638 JWK thumbprint of pub (SHA-256,
// base64url without padding): the kid of its signing key.
func Thumbprint(pub crypto.PublicKey) (string, error) {
	tp, err := (&jose.JSONWebKey{Key: pub}).Thumbprint(crypto.SHA256)
	if err != nil {
		return "", fmt.Errorf("token: thumbprint: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(tp), nil
}

func checkKeyType(alg string, priv crypto.Signer) error {
	switch alg {
	case ES256:
		k, ok := priv.(*ecdsa.PrivateKey)
		if !ok || k.Curve != elliptic.P256() {
			return fmt.Errorf("token: an ES256 key must be ECDSA P-256, not %T", priv)
		}
	case RS256:
		k, ok := priv.(*rsa.PrivateKey)
		if !ok {
			return fmt.Errorf("token: an RS256 key must be RSA, not %T", priv)
		}
		if k.N.BitLen() < minRSABits {
			return fmt.Errorf("token: RS256 key has %d bits, at least %d needed", k.N.BitLen(), minRSABits)
		}
	default:
		return fmt.Errorf("token: unsupported signing algorithm %q (ES256 or RS256)", alg)
	}
	return nil
}

// check verifies that k is self-consistent: algorithm, key type and kid.
func (k Key) check() error {
	if k.Private == nil {
		return errors.New("token: key has no private key")
	}
	if err := checkKeyType(k.Algorithm, k.Private); err != nil {
		return err
	}
	kid, err := Thumbprint(k.Private.Public())
	if err != nil {
		return err
	}
	if k.ID != kid {
		return fmt.Errorf("token: key id %q is not the key's JWK thumbprint %q", k.ID, kid)
	}
	return nil
}

// Keyring holds the current signing key of each algorithm and the previous
// keys that are still published because tokens they signed may not have
// expired yet. It is safe for concurrent use; the coordinator keeps it
// sealed in its store (MarshalJSON, ParseKeyring).
type Keyring struct {
	mu          sync.RWMutex
	maxLifetime time.Duration
	keys        []Key // in order of NotBefore, oldest first
}

// NewKeyring returns a keyring whose current keys are keys (at most one per
// algorithm) and whose tokens live at most maxLifetime: an issuer using it
// may not have a longer TTL, and a rotated-out key stays published for
// maxLifetime after the rotation.
func NewKeyring(maxLifetime time.Duration, keys ...Key) (*Keyring, error) {
	if maxLifetime <= 0 {
		return nil, errors.New("token: keyring maximum token lifetime must be positive")
	}
	if len(keys) == 0 {
		return nil, errors.New("token: keyring needs a key")
	}
	for _, k := range keys {
		if !k.Retire.IsZero() {
			return nil, fmt.Errorf("token: key %s is retiring; a new keyring takes current keys only", k.ID)
		}
	}
	r := &Keyring{maxLifetime: maxLifetime}
	if err := r.setKeys(keys); err != nil {
		return nil, err
	}
	return r, nil
}

// setKeys checks keys and installs them, oldest first.
func (r *Keyring) setKeys(keys []Key) error {
	seen := map[string]bool{}
	current := map[string]bool{}
	for _, k := range keys {
		if err := k.check(); err != nil {
			return err
		}
		if seen[k.ID] {
			return fmt.Errorf("token: key %s appears twice in the keyring", k.ID)
		}
		seen[k.ID] = true
		if k.Retire.IsZero() {
			if current[k.Algorithm] {
				return fmt.Errorf("token: two current %s keys in the keyring", k.Algorithm)
			}
			current[k.Algorithm] = true
		}
	}
	if len(current) == 0 {
		return errors.New("token: keyring has no current key")
	}
	r.keys = slices.Clone(keys)
	slices.SortStableFunc(r.keys, func(a, b Key) int { return a.NotBefore.Compare(b.NotBefore) })
	return nil
}

// MaxLifetime is the longest token lifetime the keyring's retirement times
// allow for.
func (r *Keyring) MaxLifetime() time.Duration { return r.maxLifetime }

// Rotate makes k the current key of its algorithm from now. The key it
// replaces stays published, and its tokens valid, until now plus the
// maximum token lifetime; keys whose retirement time has passed are
// dropped. Rotating in a key of an algorithm the keyring has no key for
// adds that algorithm.
func (r *Keyring) Rotate(now time.Time, k Key) error {
	if err := k.check(); err != nil {
		return err
	}
	k.NotBefore, k.Retire = now, time.Time{}
	r.mu.Lock()
	defer r.mu.Unlock()
	keys := make([]Key, 0, len(r.keys)+1)
	for _, old := range r.keys {
		if old.ID == k.ID {
			return fmt.Errorf("token: key %s is already in the keyring", k.ID)
		}
		if old.Algorithm == k.Algorithm && old.Retire.IsZero() {
			old.Retire = now.Add(r.maxLifetime)
		}
		if !old.Retire.IsZero() && !now.Before(old.Retire) {
			continue
		}
		keys = append(keys, old)
	}
	r.keys = append(keys, k)
	return nil
}

// Current returns the current signing key of alg.
func (r *Keyring) Current(alg string) (Key, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	for _, k := range r.keys {
		if k.Algorithm == alg && k.Retire.IsZero() {
			return k, true
		}
	}
	return Key{}, false
}

// Published returns the keys whose tokens are accepted at now: the current
// keys and the rotated-out keys not yet retired, newest first.
func (r *Keyring) Published(now time.Time) []Key {
	r.mu.RLock()
	defer r.mu.RUnlock()
	var out []Key
	for i := len(r.keys) - 1; i >= 0; i-- {
		if k := r.keys[i]; k.Retire.IsZero() || now.Before(k.Retire) {
			out = append(out, k)
		}
	}
	return out
}

// lookup returns the published key with the given kid.
func (r *Keyring) lookup(kid string, now time.Time) (Key, bool) {
	for _, k := range r.Published(now) {
		if k.ID == kid {
			return k, true
		}
	}
	return Key{}, false
}

// currentAlgorithms lists the algorithms the keyring has a current key for.
func (r *Keyring) currentAlgorithms() []string {
	var out []string
	for _, alg := range algorithms {
		if _, ok := r.Current(alg); ok {
			out = append(out, alg)
		}
	}
	return out
}

// keyringVersion is the version of the keyring's JSON form.
const keyringVersion = 1

type keyringJSON struct {
	Version            int       `json:"version"`
	MaxLifetimeSeconds int64     `json:"maxLifetimeSeconds"`
	Keys               []keyJSON `json:"keys"`
}

type keyJSON struct {
	ID        string     `json:"kid"`
	Algorithm string     `json:"alg"`
	PKCS8     []byte     `json:"pkcs8"`
	NotBefore time.Time  `json:"notBefore"`
	Retire    *time.Time `json:"retire,omitempty"`
}

// MarshalJSON encodes the keyring, private keys included (PKCS #8, base64):
// the bytes are secret and the coordinator seals them before storing.
func (r *Keyring) MarshalJSON() ([]byte, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.maxLifetime%time.Second != 0 {
		return nil, errors.New("token: keyring maximum token lifetime must be whole seconds to be stored")
	}
	out := keyringJSON{Version: keyringVersion, MaxLifetimeSeconds: int64(r.maxLifetime / time.Second), Keys: []keyJSON{}}
	for _, k := range r.keys {
		der, err := x509.MarshalPKCS8PrivateKey(k.Private)
		if err != nil {
			return nil, fmt.Errorf("token: key %s: %w", k.ID, err)
		}
		kj := keyJSON{ID: k.ID, Algorithm: k.Algorithm, PKCS8: der, NotBefore: k.NotBefore.UTC()}
		if !k.Retire.IsZero() {
			t := k.Retire.UTC()
			kj.Retire = &t
		}
		out.Keys = append(out.Keys, kj)
	}
	return json.Marshal(out)
}

// ParseKeyring decodes a keyring written by MarshalJSON, strictly: unknown
// fields, a key whose kid is not its thumbprint or whose type does not fit
// its algorithm, and two current keys of one algorithm are refused.
func ParseKeyring(b []byte) (*Keyring, error) {
	var in keyringJSON
	if err := api.DecodeStrict(b, &in); err != nil {
		return nil, fmt.Errorf("token: keyring: %w", err)
	}
	if in.Version != keyringVersion {
		return nil, fmt.Errorf("token: keyring version %d, want %d", in.Version, keyringVersion)
	}
	if in.MaxLifetimeSeconds <= 0 || in.MaxLifetimeSeconds > int64((1<<63-1)/time.Second) {
		return nil, fmt.Errorf("token: keyring maximum token lifetime %d s is out of range", in.MaxLifetimeSeconds)
	}
	keys := make([]Key, 0, len(in.Keys))
	for i, kj := range in.Keys {
		priv, err := x509.ParsePKCS8PrivateKey(kj.PKCS8)
		if err != nil {
			return nil, fmt.Errorf("token: keyring key %d: %w", i, err)
		}
		signer, ok := priv.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("token: keyring key %d: %T cannot sign", i, priv)
		}
		k := Key{ID: kj.ID, Algorithm: kj.Algorithm, Private: signer, NotBefore: kj.NotBefore}
		if kj.Retire != nil {
			if kj.Retire.IsZero() {
				return nil, fmt.Errorf("token: keyring key %s: zero retirement time", kj.ID)
			}
			k.Retire = *kj.Retire
		}
		keys = append(keys, k)
	}
	r := &Keyring{maxLifetime: time.Duration(in.MaxLifetimeSeconds) * time.Second}
	if err := r.setKeys(keys); err != nil {
		return nil, err
	}
	return r, nil
}
