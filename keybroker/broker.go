// Package keybroker holds secrets and keys encrypted at rest in the store
// and releases them to appraised workloads only sealed (HPKE) to the key
// their TEE generated; no value ever leaves it in clear or reaches a log.
package keybroker

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hpke"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/trustbound/trustbound/api"
	"github.com/trustbound/trustbound/manifest"
	"github.com/trustbound/trustbound/store"
)

// CertIssuer issues the certificates of x509 secrets: the workload CA of the
// manifest's trust domain (*identity.CA). The subject becomes the common
// name; when it is empty, dnsNames[0] does.
type CertIssuer interface {
	IssueSecretCert(subject string, dnsNames []string, key crypto.Signer, now time.Time, ttl time.Duration) ([]byte, error)
	Root() *x509.Certificate
}

// Broker keeps secrets in a store, sealed under the data key. Each secret
// keeps every version it ever had: a version number is never reused, so
// the HPKE context of a release (api.SecretInfo) names one value only.
type Broker struct {
	st     store.Store
	sealer *Sealer

	// trail orders the positions of audit records (audit.go).
	trail auditTrail
}

// New returns a broker over st.
func New(st store.Store, sealer *Sealer) *Broker {
	return &Broker{st: st, sealer: sealer}
}

// ErrNoValue means a user secret has not been set by an owner yet.
var ErrNoValue = errors.New("keybroker: user secret has no value yet (an owner must set it)")

// ErrTypeChanged means the manifest gives a secret another type than the
// one its stored versions have. The broker neither converts nor discards a
// secret's history: the manifest must give the new secret a new name.
var ErrTypeChanged = errors.New("keybroker: secret type changed")

type secretState struct {
	Type     manifest.SecretType `json:"type"`
	Versions []secretVersion     `json:"versions"`
}

type secretVersion struct {
	Version int       `json:"version"`
	Value   []byte    `json:"value"`
	Created time.Time `json:"created"`
}

// latest returns the newest version, or nil if there is none.
func (s *secretState) latest() *secretVersion {
	if s == nil || len(s.Versions) == 0 {
		return nil
	}
	return &s.Versions[len(s.Versions)-1]
}

// add appends value as the next version and returns its number.
func (s *secretState) add(value []byte, now time.Time) int {
	v := 1
	if l := s.latest(); l != nil {
		v = l.Version + 1
	}
	s.Versions = append(s.Versions, secretVersion{Version: v, Value: value, Created: now.UTC()})
	return v
}

func secretKey(name string) string { return "secrets/" + name }

// load returns the stored state of a secret (nil if it has none) and its
// store revision, refusing state of another type than the manifest's.
func (b *Broker) load(ctx context.Context, s manifest.Secret) (*secretState, int64, error) {
	kv, err := b.st.Get(ctx, secretKey(s.Name))
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
	defer clear(pt) // the values are decoded into st's own slices
	var st secretState
	if err := json.Unmarshal(pt, &st); err != nil {
		return nil, 0, fmt.Errorf("keybroker: secret %q: %w", s.Name, err)
	}
	if st.Type != s.Type {
		return nil, 0, fmt.Errorf("%w: secret %q is stored as %s but the manifest now says %s: give the new secret a new name",
			ErrTypeChanged, s.Name, st.Type, s.Type)
	}
	return &st, kv.Revision, nil
}

func (b *Broker) save(ctx context.Context, name string, s *secretState, expect int64) error {
	pt, err := json.Marshal(s)
	if err != nil {
		return err
	}
	defer clear(pt)
	sealed, err := b.sealer.Seal(secretKey(name), pt)
	if err != nil {
		return err
	}
	_, err = store.Put(ctx, b.st, secretKey(name), sealed, expect)
	return err
}

// SetUser stores a new version of a user secret and returns its number.
// It returns ErrTypeChanged if the name is stored with another type.
func (b *Broker) SetUser(ctx context.Context, s manifest.Secret, value []byte, now time.Time) (int, error) {
	if s.Type != manifest.User {
		return 0, fmt.Errorf("keybroker: secret %q is %s; only user secrets are set by owners", s.Name, s.Type)
	}
	if len(value) == 0 {
		return 0, errors.New("keybroker: empty secret value")
	}
	for {
		st, rev, err := b.load(ctx, s)
		if err != nil {
			return 0, err
		}
		if st == nil {
			st = &secretState{Type: s.Type}
		}
		v := st.add(value, now)
		err = b.save(ctx, s.Name, st, rev)
		if errors.Is(err, store.ErrConflict) {
			continue
		}
		return v, err
	}
}

// Current returns the latest version of a secret. It generates the first
// version of coordinator-made types, and a new version of an x509 secret
// whose certificate is past two thirds of its lifetime at now, does not
// verify against certs.Root() at now (expired, or issued by another CA), or
// no longer has the manifest's names or key algorithm. Older versions are
// kept. certs is needed for x509 secrets only. It returns ErrNoValue for a
// user secret not set yet and ErrTypeChanged if the name is stored with
// another type.
func (b *Broker) Current(ctx context.Context, s manifest.Secret, certs CertIssuer, now time.Time) (int, []byte, error) {
	if s.Type == manifest.X509 && certs == nil {
		return 0, nil, fmt.Errorf("keybroker: secret %q is x509 but no certificate issuer was given", s.Name)
	}
	for {
		st, rev, err := b.load(ctx, s)
		if err != nil {
			return 0, nil, err
		}
		if l := st.latest(); l != nil {
			renew := false
			if s.Type == manifest.X509 {
				if renew, err = needsRenewal(s, l.Value, certs.Root(), now); err != nil {
					return 0, nil, err
				}
			}
			if !renew {
				return l.Version, l.Value, nil
			}
		}
		if s.Type == manifest.User {
			return 0, nil, fmt.Errorf("%w: %q", ErrNoValue, s.Name)
		}
		value, err := generate(s, certs, now)
		if err != nil {
			return 0, nil, err
		}
		if st == nil {
			st = &secretState{Type: s.Type}
		}
		v := st.add(value, now)
		err = b.save(ctx, s.Name, st, rev)
		if errors.Is(err, store.ErrConflict) {
			continue // another release wrote first: use theirs
		}
		if err != nil {
			return 0, nil, err
		}
		return v, value, nil
	}
}

// needsRenewal reports whether the stored certificate of an x509 secret
// must be replaced: past two thirds of its lifetime, not valid under root
// at now, or no longer matching the manifest's names and algorithm.
func needsRenewal(s manifest.Secret, value []byte, root *x509.Certificate, now time.Time) (bool, error) {
	if root == nil {
		return false, fmt.Errorf("keybroker: secret %q: the certificate issuer has no root", s.Name)
	}
	block, _ := pem.Decode(value)
	if block == nil || block.Type != "CERTIFICATE" {
		return false, fmt.Errorf("keybroker: secret %q: stored value does not start with a certificate", s.Name)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return false, fmt.Errorf("keybroker: secret %q: stored certificate: %w", s.Name, err)
	}
	lifetime := cert.NotAfter.Sub(cert.NotBefore)
	if !now.Before(cert.NotBefore.Add(lifetime / 3 * 2)) {
		return true, nil
	}
	roots := x509.NewCertPool()
	roots.AddCert(root)
	if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		return true, nil
	}
	cn := s.Subject
	if cn == "" && len(s.DNSNames) > 0 {
		cn = s.DNSNames[0]
	}
	if cert.Subject.CommonName != cn || !slices.Equal(cert.DNSNames, s.DNSNames) {
		return true, nil
	}
	return keyAlgorithm(cert.PublicKey) != algorithm(s), nil
}

func generate(s manifest.Secret, certs CertIssuer, now time.Time) ([]byte, error) {
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
		key, err := generateKey(algorithm(s))
		if err != nil {
			return nil, err
		}
		return privateKeyPEM(key)
	case manifest.X509:
		key, err := generateKey(algorithm(s))
		if err != nil {
			return nil, err
		}
		der, err := certs.IssueSecretCert(s.Subject, s.DNSNames, key, now, 0)
		if err != nil {
			return nil, fmt.Errorf("keybroker: secret %q: %w", s.Name, err)
		}
		kp, err := privateKeyPEM(key)
		if err != nil {
			return nil, err
		}
		return append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), kp...), nil
	}
	return nil, fmt.Errorf("keybroker: secret %q: type %q cannot be generated", s.Name, s.Type)
}

// algorithm returns the key algorithm of a keypair or x509 secret.
func algorithm(s manifest.Secret) string {
	if s.Algorithm == "" {
		return "ec-p256"
	}
	return s.Algorithm
}

// keyAlgorithm names pub as a manifest algorithm, "" if none fits.
func keyAlgorithm(pub crypto.PublicKey) string {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			return "ec-p256"
		case elliptic.P384():
			return "ec-p384"
		}
	case ed25519.PublicKey:
		return "ed25519"
	case *rsa.PublicKey:
		return fmt.Sprintf("rsa-%d", k.N.BitLen())
	}
	return ""
}

func generateKey(alg string) (crypto.Signer, error) {
	switch alg {
	case "ec-p256":
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
type Release = api.AuditRecord

// ReleaseRequest is one release to one workload.
type ReleaseRequest struct {
	// Record says who, on which evidence, with which token; At, Secret and
	// Version are filled in per secret.
	Record Release
	// Secrets are released all or none.
	Secrets []manifest.Secret
	// To is the HPKE key the workload's TEE generated.
	To api.HPKEKey
	// ToKey, when set, is To already parsed by RecipientKey (the
	// coordinator parses it when it checks the runtime data), so the
	// ML-KEM key is not expanded twice. It must be To: a release refuses
	// a ToKey whose suite or bytes differ from To's.
	ToKey hpke.PublicKey
	Now   time.Time
	// Certs issues the certificates of x509 secrets; it may be nil when no
	// x509 secret is released.
	Certs CertIssuer
	// Conditions are compare-only ops (store.Op with Check set) that must
	// still hold when the release is recorded (e.g. the revision of the
	// manifest the release was decided under). They join the
	// audit trail's Apply: if one fails, Release returns store.ErrConflict
	// and nothing is recorded or returned.
	Conditions []store.Op
}

// recipient is the TEE's HPKE key: ToKey when set and it is To (same
// suite, same bytes), else To parsed.
func (req *ReleaseRequest) recipient() (hpke.PublicKey, error) {
	if req.ToKey == nil {
		return RecipientKey(req.To)
	}
	if err := checkKDFAEAD(req.To); err != nil {
		return nil, err
	}
	if req.ToKey.KEM().ID() != req.To.KEM || !bytes.Equal(req.ToKey.Bytes(), req.To.PublicKey) {
		return nil, errors.New("keybroker: the parsed TEE HPKE key is not the one the release names")
	}
	return req.ToKey, nil
}

// Release seals the current version of each secret to the TEE's key and
// records each release in the audit trail, in one Apply with
// req.Conditions. Secrets are released all or none.
func (b *Broker) Release(ctx context.Context, req ReleaseRequest) ([]api.WrappedSecret, error) {
	pub, err := req.recipient()
	if err != nil {
		return nil, err
	}
	return b.release(ctx, req, func(out []api.WrappedSecret, values [][]byte) error {
		for i := range out {
			sealed, err := Wrap(pub, out[i].Info, values[i])
			if err != nil {
				return fmt.Errorf("keybroker: sealing %q: %w", out[i].Name, err)
			}
			out[i].Sealed = sealed
		}
		return nil
	})
}

// ReleaseAll is Release with every secret sealed under one HPKE context
// (WrapAll; api.ReleaseContext): the info string is
// api.ReleaseInfo(workload, token id, the secrets in order) and each
// secret's Info
// (api.SecretInfo) is its additional data. It returns the context too.
func (b *Broker) ReleaseAll(ctx context.Context, req ReleaseRequest) ([]api.WrappedSecret, api.ReleaseContext, error) {
	pub, err := req.recipient()
	if err != nil {
		return nil, api.ReleaseContext{}, err
	}
	var rc api.ReleaseContext
	out, err := b.release(ctx, req, func(out []api.WrappedSecret, values [][]byte) error {
		rc.Info = api.ReleaseInfo(req.Record.Workload, req.Record.TokenID, out)
		aads := make([]string, len(out))
		for i := range out {
			aads[i] = out[i].Info
		}
		enc, sealed, err := WrapAll(pub, rc.Info, aads, values)
		if err != nil {
			return fmt.Errorf("keybroker: sealing the release: %w", err)
		}
		rc.Enc = enc
		for i := range out {
			out[i].Sealed = sealed[i]
		}
		return nil
	})
	if err != nil {
		return nil, api.ReleaseContext{}, err
	}
	if len(out) == 0 {
		// Nothing sealed (a workload granted no secrets): the info still
		// names the token and says "0 secrets", and there is no
		// encapsulation.
		rc.Info = api.ReleaseInfo(req.Record.Workload, req.Record.TokenID, out)
	}
	return out, rc, nil
}

// release reads the current version of each secret, has seal fill in the
// Sealed of each (values[i] is out[i]'s value), and records the release.
// The values are this call's own copies (Current reads them afresh), and
// are overwritten with zeros before release returns, sealed or not.
func (b *Broker) release(ctx context.Context, req ReleaseRequest, seal func(out []api.WrappedSecret, values [][]byte) error) ([]api.WrappedSecret, error) {
	out := make([]api.WrappedSecret, 0, len(req.Secrets))
	values := make([][]byte, 0, len(req.Secrets))
	defer func() {
		for _, v := range values {
			clear(v)
		}
	}()
	entries := make([][]byte, 0, len(req.Secrets))
	for _, s := range req.Secrets {
		v, value, err := b.Current(ctx, s, req.Certs, req.Now)
		if err != nil {
			return nil, err
		}
		values = append(values, value)
		info := api.SecretInfo(req.Record.Workload, s.Name, v)
		out = append(out, api.WrappedSecret{Name: s.Name, Type: string(s.Type), Version: v, Info: info})
		r := req.Record
		r.At, r.Secret, r.Version = req.Now.UTC(), s.Name, v
		entry, err := json.Marshal(r)
		if err != nil {
			return nil, err
		}
		entries = append(entries, entry)
	}
	if len(entries) == 0 {
		return out, nil
	}
	if err := seal(out, values); err != nil {
		return nil, err
	}
	names := make([]string, len(out))
	for i := range out {
		names[i] = out[i].Name
	}
	if err := b.record(ctx, req.Now, req.Record.TokenID, names, entries, req.Conditions); err != nil {
		return nil, err
	}
	return out, nil
}
