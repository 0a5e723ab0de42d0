// Package coordinator is the trustbound service: it composes verification
// (attest), appraisal (policy), tokens, the key broker and the workload CA
// behind one HTTP API, keeps its state in a store, and is the only place
// that maps errors to HTTP status codes.
package coordinator

import (
	"context"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/trustbound/trustbound/attest"
	"github.com/trustbound/trustbound/identity"
	"github.com/trustbound/trustbound/keybroker"
	"github.com/trustbound/trustbound/manifest"
	"github.com/trustbound/trustbound/store"
)

// Config is everything the coordinator is built from. Store, Sealer and
// Verifiers are required; the rest have defaults.
type Config struct {
	Store     store.Store
	Sealer    *keybroker.Sealer
	Verifiers *attest.Registry
	// Issuer is the iss of tokens, normally the coordinator's URL.
	Issuer string
	// BootstrapToken is the secret the very first manifest must present
	// (header Trustbound-Bootstrap) besides its owner's signature, so that
	// whoever reaches a fresh coordinator first cannot make themselves its
	// owner. Required; `trustbound serve` keeps it in <data>/bootstrap.token.
	BootstrapToken []byte
	Now            func() time.Time
	Logger         *slog.Logger
	NonceTTL       time.Duration // default 2 minutes
	TokenTTL       time.Duration // default 5 minutes
	CertTTL        time.Duration // default 1 hour
	// MaxChallenges bounds outstanding challenges (default 65536).
	MaxChallenges int
	// ChallengeRate and ChallengeBurst bound the challenges one client
	// address may take (default 20/s, burst 40).
	ChallengeRate  float64
	ChallengeBurst int
	// AzureAllowSimulated lets the Azure-compatible surface (/attest/*)
	// accept simulated evidence when the manifest allows simulation. Off by
	// default: relying parties written for Azure read neither
	// x-tb-simulated nor the EAR status, and simulated evidence can be
	// forged by anyone (its keys are public). Its tokens never carry
	// x-ms-compliance-status.
	AzureAllowSimulated bool
	// KeyReleaseBearer is the bearer access token that callers of the Key
	// Vault style release surface (POST /keys/{name}/release, akv.go)
	// present in place of Key Vault's Entra ID access token; compared in
	// constant time. Empty: that surface refuses every call.
	KeyReleaseBearer []byte
	// RegoTimeout bounds one evaluation of a Rego policy (default
	// policy.DefaultRegoTimeout).
	RegoTimeout time.Duration
	// SelfAttester produces the coordinator's own evidence, binding its
	// service CA and token keys (selfattest.go); `trustbound serve` gives
	// a simulated SNP TEE off TEE hardware. nil: GET
	// /v1/coordinator-evidence answers 404.
	SelfAttester attest.Attester
	// MaxInFlight bounds the expensive requests (attest, release, dry
	// run, and their Azure and KBS counterparts) running at once (default
	// 4 × GOMAXPROCS); QueueTimeout is how long one waits for a slot
	// before it is refused with 503 and Retry-After (default 10s). See
	// limit.go.
	MaxInFlight  int
	QueueTimeout time.Duration
}

// Coordinator is the running service state.
type Coordinator struct {
	cfg     Config
	now     func() time.Time
	log     *slog.Logger
	nonces  *nonces
	kbs     *kbsSessions // the KBS protocol's sessions (kbs.go)
	limiter *limiter
	gate    *gate // the bound on expensive requests (limit.go)
	// self caches the coordinator's own evidence (GET /v1/coordinator-evidence).
	self selfEvidence
	// service is the CA of the coordinator's own TLS certificate;
	// workload CAs (one per SPIFFE trust domain) are made on first use.
	service *identity.CA
	broker  *keybroker.Broker
	// tok is the token keyring in force and its issuers (tokens.go);
	// rotateMu serialises rotations.
	tok      atomic.Pointer[tokenState]
	rotateMu sync.Mutex
	// policies prepares appraisal policies once per text (policies.go).
	policies *PolicyCache

	mu      sync.RWMutex
	current *manifestState // nil until an owner sets one
	status  map[string]*workloadRecord
	cas     map[string]*identity.CA // trust domain → workload CA
	// inters caches intermediates by store key (intermediateKey).
	inters map[string]*identity.CA
}

type manifestState struct {
	Raw      []byte             `json:"raw"`
	Digest   string             `json:"digest"`
	SetBy    string             `json:"setBy"`
	SetAt    time.Time          `json:"setAt"`
	Revision int64              `json:"-"`
	parsed   *manifest.Manifest `json:"-"`
}

type workloadRecord struct {
	attested, refused, released int
	lastVerdict                 string
	lastAttested                time.Time
	simulated                   bool
}

// serviceTrustDomain names the coordinator's own CA. It is stored apart
// from the workload CAs, so no manifest can make workloads share it.
const serviceTrustDomain = "trustbound-coordinator"

const (
	keyServiceCA = "coordinator/service-ca"
	keyCAPrefix  = "coordinator/ca/"
	keyManifest  = "manifest/current"
)

// New builds a coordinator on its store: it loads (or, on first start,
// creates) the CA and the token keyring, sealed under the data key, and the
// manifest in force.
func New(ctx context.Context, cfg Config) (*Coordinator, error) {
	if cfg.Store == nil || cfg.Sealer == nil || cfg.Verifiers == nil {
		return nil, errors.New("coordinator: store, sealer and verifiers are required")
	}
	if len(cfg.BootstrapToken) < 16 {
		return nil, errors.New("coordinator: a bootstrap token of at least 16 bytes is required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.NonceTTL == 0 {
		cfg.NonceTTL = 2 * time.Minute
	}
	if cfg.TokenTTL == 0 {
		cfg.TokenTTL = 5 * time.Minute
	}
	if cfg.CertTTL == 0 {
		cfg.CertTTL = time.Hour
	}
	if cfg.MaxChallenges == 0 {
		cfg.MaxChallenges = 1 << 16
	}
	if cfg.Issuer == "" {
		cfg.Issuer = "trustbound"
	}
	if cfg.ChallengeRate == 0 {
		cfg.ChallengeRate = 20
	}
	if cfg.ChallengeBurst == 0 {
		cfg.ChallengeBurst = 40
	}
	c := &Coordinator{cfg: cfg, now: cfg.Now, log: cfg.Logger, nonces: newNonces(cfg.NonceTTL, cfg.MaxChallenges),
		limiter: newLimiter(cfg.ChallengeRate, cfg.ChallengeBurst, 4096), status: map[string]*workloadRecord{}, cas: map[string]*identity.CA{}, inters: map[string]*identity.CA{}, kbs: newKBSSessions()}
	var err error
	if c.service, err = c.loadCA(ctx, keyServiceCA, serviceTrustDomain); err != nil {
		return nil, err
	}
	tok, err := c.loadTokens(ctx)
	if err != nil {
		return nil, err
	}
	c.tok.Store(tok)
	c.policies = NewPolicyCache(0, cfg.RegoTimeout)
	c.gate = newGate(cfg.MaxInFlight, cfg.QueueTimeout)
	c.broker = keybroker.New(cfg.Store, cfg.Sealer)
	if err := c.loadManifest(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// sealedGetOrCreate returns the sealed value at key, creating it with make
// on first use (compare-and-swap, so two starting coordinators agree).
func (c *Coordinator) sealedGetOrCreate(ctx context.Context, key string, make func() ([]byte, error)) ([]byte, error) {
	kv, err := c.cfg.Store.Get(ctx, key)
	if err == nil {
		return c.cfg.Sealer.Open(key, kv.Value)
	}
	if !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	pt, err := make()
	if err != nil {
		return nil, err
	}
	sealed, err := c.cfg.Sealer.Seal(key, pt)
	if err != nil {
		return nil, err
	}
	if _, err := store.Put(ctx, c.cfg.Store, key, sealed, 0); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return c.sealedGetOrCreate(ctx, key, make)
		}
		return nil, err
	}
	return pt, nil
}

// caFor returns the workload CA of a trust domain, creating it (sealed in
// the store) on first use.
func (c *Coordinator) caFor(ctx context.Context, trustDomain string) (*identity.CA, error) {
	c.mu.RLock()
	ca := c.cas[trustDomain]
	c.mu.RUnlock()
	if ca != nil {
		return ca, nil
	}
	ca, err := c.loadCA(ctx, keyCAPrefix+trustDomain, trustDomain)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.cas[trustDomain] = ca
	c.mu.Unlock()
	return ca, nil
}

// intermediateTTL is the validity of a new intermediate CA.
const intermediateTTL = 30 * 24 * time.Hour

// intermediateKey is where the intermediate of a trust domain's workload CA
// for one manifest version is sealed: coordinator/ca/<td>/intermediate/
// followed by the first 32 hex digits (128 bits) of the manifest digest.
func intermediateKey(trustDomain, manifestDigest string) (key, label string) {
	label = manifestDigest
	if len(label) > 32 {
		label = label[:32]
	}
	return keyCAPrefix + trustDomain + "/intermediate/" + label, label
}

// intermediateFor returns the intermediate CA that issues the workload
// certificates of one manifest version, signed by the trust domain's root:
// created (sealed in the store) on the first release under that manifest,
// and replaced when it could no longer cover a certificate of CertTTL
// issued now.
func (c *Coordinator) intermediateFor(ctx context.Context, root *identity.CA, manifestDigest string) (*identity.CA, error) {
	key, label := intermediateKey(root.TrustDomain(), manifestDigest)
	now := c.now()
	usable := func(ca *identity.CA) bool {
		cert := ca.Certificate()
		return !now.Before(cert.NotBefore) && !now.Add(c.cfg.CertTTL).After(cert.NotAfter)
	}
	c.mu.RLock()
	ca := c.inters[key]
	c.mu.RUnlock()
	if ca != nil && usable(ca) {
		return ca, nil
	}
	create := func() ([]byte, error) {
		ca, err := root.NewIntermediate(label, now, intermediateTTL)
		if err != nil {
			return nil, err
		}
		certPEM, keyPEM, err := ca.MarshalPEM()
		if err != nil {
			return nil, err
		}
		return append(certPEM, keyPEM...), nil
	}
	pt, err := c.sealedGetOrCreate(ctx, key, create)
	if err != nil {
		return nil, fmt.Errorf("coordinator: intermediate CA for %s: %w", key, err)
	}
	if ca, err = parseIntermediate(root, pt); err != nil {
		return nil, fmt.Errorf("coordinator: intermediate CA for %s: %w", key, err)
	}
	if !usable(ca) {
		// Expiring (or not yet valid): replace it, compare-and-swap on the
		// revision read, so concurrent coordinators make one successor.
		kv, err := c.cfg.Store.Get(ctx, key)
		if err != nil {
			return nil, fmt.Errorf("coordinator: intermediate CA for %s: %w", key, err)
		}
		if pt, err = create(); err != nil {
			return nil, fmt.Errorf("coordinator: intermediate CA for %s: %w", key, err)
		}
		sealed, err := c.cfg.Sealer.Seal(key, pt)
		if err != nil {
			return nil, fmt.Errorf("coordinator: intermediate CA for %s: %w", key, err)
		}
		if _, err := store.Put(ctx, c.cfg.Store, key, sealed, kv.Revision); err != nil {
			return nil, fmt.Errorf("coordinator: replacing intermediate CA for %s: %w", key, err)
		}
		if ca, err = parseIntermediate(root, pt); err != nil {
			return nil, fmt.Errorf("coordinator: intermediate CA for %s: %w", key, err)
		}
	}
	c.mu.Lock()
	c.inters[key] = ca
	c.mu.Unlock()
	return ca, nil
}

// parseIntermediate splits the stored certificate and key of an
// intermediate and loads it under root.
func parseIntermediate(root *identity.CA, pt []byte) (*identity.CA, error) {
	certBlock, rest := pem.Decode(pt)
	if certBlock == nil {
		return nil, errors.New("stored intermediate is corrupt")
	}
	return identity.LoadIntermediate(root.Root(), pem.EncodeToMemory(certBlock), rest)
}

// loadCA loads the CA sealed at key, creating it on first use.
func (c *Coordinator) loadCA(ctx context.Context, key, trustDomain string) (*identity.CA, error) {
	pt, err := c.sealedGetOrCreate(ctx, key, func() ([]byte, error) {
		ca, err := identity.NewCA(trustDomain, c.now())
		if err != nil {
			return nil, err
		}
		certPEM, keyPEM, err := ca.MarshalPEM()
		if err != nil {
			return nil, err
		}
		return append(certPEM, keyPEM...), nil
	})
	if err != nil {
		return nil, fmt.Errorf("coordinator: CA for %s: %w", trustDomain, err)
	}
	certBlock, rest := pem.Decode(pt)
	if certBlock == nil {
		return nil, fmt.Errorf("coordinator: stored CA for %s is corrupt", trustDomain)
	}
	return identity.LoadCA(pem.EncodeToMemory(certBlock), rest)
}

func (c *Coordinator) loadManifest(ctx context.Context) error {
	kv, err := c.cfg.Store.Get(ctx, keyManifest)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	var st manifestState
	if err := json.Unmarshal(kv.Value, &st); err != nil {
		return fmt.Errorf("coordinator: stored manifest: %w", err)
	}
	m, err := manifest.Parse(st.Raw)
	if err != nil {
		return fmt.Errorf("coordinator: stored manifest: %w", err)
	}
	if err := m.Validate(); err != nil {
		return fmt.Errorf("coordinator: stored manifest: %w", err)
	}
	st.parsed, st.Revision = m, kv.Revision
	c.current = &st
	return nil
}

// manifestInForce returns the current manifest, or nil.
func (c *Coordinator) manifestInForce() *manifestState {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.current
}

// ErrUnauthorized is wrapped when a request lacks an owner's authority.
var ErrUnauthorized = errors.New("not authorized by an owner of the manifest")

// setManifest installs a new manifest signed by owner, if the revision of
// the one in force is still prevRev.
func (c *Coordinator) setManifest(ctx context.Context, raw []byte, m *manifest.Manifest, owner string, prev *manifestState) (*manifestState, error) {
	st := &manifestState{Raw: raw, Digest: manifest.Digest(raw), SetBy: owner, SetAt: c.now().UTC(), parsed: m}
	val, err := json.Marshal(st)
	if err != nil {
		return nil, err
	}
	var expect int64
	if prev != nil {
		expect = prev.Revision
	}
	rev, err := c.cfg.Store.Apply(ctx,
		store.Op{Key: keyManifest, Value: val, Expect: expect},
		// History is keyed by the revision it replaced: unique, since the
		// compare-and-swap above lets one change per revision through.
		store.Op{Key: fmt.Sprintf("manifest/history/%020d", expect), Value: val, Expect: 0},
	)
	if err != nil {
		return nil, err
	}
	st.Revision = rev
	c.mu.Lock()
	c.current = st
	c.mu.Unlock()
	return st, nil
}

func (c *Coordinator) record(workload string, f func(*workloadRecord)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := c.status[workload]
	if r == nil {
		r = &workloadRecord{}
		c.status[workload] = r
	}
	f(r)
}

// CA returns the root certificate of the coordinator's own (TLS) CA.
func (c *Coordinator) CA() *x509.Certificate { return c.service.Root() }

// WorkloadCA returns the root certificate of a trust domain's workload CA.
func (c *Coordinator) WorkloadCA(ctx context.Context, trustDomain string) (*x509.Certificate, error) {
	ca, err := c.caFor(ctx, trustDomain)
	if err != nil {
		return nil, err
	}
	return ca.Root(), nil
}

// ServerCertificate issues the coordinator's own TLS certificate from its CA.
func (c *Coordinator) ServerCertificate(key *ecdsa.PrivateKey, hosts []string) ([]byte, error) {
	return issueServer(c.service, key, hosts, c.now())
}
