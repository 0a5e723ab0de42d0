package coordinator_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azkeys"
	"github.com/go-jose/go-jose/v4"

	"github.com/trustbound/trustbound/agent"
	"github.com/trustbound/trustbound/api"
	"github.com/trustbound/trustbound/attest"
	"github.com/trustbound/trustbound/coordinator"
	"github.com/trustbound/trustbound/internal/coordtest"
	"github.com/trustbound/trustbound/keybroker"
	"github.com/trustbound/trustbound/manifest"
)

const akvBearer = "key-release-access-token-of-the-test"

// akvHarness is a real coordinator (bbolt store, simulated TEEs) behind a
// loopback TLS server, with a manifest whose first workload is granted
// the keys the Key Vault style surface releases.
type akvHarness struct {
	t      *testing.T
	clock  *clock
	srv    *httptest.Server
	client *agent.Client
	owner  agent.Owner
	m      *manifest.Manifest
	broker *keybroker.Broker
	wl     manifest.Workload
}

func newAKVHarness(t *testing.T) *akvHarness {
	t.Helper()
	st, sealer, reg := coordtest.State(t)
	clk := &clock{t: time.Now().UTC()}
	c, err := coordinator.New(context.Background(), coordinator.Config{Store: st, Sealer: sealer, Verifiers: reg, Now: clk.now,
		Issuer: "https://coordinator.test", BootstrapToken: []byte(testBootstrap), KeyReleaseBearer: []byte(akvBearer)})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewTLSServer(c.Handler())
	t.Cleanup(srv.Close)
	ownerKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	m := sampleManifest(t, &ownerKey.PublicKey)
	w0, w1 := m.Workloads[0].Name, m.Workloads[1].Name
	m.Secrets = append(m.Secrets,
		manifest.Secret{Name: "akv-disk-key", Type: manifest.Symmetric, GrantedTo: []string{w0}},
		manifest.Secret{Name: "vm-rsa", Type: manifest.KeyPair, Algorithm: "rsa-2048", GrantedTo: []string{w0}},
		manifest.Secret{Name: "other-key", Type: manifest.Symmetric, GrantedTo: []string{w1}},
		manifest.Secret{Name: "guarded-key", Type: manifest.Symmetric, GrantedTo: []string{w0}, ReleasePolicy: "skr"},
	)
	h := &akvHarness{t: t, clock: clk, srv: srv, client: agent.NewClient(srv.URL, srv.Client()),
		owner: agent.Owner{Name: m.Owners[0].Name, Key: ownerKey}, m: m, broker: keybroker.New(st, sealer), wl: m.Workloads[0]}
	if _, err := h.client.SetManifest(context.Background(), h.owner, rawManifest(t, m), []byte(testBootstrap)); err != nil {
		t.Fatalf("setting manifest: %v", err)
	}
	return h
}

// attest runs the simulated TEE of the first workload, adding rsaKey (if
// any) to its runtime data as an RSA encryption JWK, and returns the token.
func (h *akvHarness) attest(rsaKey *rsa.PublicKey) string {
	h.t.Helper()
	ctx := context.Background()
	id, err := agent.NewIdentity()
	if err != nil {
		h.t.Fatal(err)
	}
	ch, err := h.client.Challenge(ctx)
	if err != nil {
		h.t.Fatal(err)
	}
	rd, err := id.RuntimeData(h.wl.Name, ch.Nonce)
	if err != nil {
		h.t.Fatal(err)
	}
	if rsaKey != nil {
		doc, err := api.ParseRuntimeData(rd)
		if err != nil {
			h.t.Fatal(err)
		}
		jwk, err := api.NewJWK("TpmEphemeralEncryptionKey", "", rsaKey)
		if err != nil {
			h.t.Fatal(err)
		}
		jwk.KeyOps = []string{"encrypt"}
		doc.Keys = append(doc.Keys, jwk)
		if rd, err = json.Marshal(doc); err != nil {
			h.t.Fatal(err)
		}
	}
	ev, err := tee(h.wl).Attest(ctx, attest.NativeReportData(rd))
	if err != nil {
		h.t.Fatal(err)
	}
	ev.RuntimeData = rd
	resp, err := h.client.Attest(ctx, &api.AttestRequest{Workload: h.wl.Name, Evidence: *ev})
	if err != nil {
		h.t.Fatal(err)
	}
	return resp.Token
}

// fixedCredential hands azkeys the coordinator's key release token.
type fixedCredential string

func (c fixedCredential) GetToken(context.Context, policy.TokenRequestOptions) (azcore.AccessToken, error) {
	return azcore.AccessToken{Token: string(c), ExpiresOn: time.Now().Add(time.Hour)}, nil
}

func (h *akvHarness) azkeys(bearer string) *azkeys.Client {
	h.t.Helper()
	c, err := azkeys.NewClient(h.srv.URL, fixedCredential(bearer), &azkeys.ClientOptions{
		DisableChallengeResourceVerification: true,
		ClientOptions:                        azcore.ClientOptions{Transport: h.srv.Client()},
	})
	if err != nil {
		h.t.Fatal(err)
	}
	return c
}

var jweEnc = azkeys.KeyEncryptionAlgorithm("RSA-OAEP-256")

// unwrap verifies the release result against /certs and decrypts the key.
func (h *akvHarness) unwrap(value string, priv *rsa.PrivateKey) []byte {
	h.t.Helper()
	resp, err := h.srv.Client().Get(h.srv.URL + "/certs")
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	var jwks jose.JSONWebKeySet
	if err := json.NewDecoder(resp.Body).Decode(&jwks); err != nil {
		h.t.Fatal(err)
	}
	jws, err := jose.ParseSigned(value, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		h.t.Fatal(err)
	}
	keys := jwks.Key(jws.Signatures[0].Header.KeyID)
	if len(keys) != 1 {
		h.t.Fatalf("release result signed by unpublished key %q", jws.Signatures[0].Header.KeyID)
	}
	payload, err := jws.Verify(keys[0].Key)
	if err != nil {
		h.t.Fatalf("release result does not verify: %v", err)
	}
	var res struct {
		Request  map[string]any `json:"request"`
		Response struct {
			Key struct {
				Key struct {
					Kid    string `json:"kid"`
					KeyHSM string `json:"key_hsm"`
				} `json:"key"`
			} `json:"key"`
		} `json:"response"`
	}
	if err := json.Unmarshal(payload, &res); err != nil {
		h.t.Fatal(err)
	}
	hsmJSON, err := base64.RawURLEncoding.DecodeString(res.Response.Key.Key.KeyHSM)
	if err != nil {
		h.t.Fatal(err)
	}
	var hsm struct {
		Header struct {
			Kid, Alg, Enc string
		} `json:"header"`
		Ciphertext string `json:"ciphertext"`
	}
	if err := json.Unmarshal(hsmJSON, &hsm); err != nil {
		h.t.Fatal(err)
	}
	if hsm.Header.Kid != "TpmEphemeralEncryptionKey" {
		h.t.Errorf("key_hsm header %+v", hsm.Header)
	}
	ct, err := base64.RawURLEncoding.DecodeString(hsm.Ciphertext)
	if err != nil {
		h.t.Fatal(err)
	}
	if hash, ok := map[string]crypto.Hash{"CKM_RSA_AES_KEY_WRAP": crypto.SHA1, "RSA_AES_KEY_WRAP_256": crypto.SHA256, "RSA_AES_KEY_WRAP_384": crypto.SHA384}[hsm.Header.Enc]; ok {
		// Key Vault's RSA-AES key wrap: RSA-OAEP(AES key) || KWP(key).
		pt, err := keybroker.UnwrapRSAAES(priv, hash, ct)
		if err != nil {
			h.t.Fatalf("the released key does not unwrap with the TEE's RSA key: %v", err)
		}
		return pt
	}
	if hsm.Header.Enc != "RSA-OAEP-256" {
		h.t.Fatalf("key_hsm enc %q", hsm.Header.Enc)
	}
	jwe, err := jose.ParseEncryptedJSON(string(ct), []jose.KeyAlgorithm{jose.RSA_OAEP_256}, []jose.ContentEncryption{jose.A256GCM})
	if err != nil {
		h.t.Fatal(err)
	}
	pt, err := jwe.Decrypt(priv)
	if err != nil {
		h.t.Fatalf("the released key does not decrypt with the TEE's RSA key: %v", err)
	}
	return pt
}

func (h *akvHarness) stored(name string) []byte {
	h.t.Helper()
	i := 0
	for i < len(h.m.Secrets) && h.m.Secrets[i].Name != name {
		i++
	}
	_, v, err := h.broker.Current(context.Background(), h.m.Secrets[i], nil, h.clock.now())
	if err != nil {
		h.t.Fatal(err)
	}
	return v
}

// The real azkeys client releases, after Key Vault's challenge, a
// symmetric key and an RSA key pair wrapped to the RSA encryption key in
// the token's x-ms-runtime.keys, and the audit trail records both.
func TestAKVReleaseWithAzkeys(t *testing.T) {
	h := newAKVHarness(t)
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tok := h.attest(&priv.PublicKey)
	kv := h.azkeys(akvBearer)
	ctx := context.Background()
	// Key Vault's default enc (RSA_AES_KEY_WRAP_256, when the client names
	// none), its other two, and trustbound's JWE form.
	keyWrap256, keyWrap384, ckm := azkeys.KeyEncryptionAlgorithm("RSA_AES_KEY_WRAP_256"), azkeys.KeyEncryptionAlgorithm("RSA_AES_KEY_WRAP_384"), azkeys.KeyEncryptionAlgorithm("CKM_RSA_AES_KEY_WRAP")
	for _, enc := range []*azkeys.KeyEncryptionAlgorithm{nil, &keyWrap256, &keyWrap384, &ckm, &jweEnc} {
		for _, c := range []struct{ name, version string }{{"akv-disk-key", "1"}, {"vm-rsa", "1"}} {
			want := h.stored(c.name) // the key exists before its release, as in a vault: version 1
			resp, err := kv.Release(ctx, c.name, c.version, azkeys.ReleaseParameters{TargetAttestationToken: &tok, Algorithm: enc}, nil)
			if err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
			got := h.unwrap(*resp.Value, priv)
			if enc != &jweEnc {
				if blk, _ := pem.Decode(want); blk != nil {
					want = blk.Bytes // Key Vault releases key pairs as PKCS #8 DER
				}
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s (enc %v): released key material differs from the stored one", c.name, enc)
			}
		}
	}
	recs, err := h.client.Audit(ctx, h.owner)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, r := range recs {
		seen[r.Secret] = r.Workload == h.wl.Name && r.Version == 1
	}
	if !seen["akv-disk-key"] || !seen["vm-rsa"] {
		t.Errorf("audit trail %+v lacks the releases", recs)
	}
	raw, _ := json.Marshal(recs)
	if bytes.Contains(raw, []byte(base64.StdEncoding.EncodeToString(h.stored("akv-disk-key")))) {
		t.Error("the audit trail carries the key")
	}
}

type akvAnswer struct {
	status    int
	challenge string
	code, msg string
}

func (h *akvHarness) post(path, bearer string, body any) akvAnswer {
	h.t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(http.MethodPost, h.srv.URL+path+"?api-version=7.4", bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := h.srv.Client().Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var e struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	if resp.StatusCode != http.StatusOK {
		if err := json.Unmarshal(raw, &e); err != nil || e.Error.Code == "" {
			h.t.Fatalf("HTTP %d without Key Vault's error body: %q", resp.StatusCode, raw)
		}
	}
	return akvAnswer{resp.StatusCode, resp.Header.Get("WWW-Authenticate"), e.Error.Code, e.Error.Message}
}

func TestAKVRefusals(t *testing.T) {
	h := newAKVHarness(t)
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tok := h.attest(&priv.PublicKey)
	noRSA := h.attest(nil)
	other := newAKVHarness(t).attest(&priv.PublicKey) // same issuer name, another coordinator's keys
	if _, err := h.client.SetPolicy(context.Background(), h.owner, "skr", []byte(`{"version":"1.0.0","anyOf":[{"authority":"https://coordinator.test","allOf":[{"claim":"x-tb-workload","equals":"someone-else"}]}]}`)); err != nil {
		t.Fatal(err)
	}
	body := func(tok string) map[string]string { return map[string]string{"target": tok, "enc": "RSA-OAEP-256"} }

	r := h.post("/keys/akv-disk-key/release", "", body(tok))
	if r.status != http.StatusUnauthorized || r.challenge != `Bearer authorization="https://coordinator.test/", resource="https://coordinator.test"` {
		t.Errorf("no bearer: %+v", r)
	}
	for _, c := range []struct {
		name, path, bearer string
		body               any
		status             int
		code, msg          string
	}{
		{"wrong bearer", "/keys/akv-disk-key/release", "not-the-token", body(tok), 401, "Unauthorized", "not the coordinator's"},
		{"another issuer", "/keys/akv-disk-key/release", akvBearer, body(other), 403, "Forbidden", "not a published token key"},
		{"not granted", "/keys/other-key/release", akvBearer, body(tok), 403, "Forbidden", "not granted"},
		{"policy mismatch", "/keys/guarded-key/release", akvBearer, body(tok), 403, "Forbidden", "release policy"},
		{"no wrapping key", "/keys/akv-disk-key/release", akvBearer, body(noRSA), 400, "BadParameter", `key_ops "encrypt"`},
		{"unknown enc", "/keys/akv-disk-key/release", akvBearer, map[string]string{"target": tok, "enc": "RSA1_5"}, 400, "BadParameter", "unknown enc"},
		{"unknown key", "/keys/nope/release", akvBearer, body(tok), 404, "KeyNotFound", "not in the manifest"},
		{"unknown version", "/keys/akv-disk-key/7/release", akvBearer, body(tok), 404, "KeyNotFound", "version 7"},
	} {
		r := h.post(c.path, c.bearer, c.body)
		if r.status != c.status || r.code != c.code || !strings.Contains(r.msg, c.msg) {
			t.Errorf("%s: want %d %s %q, got %+v", c.name, c.status, c.code, c.msg, r)
		}
	}
	// The real client sees the same refusals.
	_, err = h.azkeys("not-the-token").Release(context.Background(), "akv-disk-key", "1", azkeys.ReleaseParameters{TargetAttestationToken: &tok, Algorithm: &jweEnc}, nil)
	var re *azcore.ResponseError
	if !errors.As(err, &re) || re.StatusCode != http.StatusUnauthorized {
		t.Errorf("azkeys with a wrong bearer: %v", err)
	}

	h.clock.advance(time.Hour)
	if r := h.post("/keys/akv-disk-key/release", akvBearer, body(tok)); r.status != 403 || !strings.Contains(r.msg, "expired") {
		t.Errorf("expired token: %+v", r)
	}
}

// The release request's nonce, with the real azkeys client: the target
// token's nonce (its attestation's challenge) releases and is echoed in
// the signed result; another nonce is refused with Key Vault's error; no
// nonce is not compared.
func TestAKVReleaseNonce(t *testing.T) {
	h := newAKVHarness(t)
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tok := h.attest(&priv.PublicKey)
	parts := strings.Split(tok, ".")
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims struct {
		Nonce   string `json:"nonce"`
		Runtime struct {
			Nonce string `json:"nonce"`
		} `json:"x-ms-runtime"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil || claims.Nonce == "" || claims.Runtime.Nonce != claims.Nonce {
		t.Fatalf("the target token's nonces: %+v (%v)", claims, err)
	}
	kv := h.azkeys(akvBearer)
	ctx := context.Background()
	want := h.stored("akv-disk-key") // version 1 exists before its release

	resp, err := kv.Release(ctx, "akv-disk-key", "1", azkeys.ReleaseParameters{TargetAttestationToken: &tok, Algorithm: &jweEnc, Nonce: &claims.Nonce}, nil)
	if err != nil {
		t.Fatalf("the token's nonce: %v", err)
	}
	if got := h.unwrap(*resp.Value, priv); !bytes.Equal(got, want) {
		t.Error("released key material differs from the stored one")
	}
	res, err := base64.RawURLEncoding.DecodeString(strings.Split(*resp.Value, ".")[1])
	if err != nil {
		t.Fatal(err)
	}
	var echoed struct {
		Request struct{ Nonce string } `json:"request"`
	}
	if err := json.Unmarshal(res, &echoed); err != nil || echoed.Request.Nonce != claims.Nonce {
		t.Errorf("request.nonce of the result %q, want %q (%v)", echoed.Request.Nonce, claims.Nonce, err)
	}

	other := claims.Nonce + "x"
	_, err = kv.Release(ctx, "akv-disk-key", "1", azkeys.ReleaseParameters{TargetAttestationToken: &tok, Algorithm: &jweEnc, Nonce: &other}, nil)
	var re *azcore.ResponseError
	if !errors.As(err, &re) || re.StatusCode != http.StatusForbidden || re.ErrorCode != "Forbidden" || !strings.Contains(err.Error(), "nonce") {
		t.Errorf("another nonce: %v", err)
	}
	if r := h.post("/keys/akv-disk-key/release", akvBearer, map[string]string{"target": tok, "enc": "RSA-OAEP-256", "nonce": other}); r.status != 403 || r.code != "Forbidden" || !strings.Contains(r.msg, "nonce of the target attestation token") {
		t.Errorf("another nonce over HTTP: %+v", r)
	}

	if _, err := kv.Release(ctx, "akv-disk-key", "1", azkeys.ReleaseParameters{TargetAttestationToken: &tok, Algorithm: &jweEnc}, nil); err != nil {
		t.Errorf("no nonce: %v", err)
	}
}
