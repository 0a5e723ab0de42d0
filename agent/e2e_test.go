package agent_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/trustbound/trustbound/agent"
	"github.com/trustbound/trustbound/attest"
	"github.com/trustbound/trustbound/coordinator"
	"github.com/trustbound/trustbound/identity"
	"github.com/trustbound/trustbound/internal/coordtest"
	"github.com/trustbound/trustbound/manifest"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type env struct {
	clk    *clock
	client *agent.Client
	owner  agent.Owner
	m      *manifest.Manifest
	url    string       // the coordinator's https URL
	hc     *http.Client // trusts the coordinator's test certificate
}

const bootstrap = "bootstrap-token-of-the-test"

// envOptions vary newEnvWith's coordinator.
type envOptions struct {
	certTTL time.Duration
	// edit, if set, changes the sample manifest before it is set.
	edit func(*manifest.Manifest)
	// wrap, if set, stands between the test server and the coordinator's
	// handler (to count or refuse requests).
	wrap func(http.Handler) http.Handler
}

// newEnv runs a real coordinator (bbolt store, real verifiers) behind an
// HTTPS test server with the sample manifest.
func newEnv(t *testing.T, certTTL time.Duration) *env {
	t.Helper()
	return newEnvWith(t, envOptions{certTTL: certTTL})
}

// newEnvWith is newEnv with options.
func newEnvWith(t *testing.T, o envOptions) *env {
	t.Helper()
	clk := &clock{t: time.Now().UTC()}
	ok, pub := coordtest.OwnerKey(t)
	m, err := manifest.Parse(manifest.SampleWith(pub))
	if err != nil {
		t.Fatal(err)
	}
	if o.edit != nil {
		o.edit(m)
	}
	owner := agent.Owner{Name: m.Owners[0].Name, Key: ok}
	raw, _ := json.Marshal(m)
	cs := coordtest.Start(t, coordtest.Options{
		Config: coordinator.Config{Now: clk.now, BootstrapToken: []byte(bootstrap), CertTTL: o.certTTL},
		TLS:    true, Wrap: o.wrap, Manifest: raw, Owner: owner,
	})
	e := &env{clk: clk, client: cs.Client, owner: owner, m: m, url: cs.Server.URL, hc: cs.Server.Client()}
	for _, s := range m.Secrets {
		if s.Type == manifest.User {
			if _, err := e.client.SetSecret(context.Background(), e.owner, s.Name, []byte("value-of-"+s.Name)); err != nil {
				t.Fatal(err)
			}
		}
	}
	return e
}

func (e *env) tee(t *testing.T, name string) attest.Attester {
	t.Helper()
	w, ok := e.m.Workload(name)
	if !ok {
		t.Fatalf("no workload %q", name)
	}
	tee, err := agent.SimulatedFor(*w)
	if err != nil {
		t.Fatal(err)
	}
	return tee
}

func chainOf(t *testing.T, res *agent.Result) []*x509.Certificate {
	t.Helper()
	var chain []*x509.Certificate
	rest := []byte(res.Certificate)
	for {
		var blk *pem.Block
		if blk, rest = pem.Decode(rest); blk == nil {
			break
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		chain = append(chain, c)
	}
	if len(chain) != 2 {
		t.Fatalf("release chain has %d certificates, want leaf and intermediate", len(chain))
	}
	return chain
}

func TestManifestChangeYieldsNewIntermediate(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, 0)
	_, old, err := agent.Run(ctx, e.client, e.tee(t, "web"), "web")
	if err != nil {
		t.Fatal(err)
	}
	_, again, err := agent.Run(ctx, e.client, e.tee(t, "web"), "web")
	if err != nil {
		t.Fatal(err)
	}
	oldChain, againChain := chainOf(t, old), chainOf(t, again)
	if !oldChain[1].Equal(againChain[1]) {
		t.Error("two releases under one manifest have different intermediates")
	}
	inter := oldChain[1]
	if !inter.IsCA || inter.MaxPathLen != 0 || !inter.MaxPathLenZero || len(inter.URIs) != 1 || inter.URIs[0].String() != "spiffe://"+e.m.TrustDomain {
		t.Errorf("intermediate: IsCA %v MaxPathLen %d URIs %v", inter.IsCA, inter.MaxPathLen, inter.URIs)
	}
	if d := inter.NotAfter.Sub(inter.NotBefore); d < 29*24*time.Hour || d > 31*24*time.Hour {
		t.Errorf("intermediate lifetime %s, want about 30 days", d)
	}

	// A new manifest version (same content, different bytes).
	raw, _ := json.MarshalIndent(e.m, "", " ")
	if _, err := e.client.SetManifest(ctx, e.owner, raw, nil); err != nil {
		t.Fatal(err)
	}
	_, fresh, err := agent.Run(ctx, e.client, e.tee(t, "web"), "web")
	if err != nil {
		t.Fatal(err)
	}
	freshChain := chainOf(t, fresh)
	if freshChain[1].Equal(inter) {
		t.Fatal("a new manifest version reuses the old intermediate")
	}
	roots, err := e.client.TrustBundle(ctx)
	if err != nil {
		t.Fatal(err)
	}
	opts := identity.VerifyOptions{Roots: roots, Now: e.clk.now(), Usage: x509.ExtKeyUsageClientAuth}
	for name, chain := range map[string][]*x509.Certificate{"old": oldChain, "new": freshChain} {
		if _, err := identity.VerifySVID(chain, opts); err != nil {
			t.Errorf("%s certificate against the root: %v", name, err)
		}
	}
	// Until it expires.
	opts.Now = oldChain[0].NotAfter.Add(time.Second)
	if _, err := identity.VerifySVID(oldChain, opts); err == nil {
		t.Error("the old certificate verifies after it expired")
	}
}

func TestRenewerRenewsPastTwoThirdsWithTheSameKey(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, 3*time.Minute)
	tee := e.tee(t, "web")
	id, err := agent.NewIdentity()
	if err != nil {
		t.Fatal(err)
	}
	res, err := id.Attest(ctx, e.client, tee, "web", e.clk.now())
	if err != nil {
		t.Fatal(err)
	}
	r := &agent.Renewer{Client: e.client, TEE: tee, Workload: "web", Identity: id, Now: e.clk.now}
	// Lifetime is 4 minutes (1 minute of backdating + 3): due at 2m40s after NotBefore.
	e.clk.advance(90 * time.Second)
	if got, did, err := r.RenewIfDue(ctx, res); err != nil || did || got != res {
		t.Fatalf("renewed before 2/3 of the lifetime: %v %v", did, err)
	}
	e.clk.advance(20 * time.Second)
	next, did, err := r.RenewIfDue(ctx, res)
	if err != nil || !did {
		t.Fatalf("not renewed past 2/3 of the lifetime: %v %v", did, err)
	}
	oldLeaf, newLeaf := chainOf(t, res)[0], chainOf(t, next)[0]
	if !newLeaf.NotAfter.After(oldLeaf.NotAfter) {
		t.Error("the renewed certificate does not outlive the old one")
	}
	if !newLeaf.PublicKey.(*ecdsa.PublicKey).Equal(&id.Signer.PublicKey) {
		t.Error("the renewed certificate is not for the same TEE-held key")
	}

	// Loop: the fake Wait advances the fake clock instead of sleeping.
	loopCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	r.Wait = func(ctx context.Context, d time.Duration) error {
		e.clk.advance(d)
		return ctx.Err()
	}
	renewals := 0
	err = r.Loop(loopCtx, next, func(res *agent.Result) error {
		renewals++
		if renewals == 3 {
			cancel()
		}
		return nil
	})
	if err != context.Canceled || renewals != 3 {
		t.Errorf("Loop: %v after %d renewals, want context.Canceled after 3", err, renewals)
	}
}

func TestTwoAttestedWorkloadsOverMTLS(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, 0)
	srvID, srvRes, err := agent.Run(ctx, e.client, e.tee(t, "web"), "web")
	if err != nil {
		t.Fatal(err)
	}
	cliID, cliRes, err := agent.Run(ctx, e.client, e.tee(t, "ledger-vm"), "ledger-vm")
	if err != nil {
		t.Fatal(err)
	}
	roots, err := e.client.TrustBundle(ctx)
	if err != nil {
		t.Fatal(err)
	}
	srvCert, err := srvID.TLSCertificate(srvRes)
	if err != nil {
		t.Fatal(err)
	}
	cliCert, err := cliID.TLSCertificate(cliRes)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
		Certificates:          []tls.Certificate{srvCert},
		ClientAuth:            tls.RequireAnyClientCert,
		VerifyPeerCertificate: agent.VerifyPeer(roots, x509.ExtKeyUsageClientAuth, now, cliRes.SPIFFEID),
		MinVersion:            tls.VersionTLS13,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func(conn net.Conn) {
				defer conn.Close()
				if err := conn.(*tls.Conn).Handshake(); err != nil {
					return
				}
				_, _ = io.WriteString(conn, "hello "+srvRes.SPIFFEID)
			}(conn)
		}
	}()
	dial := func(cert tls.Certificate) (string, error) {
		conn, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{
			Certificates:          []tls.Certificate{cert},
			InsecureSkipVerify:    true, // VerifyPeer verifies the SVID chain and ID
			VerifyPeerCertificate: agent.VerifyPeer(roots, x509.ExtKeyUsageServerAuth, now, srvRes.SPIFFEID),
			MinVersion:            tls.VersionTLS13,
		})
		if err != nil {
			return "", err
		}
		defer conn.Close()
		b, err := io.ReadAll(conn)
		return string(b), err
	}
	got, err := dial(cliCert)
	if err != nil || got != "hello "+srvRes.SPIFFEID {
		t.Fatalf("mTLS between attested workloads: %q, %v", got, err)
	}

	// A client with a certificate from another CA (same trust domain name,
	// same SPIFFE ID) is refused.
	other, err := identity.NewCA(e.m.TrustDomain, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	w, _ := e.m.Workload("ledger-vm")
	der, err := other.IssueWorkload(identity.WorkloadRequest{PublicKey: &key.PublicKey, TrustDomain: e.m.TrustDomain, Model: string(w.Model), Workload: w.Name, NotBefore: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := dial(tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}); err == nil {
		t.Fatalf("a client from another CA got %q", got)
	}
	// And a server that wants another workload refuses the right client.
	if err := agent.VerifyPeer(roots, x509.ExtKeyUsageClientAuth, now, srvRes.SPIFFEID)(cliCert.Certificate, nil); err == nil {
		t.Error("VerifyPeer accepted an SVID with an unexpected SPIFFE ID")
	}
}
