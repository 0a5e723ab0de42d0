package coordinator_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/trustbound/trustbound/agent"
	"github.com/trustbound/trustbound/api"
	"github.com/trustbound/trustbound/attest"
	"github.com/trustbound/trustbound/attest/simtee"
	"github.com/trustbound/trustbound/coordinator"
	"github.com/trustbound/trustbound/internal/coordtest"
	"github.com/trustbound/trustbound/keybroker"
	"github.com/trustbound/trustbound/manifest"
	"github.com/trustbound/trustbound/store"
)

// clock is a settable time source.
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

type harness struct {
	t      *testing.T
	clock  *clock
	coord  *coordinator.Coordinator
	client *agent.Client
	owner  *ecdsa.PrivateKey
	m      *manifest.Manifest
	st     store.Store
}

// newHarness runs a real coordinator (bbolt store, real verifiers) behind
// an HTTP test server, and sets the sample manifest, edited by edit.
func newHarness(t *testing.T, edit func(*manifest.Manifest)) *harness {
	t.Helper()
	// The agent checks certificates at the real time, so the coordinator starts there.
	clk := &clock{t: time.Now().UTC()}
	h := &harness{t: t, clock: clk}
	h.owner, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	h.m = sampleManifest(t, &h.owner.PublicKey)
	if edit != nil {
		edit(h.m)
	}
	cs := coordtest.Start(t, coordtest.Options{
		Config:   coordinator.Config{Now: clk.now, Issuer: "https://coordinator.test", BootstrapToken: []byte(testBootstrap)},
		Manifest: rawManifest(t, h.m), Owner: h.ownerOf(),
	})
	h.coord, h.client, h.st = cs.Coordinator, cs.Client, cs.Store
	return h
}

const testBootstrap = "bootstrap-token-of-the-test"

// ownerOf is the manifest's owner as the client signs for it.
func (h *harness) ownerOf() agent.Owner { return agent.Owner{Name: h.m.Owners[0].Name, Key: h.owner} }

func sampleManifest(t *testing.T, pub *ecdsa.PublicKey) *manifest.Manifest {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	m, err := manifest.Parse(manifest.SampleWith(string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func rawManifest(t *testing.T, m *manifest.Manifest) []byte {
	t.Helper()
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (h *harness) workload(name string) manifest.Workload {
	w, ok := h.m.Workload(name)
	if !ok {
		h.t.Fatalf("no workload %q in the sample manifest", name)
	}
	return *w
}

// tee returns a simulated TEE measuring what the manifest declares for w.
func tee(w manifest.Workload) attest.Attester {
	t, err := agent.SimulatedFor(w)
	if err != nil {
		panic(err)
	}
	return t
}

func (h *harness) setUserSecrets() map[string][]byte {
	h.t.Helper()
	vals := map[string][]byte{}
	for _, s := range h.m.Secrets {
		if s.Type == manifest.User {
			v := []byte("value-of-" + s.Name)
			if _, err := h.client.SetSecret(context.Background(), h.ownerOf(), s.Name, v); err != nil {
				h.t.Fatal(err)
			}
			vals[s.Name] = v
		}
	}
	return vals
}

// wantProblem asserts err is a refusal with the HTTP status and a detail
// containing want.
func wantProblem(t *testing.T, err error, status int, want string) {
	t.Helper()
	var p *api.Problem
	if !errors.As(err, &p) {
		t.Fatalf("want HTTP %d refusal containing %q, got %v", status, want, err)
	}
	if p.Status != status || !strings.Contains(p.Detail, want) {
		t.Fatalf("want HTTP %d containing %q, got %d %q: %q", status, want, p.Status, p.Title, p.Detail)
	}
}

func TestAllThreeModelsAttestAndReceiveSecrets(t *testing.T) {
	h := newHarness(t, nil)
	user := h.setUserSecrets()
	ctx := context.Background()
	for _, w := range h.m.Workloads {
		t.Run(w.Name, func(t *testing.T) {
			id, res, err := agent.Run(ctx, h.client, tee(w), w.Name)
			if err != nil {
				t.Fatal(err)
			}
			if !res.Simulated || !res.Claims.Simulated {
				t.Error("a simulated workload must be labelled simulated")
			}
			wantID := "spiffe://" + h.m.TrustDomain + "/" + string(w.Model) + "/" + w.Name
			if res.SPIFFEID != wantID {
				t.Errorf("SPIFFE ID %q, want %q", res.SPIFFEID, wantID)
			}
			granted := h.m.SecretsFor(w.Name)
			if len(res.Secrets) != len(granted) {
				t.Fatalf("got %d secrets, want the %d granted", len(res.Secrets), len(granted))
			}
			for _, s := range granted {
				v, ok := res.Secrets[s.Name]
				if !ok {
					t.Fatalf("secret %q not released", s.Name)
				}
				switch s.Type {
				case manifest.User:
					if string(v) != string(user[s.Name]) {
						t.Errorf("user secret %q: got a different value", s.Name)
					}
				case manifest.Symmetric:
					if want := max(s.Bits, 256) / 8; s.Bits == 0 && len(v) != want || s.Bits != 0 && len(v) != s.Bits/8 {
						t.Errorf("symmetric %q: %d bytes", s.Name, len(v))
					}
				case manifest.KeyPair, manifest.X509:
					if !strings.Contains(string(v), "PRIVATE KEY") {
						t.Errorf("%s %q has no private key", s.Type, s.Name)
					}
				}
			}
			// The certificate chains to the coordinator's CA and is for the TEE's key.
			// res.Certificate is the leaf, then the manifest's intermediate.
			blk, rest := pem.Decode([]byte(res.Certificate))
			cert, err := x509.ParseCertificate(blk.Bytes)
			if err != nil {
				t.Fatal(err)
			}
			inters := x509.NewCertPool()
			if !inters.AppendCertsFromPEM(rest) {
				t.Fatal("the release carries no intermediate")
			}
			pool := x509.NewCertPool()
			wca, _ := h.coord.WorkloadCA(ctx, h.m.TrustDomain)
			pool.AddCert(wca)
			if _, err := cert.Verify(x509.VerifyOptions{Roots: pool, Intermediates: inters, CurrentTime: h.clock.now(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
				t.Errorf("workload certificate does not verify: %v", err)
			}
			if !cert.PublicKey.(*ecdsa.PublicKey).Equal(&id.Signer.PublicKey) {
				t.Error("certificate is not for the TEE-held key")
			}
		})
	}
	// A second workload gets the same generated symmetric key (shared grant).
	_, a, err := agent.Run(ctx, h.client, tee(h.workload("ledger-vm")), "ledger-vm")
	if err != nil {
		t.Fatal(err)
	}
	_, b, err := agent.Run(ctx, h.client, tee(h.workload("web")), "web")
	if err != nil {
		t.Fatal(err)
	}
	if string(a.Secrets["disk-key"]) != string(b.Secrets["disk-key"]) {
		t.Error("disk-key differs between workloads it is granted to")
	}
	st := h.coord.Status()
	for _, ws := range st.Workloads {
		if ws.Attested < 1 || ws.Released < 1 || len(ws.Inside) == 0 || len(ws.Outside) == 0 {
			t.Errorf("status of %s: %+v", ws.Name, ws)
		}
	}
}

func TestRefusals(t *testing.T) {
	ctx := context.Background()

	t.Run("wrong measurement", func(t *testing.T) {
		h := newHarness(t, nil)
		w := h.workload("ledger-vm")
		sim := tee(w).(*simtee.SNP)
		sim.Measurement[0] ^= 1
		_, _, err := agent.Run(ctx, h.client, sim, w.Name)
		wantProblem(t, err, http.StatusForbidden, "measurements: measurement")
	})
	t.Run("wrong host data (pod policy)", func(t *testing.T) {
		h := newHarness(t, nil)
		w := h.workload("web")
		sim := tee(w).(*simtee.SNP)
		sim.HostData[31] ^= 1
		_, _, err := agent.Run(ctx, h.client, sim, w.Name)
		wantProblem(t, err, http.StatusForbidden, "hostData")
	})
	t.Run("debug TEE not allowed", func(t *testing.T) {
		h := newHarness(t, nil)
		for _, name := range []string{"ledger-vm", "signer"} {
			w := h.workload(name)
			sim := tee(w)
			switch s := sim.(type) {
			case *simtee.SNP:
				s.Debug = true
			case *simtee.SGX:
				s.Debug = true
			}
			_, _, err := agent.Run(ctx, h.client, sim, name)
			wantProblem(t, err, http.StatusForbidden, "debuggable")
		}
	})
	t.Run("simulated evidence not allowed", func(t *testing.T) {
		h := newHarness(t, func(m *manifest.Manifest) { m.AllowSimulated = false })
		for _, w := range h.m.Workloads {
			_, _, err := agent.Run(ctx, h.client, tee(w), w.Name)
			wantProblem(t, err, http.StatusForbidden, "simulated TEE evidence not allowed")
		}
	})
	t.Run("reused nonce", func(t *testing.T) {
		h := newHarness(t, nil)
		w := h.workload("signer")
		id, _ := agent.NewIdentity()
		req, err := id.Evidence(ctx, h.client, tee(w), w.Name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := h.client.Attest(ctx, req); err != nil {
			t.Fatal(err)
		}
		_, err = h.client.Attest(ctx, req)
		wantProblem(t, err, http.StatusUnauthorized, "already used")
	})
	t.Run("expired nonce", func(t *testing.T) {
		h := newHarness(t, nil)
		w := h.workload("signer")
		id, _ := agent.NewIdentity()
		req, err := id.Evidence(ctx, h.client, tee(w), w.Name)
		if err != nil {
			t.Fatal(err)
		}
		h.clock.advance(2*time.Minute + time.Second)
		_, err = h.client.Attest(ctx, req)
		wantProblem(t, err, http.StatusUnauthorized, "expired")
	})
	t.Run("report data does not bind the presented key", func(t *testing.T) {
		h := newHarness(t, nil)
		w := h.workload("ledger-vm")
		id, _ := agent.NewIdentity()
		req, err := id.Evidence(ctx, h.client, tee(w), w.Name)
		if err != nil {
			t.Fatal(err)
		}
		// An attacker swaps in its own keys, keeping the genuine evidence.
		thief, _ := agent.NewIdentity()
		rd, _ := api.ParseRuntimeData(req.Evidence.RuntimeData)
		req.Evidence.RuntimeData, _ = thief.RuntimeData(w.Name, rd.Nonce)
		_, err = h.client.Attest(ctx, req)
		wantProblem(t, err, http.StatusForbidden, "report data does not bind")
	})
	t.Run("tampered signature", func(t *testing.T) {
		h := newHarness(t, nil)
		for _, name := range []string{"ledger-vm", "signer"} {
			w := h.workload(name)
			id, _ := agent.NewIdentity()
			req, err := id.Evidence(ctx, h.client, tee(w), w.Name)
			if err != nil {
				t.Fatal(err)
			}
			// Flip a byte of the report data area's neighbour: the measurement.
			switch w.TEE {
			case attest.SEVSNP:
				req.Evidence.Data[0x90] ^= 1
			case attest.SGX:
				req.Evidence.Data[48+64] ^= 1
			}
			_, err = h.client.Attest(ctx, req)
			wantProblem(t, err, http.StatusForbidden, "signature")
		}
	})
	// A name the manifest does not hold is answered as such only to
	// evidence that verifies and binds a fresh nonce, on both routes.
	t.Run("unknown workload", func(t *testing.T) {
		h := newHarness(t, nil)
		sim := tee(h.workload("ledger-vm"))
		const name = "no-such-workload"
		routes := map[string]func(*api.AttestRequest) error{
			"attest": func(req *api.AttestRequest) error { _, err := h.client.Attest(ctx, req); return err },
			"attest-release": func(req *api.AttestRequest) error {
				_, err := h.client.AttestRelease(ctx, &api.AttestReleaseRequest{Workload: req.Workload, Evidence: req.Evidence})
				return err
			},
		}
		for route, call := range routes {
			id, _ := agent.NewIdentity()
			evidence := func() *api.AttestRequest {
				req, err := id.Evidence(ctx, h.client, sim, name)
				if err != nil {
					t.Fatal(err)
				}
				return req
			}
			tampered := evidence()
			tampered.Evidence.Data[0x90] ^= 1
			if err := call(tampered); err == nil {
				t.Fatalf("%s: tampered evidence for an unknown workload accepted", route)
			} else {
				wantProblem(t, err, http.StatusForbidden, "signature")
			}
			stale := evidence()
			h.clock.advance(2*time.Minute + time.Second)
			wantProblem(t, call(stale), http.StatusUnauthorized, "expired")
			genuine := evidence()
			err := call(genuine)
			wantProblem(t, err, http.StatusNotFound, "not in the manifest")
			// The nonce was used up on the way.
			wantProblem(t, call(genuine), http.StatusUnauthorized, "already used")
		}
	})
	t.Run("manifest change without owner authority", func(t *testing.T) {
		h := newHarness(t, nil)
		m2 := *h.m
		m2.AllowSimulated = false
		raw := rawManifest(t, &m2)
		stranger, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		_, err := h.client.SetManifest(ctx, agent.Owner{Name: h.m.Owners[0].Name, Key: stranger}, raw, nil)
		wantProblem(t, err, http.StatusUnauthorized, "does not verify")
		_, err = h.client.SetManifest(ctx, agent.Owner{Name: "mallory", Key: stranger}, raw, nil)
		wantProblem(t, err, http.StatusUnauthorized, "not an owner")
		// A new manifest naming the stranger as owner does not help: the
		// owners of the manifest in force decide.
		strangerPub, _ := x509.MarshalPKIXPublicKey(&stranger.PublicKey)
		m2.Owners = []manifest.Owner{{Name: "mallory", PublicKey: string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: strangerPub}))}}
		_, err = h.client.SetManifest(ctx, agent.Owner{Name: "mallory", Key: stranger}, rawManifest(t, &m2), []byte(testBootstrap))
		wantProblem(t, err, http.StatusUnauthorized, "not an owner")
		// Nothing changed.
		got, err := h.client.Manifest(ctx, h.ownerOf())
		if err != nil {
			t.Fatal(err)
		}
		if got.Digest != manifest.Digest(rawManifest(t, h.m)) {
			t.Error("the manifest changed without an owner's authority")
		}
		// The real owner can change it.
		if _, err := h.client.SetManifest(ctx, h.ownerOf(), raw, nil); err != nil {
			t.Fatalf("owner could not change the manifest: %v", err)
		}
	})
	t.Run("owner signature replayed", func(t *testing.T) {
		h := newHarness(t, nil)
		raw := rawManifest(t, h.m)
		ch, _ := h.client.Challenge(ctx)
		auth, _ := api.SignOwner(h.m.Owners[0].Name, h.owner, http.MethodPut, api.PathManifest, ch.Nonce, raw)
		for i, want := range []int{http.StatusOK, http.StatusUnauthorized} {
			req, _ := http.NewRequest(http.MethodPut, h.clientURL()+api.PathManifest, strings.NewReader(string(raw)))
			req.Header.Set("Authorization", auth)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != want {
				t.Fatalf("attempt %d: HTTP %d, want %d", i, resp.StatusCode, want)
			}
		}
	})
	t.Run("secret not granted", func(t *testing.T) {
		h := newHarness(t, nil)
		h.setUserSecrets()
		w := h.workload("signer")
		id, _ := agent.NewIdentity()
		req, err := id.Evidence(ctx, h.client, tee(w), w.Name)
		if err != nil {
			t.Fatal(err)
		}
		ar, err := h.client.Attest(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		_, err = h.client.Release(ctx, &api.ReleaseRequest{Token: ar.Token, Secrets: []string{"db-password"}})
		wantProblem(t, err, http.StatusForbidden, `secret "db-password" is not granted to workload "signer"`)
		// Nothing was released or recorded.
		kvs, _ := h.st.List(ctx, "audit/")
		if len(kvs) != 0 {
			t.Errorf("%d releases recorded for a refused request", len(kvs))
		}
	})
	t.Run("token from before a manifest change", func(t *testing.T) {
		h := newHarness(t, nil)
		w := h.workload("signer")
		id, _ := agent.NewIdentity()
		req, _ := id.Evidence(ctx, h.client, tee(w), w.Name)
		ar, err := h.client.Attest(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		m2 := *h.m
		m2.TrustDomain = "changed.example"
		if _, err := h.client.SetManifest(ctx, h.ownerOf(), rawManifest(t, &m2), nil); err != nil {
			t.Fatal(err)
		}
		_, err = h.client.Release(ctx, &api.ReleaseRequest{Token: ar.Token})
		wantProblem(t, err, http.StatusUnauthorized, "another manifest")
	})
	t.Run("token from another issuer", func(t *testing.T) {
		h, other := newHarness(t, nil), newHarness(t, nil) // same sample manifest, other keys
		w := other.workload("signer")
		id, _ := agent.NewIdentity()
		req, _ := id.Evidence(ctx, other.client, tee(w), w.Name)
		ar, err := other.client.Attest(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		_, err = h.client.Release(ctx, &api.ReleaseRequest{Token: ar.Token})
		wantProblem(t, err, http.StatusUnauthorized, "invalid attestation token")
	})
	t.Run("expired token", func(t *testing.T) {
		h := newHarness(t, nil)
		w := h.workload("signer")
		id, _ := agent.NewIdentity()
		req, _ := id.Evidence(ctx, h.client, tee(w), w.Name)
		ar, err := h.client.Attest(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		h.clock.advance(6 * time.Minute)
		_, err = h.client.Release(ctx, &api.ReleaseRequest{Token: ar.Token})
		wantProblem(t, err, http.StatusUnauthorized, "expired")
	})
	t.Run("workload claiming another's identity", func(t *testing.T) {
		h := newHarness(t, nil)
		// The signer enclave presents its genuine evidence as ledger-vm.
		_, _, err := agent.Run(ctx, h.client, tee(h.workload("signer")), "ledger-vm")
		wantProblem(t, err, http.StatusForbidden, "tee: evidence is from sgx")
	})
}

func (h *harness) clientURL() string { return h.client.BaseURL() }

func TestAuditRecordsReleasesWithoutValues(t *testing.T) {
	h := newHarness(t, nil)
	vals := h.setUserSecrets()
	ctx := context.Background()
	if _, _, err := agent.Run(ctx, h.client, tee(h.workload("ledger-vm")), "ledger-vm"); err != nil {
		t.Fatal(err)
	}
	kvs, err := h.st.List(ctx, "audit/")
	if err != nil {
		t.Fatal(err)
	}
	if len(kvs) != len(h.m.SecretsFor("ledger-vm")) {
		t.Fatalf("%d audit records, want one per released secret", len(kvs))
	}
	for _, kv := range kvs {
		var r keybroker.Release
		if err := json.Unmarshal(kv.Value, &r); err != nil {
			t.Fatal(err)
		}
		if r.Workload != "ledger-vm" || r.EvidenceDigest == "" || r.TokenID == "" || r.Version != 1 || !r.Simulated {
			t.Errorf("audit record %+v", r)
		}
		for _, v := range vals {
			if strings.Contains(string(kv.Value), string(v)) {
				t.Error("a secret value reached the audit trail")
			}
		}
	}
	// Secrets are sealed at rest: no plaintext value in the store.
	all, _ := h.st.List(ctx, "")
	for _, kv := range all {
		for _, v := range vals {
			if strings.Contains(string(kv.Value), string(v)) {
				t.Errorf("secret value in clear in the store under %s", kv.Key)
			}
		}
	}
}

func TestFirstManifestNeedsTheBootstrapToken(t *testing.T) {
	st, sealer, reg := coordtest.State(t)
	if _, err := coordinator.New(context.Background(), coordinator.Config{Store: st, Sealer: sealer, Verifiers: reg}); err == nil {
		t.Fatal("a coordinator without a bootstrap token was built")
	}
	c, err := coordinator.New(context.Background(), coordinator.Config{Store: st, Sealer: sealer, Verifiers: reg, BootstrapToken: []byte(testBootstrap)})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(c.Handler())
	defer srv.Close()
	client := agent.NewClient(srv.URL, srv.Client())
	owner, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	raw := rawManifest(t, sampleManifest(t, &owner.PublicKey))
	o := agent.Owner{Name: manifest.SampleOwner, Key: owner}
	ctx := context.Background()
	for _, token := range []string{"", "wrong-token-of-the-same-length!"} {
		_, err := client.SetManifest(ctx, o, raw, []byte(token))
		wantProblem(t, err, http.StatusUnauthorized, "bootstrap token")
	}
	// The token alone is not enough either: one of the manifest's own owners signs.
	stranger, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	_, err = client.SetManifest(ctx, agent.Owner{Name: manifest.SampleOwner, Key: stranger}, raw, []byte(testBootstrap))
	wantProblem(t, err, http.StatusUnauthorized, "does not verify")
	if _, err := client.SetManifest(ctx, o, raw, []byte(testBootstrap)); err != nil {
		t.Fatal(err)
	}
}

func TestOwnerOnlyReads(t *testing.T) {
	h := newHarness(t, nil)
	ctx := context.Background()
	for _, path := range []string{api.PathManifest, api.PathStatus, api.PathAudit} {
		resp, err := http.Get(h.clientURL() + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("anonymous GET %s: HTTP %d, want 401", path, resp.StatusCode)
		}
	}
	stranger, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	_, err := h.client.Status(ctx, agent.Owner{Name: h.m.Owners[0].Name, Key: stranger})
	wantProblem(t, err, http.StatusUnauthorized, "does not verify")
	if st, err := h.client.Status(ctx, h.ownerOf()); err != nil || len(st.Workloads) != 3 {
		t.Fatalf("owner status: %+v %v", st, err)
	}
	if _, err := h.client.Audit(ctx, h.ownerOf()); err != nil {
		t.Fatal(err)
	}
	// The workload trust bundle is public: relying parties need it.
	resp, err := http.Get(h.clientURL() + api.PathTrustBundle)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	wca, _ := h.coord.WorkloadCA(ctx, h.m.TrustDomain)
	body := make([]byte, 4096)
	n, _ := resp.Body.Read(body)
	if blk, _ := pem.Decode(body[:n]); blk == nil || string(blk.Bytes) != string(wca.Raw) {
		t.Error("trust bundle is not the workload CA of the manifest in force")
	}
}

func TestChallengesAreRateLimitedPerClient(t *testing.T) {
	h := newHarness(t, nil)
	ctx := context.Background()
	var limited bool
	for range 200 {
		if _, err := h.client.Challenge(ctx); err != nil {
			wantProblem(t, err, http.StatusTooManyRequests, "too fast")
			limited = true
			break
		}
	}
	if !limited {
		t.Fatal("200 challenges at once from one client were all served")
	}
	// Time heals it.
	h.clock.advance(5 * time.Second)
	if _, err := h.client.Challenge(ctx); err != nil {
		t.Fatalf("after a pause: %v", err)
	}
}

// No manifest can make the coordinator's own TLS CA sign for workloads.
func TestServiceCAIsNotAWorkloadCA(t *testing.T) {
	h := newHarness(t, func(m *manifest.Manifest) { m.TrustDomain = "trustbound-coordinator" })
	_, res, err := agent.Run(context.Background(), h.client, tee(h.workload("web")), "web")
	if err != nil {
		t.Fatal(err)
	}
	for name, pemText := range map[string]string{"workload certificate": res.Certificate, "tls secret": string(res.Secrets["tls"])} {
		blk, _ := pem.Decode([]byte(pemText))
		cert, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		pool := x509.NewCertPool()
		pool.AddCert(h.coord.CA())
		if _, err := cert.Verify(x509.VerifyOptions{Roots: pool, CurrentTime: h.clock.now(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err == nil {
			t.Errorf("the %s verifies against the coordinator's TLS CA", name)
		}
	}
}
