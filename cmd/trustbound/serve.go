package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/trustbound/trustbound/attest/formats"
	"github.com/trustbound/trustbound/collateral"
	"github.com/trustbound/trustbound/coordinator"
	"github.com/trustbound/trustbound/keybroker"
	"github.com/trustbound/trustbound/store"
)

type serverOptions struct {
	dataDir  string
	listen   string
	hosts    []string
	logger   *slog.Logger
	tokenTTL time.Duration
	nonceTTL time.Duration
	now      func() time.Time
	// offline: collateral only from the cache (<data>/collateral) and
	// imported bundles, never the network.
	offline         bool
	allowMissingCRL bool
	// regoTimeout bounds one evaluation of a Rego policy.
	regoTimeout time.Duration
	// azureAllowSimulated lets /attest/* accept simulated evidence.
	azureAllowSimulated bool
	// keyReleaseBearer is the bearer access token of the Key Vault style
	// release surface (/keys/*/release); empty: that surface refuses all.
	keyReleaseBearer []byte
}

// server is a running coordinator behind HTTPS.
type server struct {
	coord *coordinator.Coordinator
	url   string
	caPEM []byte
	// bootstrap is the token the first manifest must present.
	bootstrap []byte
	http      *http.Server
	st        store.Store
	done      chan error
}

// startServer opens the data directory (store, data key), builds the
// coordinator and serves it over TLS with a certificate from its own CA.
func startServer(ctx context.Context, o serverOptions) (_ *server, err error) {
	if err := os.MkdirAll(o.dataDir, 0o700); err != nil {
		return nil, err
	}
	dataKey, err := loadOrCreateSecretFile(filepath.Join(o.dataDir, "data.key"), keybroker.DataKeySize, false)
	if err != nil {
		return nil, err
	}
	sealer, err := keybroker.NewSealer(dataKey)
	if err != nil {
		return nil, err
	}
	bootstrap, err := loadOrCreateSecretFile(filepath.Join(o.dataDir, "bootstrap.token"), 24, true)
	if err != nil {
		return nil, err
	}
	var client *http.Client
	if !o.offline {
		client = &http.Client{Timeout: 30 * time.Second}
	}
	fetcher, err := collateral.New(collateral.Options{Dir: filepath.Join(o.dataDir, "collateral"), Client: client, Now: o.now, Logger: o.logger})
	if err != nil {
		return nil, err
	}
	reg, err := formats.Registry(formats.Config{Getter: fetcher, Intel: fetcher, AllowMissingCRL: o.allowMissingCRL})
	if err != nil {
		return nil, err
	}
	st, err := store.OpenBolt(filepath.Join(o.dataDir, "store.db"), store.BoltOptions{})
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			st.Close()
		}
	}()
	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			ln.Close()
		}
	}()
	host, port, err := net.SplitHostPort(ln.Addr().String())
	if err != nil {
		return nil, err
	}
	if len(o.hosts) == 0 {
		o.hosts = []string{host}
		if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
			o.hosts = append(o.hosts, "localhost")
		}
	}
	url := "https://" + net.JoinHostPort(o.hosts[0], port)
	coord, err := coordinator.New(ctx, coordinator.Config{
		Store: st, Sealer: sealer, Verifiers: reg, Issuer: url, Logger: o.logger, BootstrapToken: bootstrap,
		TokenTTL: o.tokenTTL, NonceTTL: o.nonceTTL, Now: o.now, RegoTimeout: o.regoTimeout,
		AzureAllowSimulated: o.azureAllowSimulated, KeyReleaseBearer: o.keyReleaseBearer,
		SelfAttester: coordinatorSelfAttester(),
	})
	if err != nil {
		return nil, err
	}
	// The TLS key lives only in memory: each start gets a fresh one,
	// certified by the coordinator's CA.
	tlsKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	certDER, err := coord.ServerCertificate(tlsKey, o.hosts)
	if err != nil {
		return nil, err
	}
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: coord.CA().Raw})
	if err := os.WriteFile(filepath.Join(o.dataDir, "ca.pem"), caPEM, 0o644); err != nil {
		return nil, err
	}
	s := &server{coord: coord, url: url, caPEM: caPEM, bootstrap: bootstrap, st: st, done: make(chan error, 1)}
	s.http = &http.Server{
		Handler:           coord.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(o.logger.Handler(), slog.LevelWarn),
		TLSConfig: &tls.Config{
			MinVersion:   tls.VersionTLS13,
			Certificates: []tls.Certificate{{Certificate: [][]byte{certDER, coord.CA().Raw}, PrivateKey: tlsKey}},
		},
	}
	go func() { s.done <- s.http.ServeTLS(ln, "", "") }()
	return s, nil
}

// shutdown stops accepting requests, lets those in flight finish (within
// ctx) and closes the store.
func (s *server) shutdown(ctx context.Context) error {
	err := s.http.Shutdown(ctx)
	if serr := <-s.done; serr != nil && !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	if cerr := s.st.Close(); err == nil {
		err = cerr
	}
	return err
}

// loadOrCreateSecretFile reads a secret of size bytes kept in a file of
// mode 0600, or creates it on first start; text makes it base64url text
// (for tokens people copy), else raw bytes.
func loadOrCreateSecretFile(path string, size int, text bool) ([]byte, error) {
	want := size
	if text {
		want = base64.RawURLEncoding.EncodedLen(size)
	}
	k, err := os.ReadFile(path)
	if err == nil {
		if len(k) != want {
			return nil, fmt.Errorf("%s: want %d bytes, got %d", path, want, len(k))
		}
		return k, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	k = make([]byte, size)
	if _, err := rand.Read(k); err != nil {
		return nil, err
	}
	if text {
		k = []byte(base64.RawURLEncoding.EncodeToString(k))
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, err
	}
	if _, err := f.Write(k); err != nil {
		f.Close()
		return nil, err
	}
	return k, f.Close()
}

func newLogger(w io.Writer, level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, usageErr("--log-level: %v", err)
	}
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l})), nil
}

func cmdServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("serve", stderr)
	dataDir := fs.String("data", "trustbound-data", "data directory (store, data key, ca.pem)")
	listen := fs.String("listen", "127.0.0.1:8443", "address to serve HTTPS on")
	hosts := fs.String("hosts", "", "comma-separated names and IPs for the TLS certificate (default: the listen host)")
	tokenTTL := fs.Duration("token-ttl", 5*time.Minute, "lifetime of attestation tokens")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	offline := fs.Bool("offline", false, "never fetch vendor collateral: use <data>/collateral (see 'trustbound collateral import')")
	allowMissingCRL := fs.Bool("allow-missing-crl", false, "accept evidence whose vendor revocation list is missing or stale (claims then say revocation was not checked, which appraisal refuses for real evidence)")
	rotation := fs.Duration("token-key-rotation", 0, "rotate the token signing keys (ES256 and RS256) this often, e.g. 720h; rotated-out keys stay published until their tokens expire (0: never)")
	regoTimeout := fs.Duration("rego-timeout", 0, "time budget of one Rego policy evaluation (default 100ms)")
	azureAllowSim := fs.Bool("azure-allow-simulated", false, "let the Azure-compatible surface (/attest/*) accept simulated evidence when the manifest allows simulation (its tokens never claim x-ms-compliance-status); for demos only: relying parties written for Azure do not read x-tb-simulated")
	gcPercent := fs.Int("gc-percent", coordinator.DefaultGCPercent, "garbage collector target percentage (GOGC), unless the GOGC environment variable is set")
	memLimit := fs.Int64("memory-limit", coordinator.DefaultMemoryLimit>>20, "soft memory limit in MiB (GOMEMLIMIT) near which the collector runs harder, unless GOMEMLIMIT is set (0: none)")
	keyReleaseBearerFile := fs.String("key-release-bearer-file", "", "file holding the bearer access token that callers of the Key Vault style release surface (POST /keys/{name}/release) must present in place of Key Vault's Entra ID token (empty: that surface refuses every call)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	var keyReleaseBearer []byte
	if *keyReleaseBearerFile != "" {
		b, err := readBounded(*keyReleaseBearerFile, maxTokenFile)
		if err != nil {
			return fmt.Errorf("--key-release-bearer-file: %w", err)
		}
		if keyReleaseBearer = bytes.TrimSpace(b); len(keyReleaseBearer) < 16 {
			return usageErr("--key-release-bearer-file must hold a bearer token of at least 16 characters")
		}
	}
	if *rotation < 0 || (*rotation > 0 && *rotation <= *tokenTTL) {
		return usageErr("--token-key-rotation must be longer than --token-ttl (or 0)")
	}
	if *regoTimeout < 0 {
		return usageErr("--rego-timeout must not be negative")
	}
	if *gcPercent < 0 || *memLimit < 0 {
		return usageErr("--gc-percent and --memory-limit must not be negative")
	}
	coordinator.TuneGC(*gcPercent, *memLimit<<20)
	logger, err := newLogger(stderr, *logLevel)
	if err != nil {
		return err
	}
	var hs []string
	if *hosts != "" {
		hs = strings.Split(*hosts, ",")
	}
	s, err := startServer(ctx, serverOptions{dataDir: *dataDir, listen: *listen, hosts: hs, logger: logger, tokenTTL: *tokenTTL,
		offline: *offline, allowMissingCRL: *allowMissingCRL, regoTimeout: *regoTimeout, azureAllowSimulated: *azureAllowSim,
		keyReleaseBearer: keyReleaseBearer})
	if err != nil {
		return err
	}
	if *rotation > 0 {
		go rotateTokenKeys(ctx, s.coord, *rotation, logger)
	}
	logger.Info("coordinator serving", "url", s.url, "ca", filepath.Join(*dataDir, "ca.pem"))
	fmt.Fprintf(stdout, "trustbound coordinator at %s (CA certificate: %s; the first manifest needs %s)\n",
		s.url, filepath.Join(*dataDir, "ca.pem"), filepath.Join(*dataDir, "bootstrap.token"))
	select {
	case <-ctx.Done():
	case err := <-s.done:
		s.done <- err
	}
	logger.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return s.shutdown(sctx)
}

// rotateTokenKeys rotates the coordinator's token keys whenever the current
// ones have been in service for every, until ctx ends; a failed rotation is
// retried a minute later.
func rotateTokenKeys(ctx context.Context, c *coordinator.Coordinator, every time.Duration, logger *slog.Logger) {
	for {
		wait := time.Until(c.TokenKeysRotatedAt().Add(every))
		select {
		case <-ctx.Done():
			return
		case <-time.After(max(wait, 0)):
		}
		if err := c.RotateTokenKeys(ctx, time.Now()); err != nil {
			logger.Error("token key rotation failed; retrying in a minute", "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Minute):
			}
		}
	}
}
