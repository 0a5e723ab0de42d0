package coordinator_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/trustbound/trustbound/agent"
	"github.com/trustbound/trustbound/api"
	"github.com/trustbound/trustbound/attest"
	"github.com/trustbound/trustbound/attest/formats"
	"github.com/trustbound/trustbound/coordinator"
	"github.com/trustbound/trustbound/keybroker"
	"github.com/trustbound/trustbound/manifest"
	"github.com/trustbound/trustbound/store"
)

// lockedBuffer is a bytes.Buffer the coordinator's logger and the test
// may use from several goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return bytes.Clone(b.buf.Bytes())
}

// recordedResponse is one HTTP answer the coordinator gave.
type recordedResponse struct {
	what   string // method and path
	status int
	body   []byte
}

// recordingTransport keeps every response body the test's clients read.
type recordingTransport struct {
	next http.RoundTripper
	mu   sync.Mutex
	got  []recordedResponse
}

func (r *recordingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := r.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	r.mu.Lock()
	r.got = append(r.got, recordedResponse{req.Method + " " + req.URL.Path, resp.StatusCode, body})
	r.mu.Unlock()
	return resp, nil
}

func (r *recordingTransport) responses() []recordedResponse {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]recordedResponse(nil), r.got...)
}

// needle is one form of a secret value that must not appear in clear.
type needle struct {
	label string // secret name and encoding; never the value
	b     []byte
}

// secretNeedles are the forms under which value might leak: raw, hex
// (both cases), base64 (standard and URL, padded and not) and, for PEM
// values, each PRIVATE KEY block's DER (in the same encodings), the first
// line of its PEM body and the private scalar or prime.
func secretNeedles(name string, value []byte) []needle {
	var out []needle
	add := func(form string, v []byte) {
		if len(v) < 16 {
			panic("needle " + name + "/" + form + " is too short to be distinctive")
		}
		out = append(out,
			needle{name + " " + form + " raw", v},
			needle{name + " " + form + " hex", []byte(hex.EncodeToString(v))},
			needle{name + " " + form + " HEX", []byte(strings.ToUpper(hex.EncodeToString(v)))},
			needle{name + " " + form + " base64", []byte(base64.StdEncoding.EncodeToString(v))},
			needle{name + " " + form + " base64url", []byte(base64.URLEncoding.EncodeToString(v))},
			needle{name + " " + form + " base64 unpadded", []byte(base64.RawStdEncoding.EncodeToString(v))},
			needle{name + " " + form + " base64url unpadded", []byte(base64.RawURLEncoding.EncodeToString(v))},
		)
	}
	add("value", value)
	for rest := value; ; {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil {
			break
		}
		if !strings.Contains(blk.Type, "PRIVATE KEY") {
			continue // certificates are public
		}
		add("DER", blk.Bytes)
		lines := strings.Split(string(pem.EncodeToMemory(blk)), "\n")
		out = append(out, needle{name + " PEM body line", []byte(lines[1])})
		k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
		if err != nil {
			panic("secret " + name + ": PRIVATE KEY block is not PKCS #8: " + err.Error())
		}
		switch k := k.(type) {
		case *ecdsa.PrivateKey:
			d, err := k.Bytes()
			if err != nil {
				panic(err)
			}
			add("EC scalar", d)
		case ed25519.PrivateKey:
			add("Ed25519 seed", k.Seed())
		case *rsa.PrivateKey:
			add("RSA prime", k.Primes[0].Bytes())
		}
	}
	return out
}

// scanFor reports the labels of the needles found in hay.
func scanFor(hay []byte, needles []needle) []string {
	var found []string
	for _, n := range needles {
		if bytes.Contains(hay, n.b) {
			found = append(found, n.label)
		}
	}
	return found
}

// randomSecret is a distinctive printable value: it leaks in clear into
// JSON as itself, not as escapes.
func randomSecret(t *testing.T, prefix string) []byte {
	t.Helper()
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return []byte(prefix + base64.RawURLEncoding.EncodeToString(b))
}

// Every release surface (native HPKE, Key Vault style, KBS), with
// successes and refusals, on one real coordinator with a debug JSON
// logger: no user secret or generated key, in any common encoding,
// appears in the log, any HTTP answer (every error body among them), the
// audit trail or the bytes of the store file.
func TestNoSecretInLogsErrorsAuditOrStore(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	storePath := filepath.Join(dir, "store.db")
	st, err := store.OpenBolt(storePath, store.BoltOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() }) // a second Close does nothing
	dataKey := make([]byte, keybroker.DataKeySize)
	rand.Read(dataKey)
	sealer, err := keybroker.NewSealer(dataKey)
	if err != nil {
		t.Fatal(err)
	}
	reg, err := formats.Registry(formats.Config{})
	if err != nil {
		t.Fatal(err)
	}
	logs := &lockedBuffer{}
	clk := &clock{t: time.Now().UTC()} // the agent checks certificates at the real time
	c, err := coordinator.New(ctx, coordinator.Config{Store: st, Sealer: sealer, Verifiers: reg, Now: clk.now,
		Issuer: maaIssuer, BootstrapToken: []byte(testBootstrap), KeyReleaseBearer: []byte(akvBearer), AzureAllowSimulated: true,
		Logger: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(c.Handler())
	defer srv.Close()
	rec := &recordingTransport{next: srv.Client().Transport}
	srv.Client().Transport = rec // every client below copies or uses it

	ownerKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	m := sampleManifest(t, &ownerKey.PublicKey)
	ledger, _ := m.Workload(manifest.SampleLedgerName) // speaks KBS as an Azure CVM
	ledger.Reference.PCRs = []manifest.PCR{{Index: 0, Digest: make(attest.Hex, 32)}, {Index: 8, Digest: make(attest.Hex, 32)}}
	m.Secrets = append(m.Secrets,
		manifest.Secret{Name: "api-token", Type: manifest.User, GrantedTo: []string{"web"}},
		manifest.Secret{Name: "akv-disk-key", Type: manifest.Symmetric, GrantedTo: []string{"web"}},
		manifest.Secret{Name: "vm-rsa", Type: manifest.KeyPair, Algorithm: "rsa-2048", GrantedTo: []string{"web"}},
		manifest.Secret{Name: "vm-ed", Type: manifest.KeyPair, Algorithm: "ed25519", GrantedTo: []string{"web"}},
		manifest.Secret{Name: "other-key", Type: manifest.Symmetric, GrantedTo: []string{"signer"}},
	)
	client := agent.NewClient(srv.URL, srv.Client())
	owner := agent.Owner{Name: m.Owners[0].Name, Key: ownerKey}
	if _, err := client.SetManifest(ctx, owner, rawManifest(t, m), []byte(testBootstrap)); err != nil {
		t.Fatal(err)
	}
	web, _ := m.Workload("web")
	signer, _ := m.Workload("signer")

	// values holds every secret value a workload received, by name.
	values := map[string][]byte{
		"db-password": randomSecret(t, "tb-db-password-"),
		"api-token":   randomSecret(t, "tb-api-token-"),
	}
	for _, name := range []string{"db-password", "api-token"} {
		if _, err := client.SetSecret(ctx, owner, name, values[name]); err != nil {
			t.Fatal(err)
		}
	}
	received := func(name string, v []byte) {
		t.Helper()
		if old, ok := values[name]; ok && !bytes.Equal(old, v) {
			t.Fatalf("%s released with two values", name)
		}
		values[name] = v
	}

	// Native release (HPKE): web and signer get all they are granted.
	for _, w := range []manifest.Workload{*web, *signer} {
		_, res, err := agent.Run(ctx, client, tee(w), w.Name)
		if err != nil {
			t.Fatalf("native %s: %v", w.Name, err)
		}
		for name, v := range res.Secrets {
			received(name, v)
		}
	}
	// Native refusals: not granted, wrong nonce.
	id, _ := agent.NewIdentity()
	req, err := id.Evidence(ctx, client, tee(*web), web.Name)
	if err != nil {
		t.Fatal(err)
	}
	ar, err := client.Attest(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	_, err = client.Release(ctx, &api.ReleaseRequest{Token: ar.Token, Secrets: []string{"db-password"}})
	wantProblem(t, err, http.StatusForbidden, "not granted")
	rd, _ := id.RuntimeData(web.Name, "a-nonce-the-coordinator-never-issued")
	ev, err := tee(*web).Attest(ctx, attest.NativeReportData(rd))
	if err != nil {
		t.Fatal(err)
	}
	ev.RuntimeData = rd
	if _, err := client.Attest(ctx, &api.AttestRequest{Workload: web.Name, Evidence: *ev}); err == nil {
		t.Fatal("evidence for a nonce never issued was accepted")
	}

	// Key Vault style release: symmetric and RSA keys to web's RSA key.
	akv := &akvHarness{t: t, clock: clk, srv: srv, client: client, owner: owner, m: m, wl: *web}
	priv := mustRSA(t)
	akvTok := akv.attest(&priv.PublicKey)
	for _, name := range []string{"akv-disk-key", "vm-rsa"} {
		r := akv.post("/keys/"+name+"/release", akvBearer, map[string]string{"target": akvTok, "enc": "RSA-OAEP-256"})
		if r.status != http.StatusOK {
			t.Fatalf("Key Vault style release of %s: %+v", name, r)
		}
	}
	for _, r := range rec.responses() {
		if strings.HasPrefix(r.what, "POST /keys/") && r.status == http.StatusOK {
			var out struct{ Value string }
			if err := json.Unmarshal(r.body, &out); err != nil {
				t.Fatal(err)
			}
			name := strings.Split(r.what, "/")[2]
			received(name, akv.unwrap(out.Value, priv))
		}
	}
	for _, c := range []struct {
		path, bearer string
		status       int
	}{
		{"/keys/other-key/release", akvBearer, http.StatusForbidden},    // not granted
		{"/keys/db-password/release", akvBearer, http.StatusBadRequest}, // a user secret: not a key
		{"/keys/akv-disk-key/release", "not-the-bearer", http.StatusUnauthorized},
	} {
		if r := akv.post(c.path, c.bearer, map[string]string{"target": akvTok, "enc": "RSA-OAEP-256"}); r.status != c.status {
			t.Errorf("Key Vault style %s: %+v, want HTTP %d", c.path, r, c.status)
		}
	}

	// KBS: ledger-vm, an Azure CVM, gets db-password and disk-key.
	kh := &maaHarness{t: t, clock: clk, srv: srv, owner: ownerKey, m: m, st: st}
	g := newKBSGuest(t, kh, ledgerCVM)
	if st, _ := g.attest("x", "x"); st != http.StatusUnauthorized { // no session
		t.Fatalf("KBS attest without a session: %d", st)
	}
	nonce := g.auth()
	if st, _ := g.attest("another", "another"); st != http.StatusUnauthorized { // nonce mismatch
		t.Fatalf("KBS nonce mismatch: %d", st)
	}
	nonce = g.auth()
	st0, out := g.attest(nonce, nonce)
	if st0 != http.StatusOK {
		t.Fatalf("KBS attest: %d %s", st0, out)
	}
	for _, name := range []string{"db-password", "disk-key"} {
		clk.advance(time.Second) // the audit trail keys releases by time
		st, out := g.do("GET", "/kbs/v0/resource/default/"+name+"/latest", nil)
		if st != http.StatusOK {
			t.Fatalf("KBS %s: %d %s", name, st, out)
		}
		received(name, g.open(out))
	}
	if st, _ := g.do("GET", "/kbs/v0/resource/default/tls/latest", nil); st != http.StatusForbidden {
		t.Fatalf("KBS secret not granted: %d", st)
	}

	// Expired tokens on every surface: fresh ones, then a day later.
	id2, _ := agent.NewIdentity()
	req2, err := id2.Evidence(ctx, client, tee(*web), web.Name)
	if err != nil {
		t.Fatal(err)
	}
	ar2, err := client.Attest(ctx, req2)
	if err != nil {
		t.Fatal(err)
	}
	akvTok2 := akv.attest(&priv.PublicKey)
	clk.advance(24 * time.Hour)
	_, err = client.Release(ctx, &api.ReleaseRequest{Token: ar2.Token})
	wantProblem(t, err, http.StatusUnauthorized, "expired")
	if r := akv.post("/keys/akv-disk-key/release", akvBearer, map[string]string{"target": akvTok2, "enc": "RSA-OAEP-256"}); r.status != http.StatusForbidden || !strings.Contains(r.msg, "expired") {
		t.Errorf("Key Vault style, expired token: %+v", r)
	}
	if st, _ := g.do("GET", "/kbs/v0/resource/default/disk-key/latest", nil); st != http.StatusUnauthorized {
		t.Errorf("KBS, expired session: %d", st)
	}

	// The audit trail, as the owner reads it.
	recs, err := client.Audit(ctx, owner)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) == 0 {
		t.Fatal("the audit trail is empty: the scan would prove nothing")
	}
	var audit []byte
	for _, r := range rec.responses() {
		if r.what == "GET "+api.PathAudit && r.status == http.StatusOK {
			audit = r.body
		}
	}

	srv.Close()
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	storeFile, err := os.ReadFile(storePath)
	if err != nil {
		t.Fatal(err)
	}

	// What is scanned for: every user secret and generated key released.
	for _, name := range []string{"db-password", "api-token", "disk-key", "akv-disk-key", "vm-rsa", "vm-ed", "signing-key", "tls"} {
		if _, ok := values[name]; !ok {
			t.Fatalf("%s was never released: the scan would not cover it", name)
		}
	}
	var needles []needle
	names := make([]string, 0, len(values))
	for name := range values {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		needles = append(needles, secretNeedles(name, values[name])...)
	}

	// The scan can fail: each form, planted in a control buffer, is found.
	for _, n := range needles {
		control := append(append([]byte(`{"level":"DEBUG","msg":"control","v":"`), n.b...), `"}`...)
		if got := scanFor(control, []needle{n}); len(got) != 1 {
			t.Fatalf("the scan misses a planted %s", n.label)
		}
	}
	if got := scanFor([]byte("nothing secret here"), needles); len(got) != 0 {
		t.Fatalf("the scan finds %v in a clean buffer", got)
	}

	places := map[string][]byte{"log": logs.Bytes(), "audit trail": audit, "store file": storeFile}
	var errorBodies int
	for i, r := range rec.responses() {
		if r.status >= 400 {
			errorBodies++
			places[r.what+" error body #"+strconv.Itoa(i)] = r.body
		} else {
			places[r.what+" answer #"+strconv.Itoa(i)] = r.body
		}
	}
	if len(places["log"]) == 0 || len(audit) == 0 || len(storeFile) == 0 || errorBodies < 10 {
		t.Fatalf("too little to scan: log %d B, audit %d B, store %d B, %d error bodies",
			len(places["log"]), len(audit), len(storeFile), errorBodies)
	}
	for where, hay := range places {
		if found := scanFor(hay, needles); len(found) > 0 {
			t.Errorf("%s carries %s", where, strings.Join(found, ", "))
		}
	}
	t.Logf("scanned %d forms of %d secrets in %d B of log, %d B of audit, %d B of store file and %d answers (%d errors)",
		len(needles), len(values), len(places["log"]), len(audit), len(storeFile), len(rec.responses()), errorBodies)
}
