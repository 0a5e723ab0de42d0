// Package keybroker holds secrets and keys encrypted at rest in the store
// and releases them to appraised workloads only sealed (HPKE) to the key
// their TEE generated; no value ever leaves it in clear or reaches a log.
package keybroker

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"time"

	"github.com/trustbound/trustbound/api"
	"github.com/trustbound/trustbound/manifest"
	"github.com/trustbound/trustbound/store"
)

// CertIssuer issues the certificates of x509 secrets.
type CertIssuer interface {
	IssueSecretCert(subject string, dnsNames []string, key crypto.Signer, now time.Time, ttl time.Duration) ([]byte, error)
}

// Broker keeps secrets in a store, sealed under the data key.
type Broker struct {
	st     store.Store
	sealer *Sealer
	certs  CertIssuer
}

// New returns a broker over st.
func New(st store.Store, sealer *Sealer, certs CertIssuer) *Broker {
	return &Broker{st: st, sealer: sealer, certs: certs}
}

// ErrNoValue means a user secret has not been set by an owner yet.
var ErrNoValue = errors.New("keybroker: user secret has no value yet (an owner must set it)")

type secretState struct {
	Type     manifest.SecretType `json:"type"`
	Versions []secretVersion     `json:"versions"`
}

type secretVersion struct {
	Version int       `json:"version"`
	Value   []byte    `json:"value"`
	Created time.Time `json:"created"`
}

func secretKey(name string) string { return "secrets/" + name }

func (b *Broker) load(ctx context.Context, name string) (*secretState, int64, error) {
	kv, err := b.st.Get(ctx, secretKey(name))
	if errors.Is(err, store.ErrNotFound) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, err
	}
	pt, err := b.sealer.Open(kv.Key, kv.Value)
	if err != nil {
		return nil, 0, err
	}
	var s secretState
	if err := json.Unmarshal(pt, &s); err != nil {
		return nil, 0, fmt.Errorf("keybroker: secret %q: %w", name, err)
	}
	return &s, kv.Revision, nil
}

func (b *Broker) save(ctx context.Context, name string, s *secretState, expect int64) error {
	pt, err := json.Marshal(s)
	if err != nil {
		return err
	}
	sealed, err := b.sealer.Seal(secretKey(name), pt)
	if err != nil {
		return err
	}
	_, err = store.Put(ctx, b.st, secretKey(name), sealed, expect)
	return err
}

// SetUser stores a new version of a user secret and returns its number.
func (b *Broker) SetUser(ctx context.Context, s manifest.Secret, value []byte, now time.Time) (int, error) {
	if s.Type != manifest.User {
		return 0, fmt.Errorf("keybroker: secret %q is %s; only user secrets are set by owners", s.Name, s.Type)
	}
	if len(value) == 0 {
		return 0, errors.New("keybroker: empty secret value")
	}
	for {
		st, rev, err := b.load(ctx, s.Name)
		if err != nil {
			return 0, err
		}
		if st == nil {
			st = &secretState{Type: s.Type}
		}
		v := len(st.Versions) + 1
		st.Versions = append(st.Versions, secretVersion{Version: v, Value: value, Created: now.UTC()})
		err = b.save(ctx, s.Name, st, rev)
		if errors.Is(err, store.ErrConflict) {
			continue
		}
		return v, err
	}
}

// Current returns the latest version of a secret, generating the first one
// for coordinator-made types.
func (b *Broker) Current(ctx context.Context, s manifest.Secret, now time.Time) (int, []byte, error) {
	for {
		st, rev, err := b.load(ctx, s.Name)
		if err != nil {
			return 0, nil, err
		}
		if st != nil && st.Type == s.Type && len(st.Versions) > 0 {
			v := st.Versions[len(st.Versions)-1]
			return v.Version, v.Value, nil
		}
		if s.Type == manifest.User {
			return 0, nil, fmt.Errorf("%w: %q", ErrNoValue, s.Name)
		}
		value, err := b.generate(s, now)
		if err != nil {
			return 0, nil, err
		}
		st = &secretState{Type: s.Type, Versions: []secretVersion{{Version: 1, Value: value, Created: now.UTC()}}}
		err = b.save(ctx, s.Name, st, rev)
		if errors.Is(err, store.ErrConflict) {
			continue // another release generated it first: use theirs
		}
		if err != nil {
			return 0, nil, err
		}
		return 1, value, nil
	}
}

func (b *Broker) generate(s manifest.Secret, now time.Time) ([]byte, error) {
	switch s.Type {
	case manifest.Symmetric:
		bits := s.Bits
		if bits == 0 {
			bits = 256
		}
		k := make([]byte, bits/8)
		_, err := rand.Read(k)
		return k, err
	case manifest.KeyPair:
		key, err := generateKey(s.Algorithm)
		if err != nil {
			return nil, err
		}
		return privateKeyPEM(key)
	case manifest.X509:
		key, err := generateKey(s.Algorithm)
		if err != nil {
			return nil, err
		}
		der, err := b.certs.IssueSecretCert(s.Subject, s.DNSNames, key, now, 0)
		if err != nil {
			return nil, err
		}
		kp, err := privateKeyPEM(key)
		if err != nil {
			return nil, err
		}
		return append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), kp...), nil
	}
	return nil, fmt.Errorf("keybroker: secret %q: type %q cannot be generated", s.Name, s.Type)
}

func generateKey(alg string) (crypto.Signer, error) {
	switch alg {
	case "", "ec-p256":
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "ec-p384":
		return ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case "ed25519":
		_, k, err := ed25519.GenerateKey(rand.Reader)
		return k, err
	case "rsa-2048":
		return rsa.GenerateKey(rand.Reader, 2048)
	case "rsa-3072":
		return rsa.GenerateKey(rand.Reader, 3072)
	}
	return nil, fmt.Errorf("keybroker: unknown key algorithm %q", alg)
}

func privateKeyPEM(k crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// Release is one recorded release, as kept in the audit trail: who, what,
// on which evidence, when — never the value.
type Release struct {
	At             time.Time `json:"at"`
	Workload       string    `json:"workload"`
	Secret         string    `json:"secret"`
	Version        int       `json:"version"`
	EvidenceDigest string    `json:"evidenceDigest"`
	TokenID        string    `json:"tokenID"`
	Simulated      bool      `json:"simulated"`
}

// Release seals the current version of each secret to the TEE's key and
// records each release in the audit trail. Secrets are released all or
// none.
func (b *Broker) Release(ctx context.Context, rec Release, secrets []manifest.Secret, to api.HPKEKey, now time.Time) ([]api.WrappedSecret, error) {
	pub, err := RecipientKey(to)
	if err != nil {
		return nil, err
	}
	out := make([]api.WrappedSecret, 0, len(secrets))
	ops := make([]store.Op, 0, len(secrets))
	for _, s := range secrets {
		v, value, err := b.Current(ctx, s, now)
		if err != nil {
			return nil, err
		}
		info := api.SecretInfo(rec.Workload, s.Name, v)
		sealed, err := Wrap(pub, info, value)
		if err != nil {
			return nil, fmt.Errorf("keybroker: sealing %q: %w", s.Name, err)
		}
		out = append(out, api.WrappedSecret{Name: s.Name, Type: string(s.Type), Version: v, Info: info, Sealed: sealed})
		r := rec
		r.At, r.Secret, r.Version = now.UTC(), s.Name, v
		entry, err := json.Marshal(r)
		if err != nil {
			return nil, err
		}
		ops = append(ops, store.Op{Key: auditKey(now, rec.TokenID, s.Name), Value: entry, Expect: 0})
	}
	if len(ops) > 0 {
		if _, err := b.st.Apply(ctx, ops...); err != nil {
			return nil, fmt.Errorf("keybroker: recording the release: %w", err)
		}
	}
	return out, nil
}

func auditKey(now time.Time, tokenID, secret string) string {
	h := sha256.Sum256([]byte(tokenID + "\x00" + secret))
	return fmt.Sprintf("audit/%020d-%s", now.UnixNano(), hex.EncodeToString(h[:8]))
}

// Audit lists the recorded releases, oldest first.
func (b *Broker) Audit(ctx context.Context) ([]Release, error) {
	kvs, err := b.st.List(ctx, "audit/")
	if err != nil {
		return nil, err
	}
	out := make([]Release, 0, len(kvs))
	for _, kv := range kvs {
		var r Release
		if err := json.Unmarshal(kv.Value, &r); err != nil {
			return nil, fmt.Errorf("keybroker: audit %s: %w", kv.Key, err)
		}
		out = append(out, r)
	}
	return out, nil
}
