package agent

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/trustbound/trustbound/attest"
)

// Config is what an enclave application gives Start: where the
// coordinator is, how to recognise it, who the application is and the TEE
// it runs in.
type Config struct {
	// Coordinator is the coordinator's URL; it must be https.
	Coordinator string
	// Roots are the CAs the coordinator's TLS certificate must chain to
	// (the service CA from its data directory). Required unless
	// HTTPClient is set.
	Roots *x509.CertPool
	// Workload is the application's workload name in the manifest.
	Workload string
	// TEE produces the application's evidence.
	TEE attest.Attester
	// HTTPClient, if set, replaces the client built from Roots; it must
	// itself trust only the coordinator's CA.
	HTTPClient *http.Client
	// Now is the clock the release is checked at (default time.Now).
	Now func() time.Time
}

// Session is an attested workload, entirely in memory: its secrets, its
// X.509-SVID with the TEE-held key, and the trust bundle its peers'
// SVIDs chain to. Start writes no file; Close zeroes the secrets.
type Session struct {
	// Workload and SPIFFEID name the application as the coordinator
	// released to it.
	Workload string
	SPIFFEID string
	// Secrets are the released secrets by name. Close zeroes them: copy a
	// value out only where it must outlive the session.
	Secrets map[string][]byte
	// Certificate is the X.509-SVID chain (leaf, intermediate) with the
	// TEE-held private key, ready for a tls.Config.
	Certificate tls.Certificate
	// Roots is the workload root CA of the release: peers' SVIDs chain to
	// it (see VerifyPeer).
	Roots *x509.CertPool
	// Simulated is true when the coordinator accepted simulated evidence.
	Simulated bool
	// Token is the attestation token the release was taken with.
	Token string

	client   *Client
	tee      attest.Attester
	identity *Identity

	mu     sync.Mutex
	closed bool
}

// Start runs the trust path for an application at its start: it generates
// keys inside the TEE, binds them and the coordinator's nonce into
// evidence, attests, and opens the release in memory. It writes no file.
func Start(ctx context.Context, cfg Config) (*Session, error) {
	if cfg.TEE == nil {
		return nil, errors.New("agent.Start: Config.TEE is required")
	}
	if cfg.Workload == "" {
		return nil, errors.New("agent.Start: Config.Workload is required")
	}
	u, err := url.Parse(cfg.Coordinator)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("agent.Start: Config.Coordinator %q is not an https URL", cfg.Coordinator)
	}
	hc := cfg.HTTPClient
	if hc == nil {
		if cfg.Roots == nil {
			return nil, errors.New("agent.Start: Config.Roots (the coordinator's CA) is required")
		}
		hc = &http.Client{
			Timeout:   30 * time.Second,
			Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: cfg.Roots, MinVersion: tls.VersionTLS13}, IdleConnTimeout: 90 * time.Second},
		}
	}
	now := time.Now
	if cfg.Now != nil {
		now = cfg.Now
	}
	c := NewClient(cfg.Coordinator, hc)
	id, res, err := run(ctx, c, cfg.TEE, cfg.Workload, now())
	if err != nil {
		return nil, fmt.Errorf("agent.Start: %s: %w", cfg.Workload, err)
	}
	cert, err := id.TLSCertificate(res)
	if err != nil {
		zeroSecrets(res.Secrets)
		return nil, fmt.Errorf("agent.Start: %w", err)
	}
	root, err := parseCertPEM(res.CA)
	if err != nil {
		zeroSecrets(res.Secrets)
		return nil, fmt.Errorf("agent.Start: release CA: %w", err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(root)
	return &Session{
		Workload: cfg.Workload, SPIFFEID: res.SPIFFEID, Secrets: res.Secrets, Certificate: cert, Roots: roots,
		Simulated: res.Simulated, Token: res.Token, client: c, tee: cfg.TEE, identity: id,
	}, nil
}

// Identity is the session's TEE-held key material (nil after Close).
func (s *Session) Identity() *Identity {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.identity
}

// Client is the session's coordinator client.
func (s *Session) Client() *Client { return s.client }

// Close zeroes every secret buffer, drops the session's keys (Go cannot
// overwrite a private key's internal copies: they are left to the garbage
// collector) and closes idle connections to the coordinator. It is safe
// to call more than once, but not while the caller is still reading
// Secrets, Certificate or Token: those fields are the caller's, unlocked.
func (s *Session) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	zeroSecrets(s.Secrets)
	s.Token = ""
	s.Certificate = tls.Certificate{}
	s.identity = nil
	if s.client != nil && s.client.http != nil {
		s.client.http.CloseIdleConnections()
	}
	return nil
}

// zeroSecrets overwrites every value with zeros and empties the map.
func zeroSecrets(m map[string][]byte) {
	for name, v := range m {
		clear(v)
		delete(m, name)
	}
}
