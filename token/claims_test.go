package token

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/trustbound/trustbound/api"
	"github.com/trustbound/trustbound/attest"
)

// The EAR vector and status NewClaims derives for each kind of evidence.
func TestNewClaimsTrustVector(t *testing.T) {
	for _, tc := range []struct {
		name       string
		edit       func(c *attest.Claims)
		status     string
		wantStatus string
		want       TrustVector
	}{
		{"real, affirmed", func(*attest.Claims) {}, StatusAffirming, StatusAffirming,
			TrustVector{InstanceIdentity: 2, Configuration: 2, Executables: 2, Hardware: 2, RuntimeOpaque: 2}},
		{"simulated", func(c *attest.Claims) { c.Simulated, c.RevocationChecked = true, false }, StatusAffirming, StatusContraindicated,
			TrustVector{Configuration: 2, Executables: 2, Hardware: 97, RuntimeOpaque: 2}},
		{"debuggable", func(c *attest.Claims) { c.Debug = true }, StatusAffirming, StatusContraindicated,
			TrustVector{InstanceIdentity: 2, Configuration: 2, Executables: 2, Hardware: 2, RuntimeOpaque: 96}},
		{"TCB out of date", func(c *attest.Claims) { c.TCB.Evaluated, c.TCB.Status = true, "OutOfDate" }, StatusAffirming, StatusWarning,
			TrustVector{InstanceIdentity: 2, Configuration: 2, Executables: 2, Hardware: 32, RuntimeOpaque: 2}},
		{"revocation unchecked", func(c *attest.Claims) { c.RevocationChecked = false }, StatusAffirming, StatusAffirming,
			TrustVector{Configuration: 2, Executables: 2, Hardware: 2, RuntimeOpaque: 2}},
		{"appraisal denied (dry run)", func(*attest.Claims) {}, StatusContraindicated, StatusContraindicated,
			TrustVector{InstanceIdentity: 2, Hardware: 2, RuntimeOpaque: 2}},
		{"no claim", func(c *attest.Claims) { c.Debug = true }, StatusNone, StatusNone,
			TrustVector{InstanceIdentity: 2, Hardware: 2, RuntimeOpaque: 96}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := testResult(t)
			tc.edit(r.Claims)
			r.Status = tc.status
			c, err := NewClaims(r)
			if err != nil {
				t.Fatal(err)
			}
			sub := c.Submods[string(attest.SEVSNP)]
			if *sub.TrustVector != tc.want || sub.Status != tc.wantStatus {
				t.Errorf("status %s vector %+v, want %s %+v", sub.Status, *sub.TrustVector, tc.wantStatus, tc.want)
			}
			if c.Simulated != r.Claims.Simulated {
				t.Error("x-tb-simulated does not follow the evidence")
			}
		})
	}
	// A vector the caller gives is kept, and still bounds the status.
	r := testResult(t)
	r.TrustVector = &TrustVector{Executables: 33}
	c, _ := NewClaims(r)
	if sub := c.Submods["sev-snp"]; sub.TrustVector.Executables != 33 || sub.Status != StatusWarning {
		t.Errorf("given vector: %+v", sub)
	}
}

func TestTrustClaimTiers(t *testing.T) {
	for c, want := range map[TrustClaim]string{-128: StatusContraindicated, -97: StatusContraindicated, -96: StatusWarning,
		-33: StatusWarning, -32: StatusAffirming, -2: StatusAffirming, -1: StatusNone, 0: StatusNone, 1: StatusNone,
		2: StatusAffirming, 31: StatusAffirming, 32: StatusWarning, 95: StatusWarning, 96: StatusContraindicated, 127: StatusContraindicated} {
		if got := c.Tier(); got != want {
			t.Errorf("%d: %s, want %s", c, got, want)
		}
	}
}

func TestNewClaimsRefuses(t *testing.T) {
	for name, edit := range map[string]func(r *AttestationResult){
		"no claims":             func(r *AttestationResult) { r.Claims = nil },
		"no TEE":                func(r *AttestationResult) { r.Claims.TEE = "" },
		"bad status":            func(r *AttestationResult) { r.Status = "ok" },
		"empty status":          func(r *AttestationResult) { r.Status = "" },
		"runtime not an object": func(r *AttestationResult) { r.Runtime = []byte(`["keys"]`) },
		"runtime not JSON":      func(r *AttestationResult) { r.Runtime = []byte(`{`) },
		"runtime null":          func(r *AttestationResult) { r.Runtime = []byte(`null`) },
		"key without kid":       func(r *AttestationResult) { r.Runtime = []byte(`{"keys":[{"kty":"EC"}]}`) },
		"key without kty":       func(r *AttestationResult) { r.Runtime = []byte(`{"keys":[{"kid":"a"}]}`) },
		"keys not an array":     func(r *AttestationResult) { r.Runtime = []byte(`{"keys":{"kid":"a"}}`) },
		"keys twice":            func(r *AttestationResult) { r.Runtime = []byte(`{"keys":[],"keys":[{"kid":"a","kty":"EC"}]}`) },
		"kid twice":             func(r *AttestationResult) { r.Runtime = []byte(`{"keys":[{"kid":"a","kty":"EC","kid":"b"}]}`) },
		"deep name twice":       func(r *AttestationResult) { r.Runtime = []byte(`{"a":[{"b":{"c":1,"c":2}}]}`) },
		"issued replaces Azure": func(r *AttestationResult) { r.Issued = map[string]any{"x-ms-sevsnpvm-is-debuggable": false} },
		"issued replaces ours":  func(r *AttestationResult) { r.Issued = map[string]any{"x-tb-simulated": false} },
		"issued replaces iss":   func(r *AttestationResult) { r.Issued = map[string]any{"iss": "https://evil"} },
		"issued dotted name": func(r *AttestationResult) {
			r.Issued = map[string]any{"x-ms-isolation-tee.x-ms-sevsnpvm-is-debuggable": false}
		},
		"issued x-ms- name": func(r *AttestationResult) { r.Issued = map[string]any{"x-ms-compliance-status": "azure-compliant-cvm"} },
		"issued x-tb- name": func(r *AttestationResult) { r.Issued = map[string]any{"x-tb-anything": true} },
		"issued empty name": func(r *AttestationResult) { r.Issued = map[string]any{"": true} },
	} {
		r := testResult(t)
		edit(&r)
		if _, err := NewClaims(r); !errors.Is(err, ErrClaims) {
			t.Errorf("%s: want ErrClaims, got %v", name, err)
		}
	}
	// Azure claims set by hand cannot replace trustbound's either.
	iss, _ := newIssuer(t, ES256)
	if _, err := iss.Issue(Claims{Azure: map[string]any{"x-tb-workload": "evil"}}, t0); err == nil {
		t.Error("an Azure claim replaced x-tb-workload")
	}
}

func TestIssuedAndGuestClaims(t *testing.T) {
	r := testResult(t)
	r.Claims.Format = attest.FormatAzureSNPVTPM
	r.Claims.Platform = map[string]string{"vm_unique_id": "vm-1", "secure_boot": "true", "snp_report_data": "abcd"}
	r.Issued = map[string]any{"compliance": "azure-compliant-cvm"} // issued names are plain (CheckIssuedName)
	c, err := NewClaims(r)
	if err != nil {
		t.Fatal(err)
	}
	iss, _ := newIssuer(t, ES256)
	raw, err := iss.Issue(c, t0)
	if err != nil {
		t.Fatal(err)
	}
	p := payload(t, raw)
	for _, tc := range []struct {
		path []string
		want any
	}{
		{[]string{"x-ms-attestation-type"}, "azurevm"},
		{[]string{"compliance"}, "azure-compliant-cvm"},
		{[]string{"secureboot"}, true},
		{[]string{"x-ms-azurevm-vmid"}, "vm-1"},
		{[]string{"x-ms-isolation-tee", "x-ms-attestation-type"}, "sevsnpvm"},
		{[]string{"x-ms-isolation-tee", "x-ms-sevsnpvm-reportdata"}, "abcd"},
		{[]string{"submods", "sev-snp", "ear.veraison.annotated-evidence", "format"}, "az-snp-vtpm"},
	} {
		if got := path(p, tc.path...); got != tc.want {
			t.Errorf("%s = %#v, want %#v", strings.Join(tc.path, "."), got, tc.want)
		}
	}
	got, err := iss.Verify(raw, t0)
	if err != nil {
		t.Fatal(err)
	}
	if got.Azure["compliance"] != "azure-compliant-cvm" || path(got.Azure, "x-ms-isolation-tee", "x-ms-sevsnpvm-guestsvn") != json.Number("3") {
		t.Errorf("azure claims after verify: %v", got.Azure)
	}
}

// namedClaims must list exactly the names claimsJSON writes, or Verify
// would put named claims into Azure (or let Azure claims shadow them).
func TestNamedClaimsComplete(t *testing.T) {
	var names []string
	typ := reflect.TypeFor[claimsJSON]()
	for i := range typ.NumField() {
		names = append(names, strings.Split(typ.Field(i).Tag.Get("json"), ",")[0])
	}
	slices.Sort(names)
	got := slices.Sorted(slices.Values(namedClaims))
	if !slices.Equal(got, names) {
		t.Errorf("namedClaims %v, claimsJSON writes %v", got, names)
	}
}

func TestRuntimeKeepsWorkloadJSON(t *testing.T) {
	doc := []byte(`{"keys":[{"kid":"TpmEphemeralEncryptionKey","kty":"RSA","key_ops":["encrypt"],"n":"AQAB","e":"AQAB"}],
		"vm-configuration":{"secure-boot":true},"user-data":"00"}`)
	rt, err := ParseRuntime(doc)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(rt)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	if path(m, "vm-configuration", "secure-boot") != true || m["user-data"] != "00" || len(m) != 3 {
		t.Errorf("x-ms-runtime %s", b)
	}
	if _, err := ParseRuntime([]byte(`{"a":{"x":1},"b":{"x":[{"x":1},{"x":2}]},"x":{"a":1}}`)); err != nil {
		t.Errorf("names repeated across objects refused: %v", err)
	}
	jwks, _ := rt.JWKs()
	if len(jwks) != 1 || jwks[0].KeyOps[0] != "encrypt" || rt.Keys[0].Kid != "TpmEphemeralEncryptionKey" {
		t.Errorf("keys %+v %+v", jwks, rt.Keys)
	}
}

// Without a Doc, JWKs converts the typed keys whole: key_ops and an RSA
// key's n and e included.
func TestRuntimeJWKsWithoutDoc(t *testing.T) {
	k := api.JWK{Kid: "wrap", Kty: "RSA", Use: "enc", KeyOps: []string{"encrypt"}, N: "AQAB", E: "AQAB"}
	jwks, err := Runtime{Keys: []api.JWK{k}}.JWKs()
	if err != nil {
		t.Fatal(err)
	}
	want := JWK{Kid: k.Kid, Kty: k.Kty, Use: k.Use, KeyOps: k.KeyOps, N: k.N, E: k.E}
	if len(jwks) != 1 || !reflect.DeepEqual(jwks[0], want) {
		t.Errorf("JWKs() = %+v, want [%+v]", jwks, want)
	}
}

func TestDiscoveryDocuments(t *testing.T) {
	iss, ring := newIssuer(t, ES256)
	if err := ring.Rotate(t0, testKey(t, RS256, 0, t0)); err != nil {
		t.Fatal(err)
	}
	b, err := iss.JWKS(t0)
	if err != nil {
		t.Fatal(err)
	}
	var set struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal(b, &set); err != nil {
		t.Fatal(err)
	}
	if len(set.Keys) != 2 {
		t.Fatalf("%d keys", len(set.Keys))
	}
	for _, k := range set.Keys {
		key, ok := ring.lookup(k["kid"].(string), t0)
		if !ok || k["alg"] != key.Algorithm || k["use"] != "sig" || k["d"] != nil {
			t.Errorf("JWK %v", k)
		}
		if want := map[string]string{ES256: "EC", RS256: "RSA"}[key.Algorithm]; k["kty"] != want {
			t.Errorf("kty %v", k["kty"])
		}
		x5c, _ := k["x5c"].([]any)
		if len(x5c) != 1 {
			t.Fatalf("x5c %v", k["x5c"])
		}
		der, err := base64.StdEncoding.DecodeString(x5c[0].(string))
		if err != nil {
			t.Fatal(err)
		}
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		if err := cert.CheckSignature(cert.SignatureAlgorithm, cert.RawTBSCertificate, cert.Signature); err != nil || cert.IsCA {
			t.Errorf("certificate is not self-signed: %v", err)
		}
		if cert.Subject.CommonName != testIssuer || !cert.NotBefore.Equal(t0) || cert.NotAfter.Year() != 9999 {
			t.Errorf("certificate %v %v %v", cert.Subject, cert.NotBefore, cert.NotAfter)
		}
		tp, _ := Thumbprint(cert.PublicKey)
		if tp != key.ID {
			t.Error("certificate is for another key")
		}
	}
	again, _ := iss.JWKS(t0)
	if string(again) != string(b) {
		t.Error("JWKS differs between calls")
	}

	doc, err := iss.OpenIDConfiguration(testIssuer + "/")
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Issuer        string   `json:"issuer"`
		JWKSURI       string   `json:"jwks_uri"`
		Algs          []string `json:"id_token_signing_alg_values_supported"`
		ResponseTypes []string `json:"response_types_supported"`
		SubjectTypes  []string `json:"subject_types_supported"`
		Claims        []string `json:"claims_supported"`
	}
	if err := json.Unmarshal(doc, &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.Issuer != testIssuer || cfg.JWKSURI != testIssuer+"/certs" || !slices.Equal(cfg.Algs, []string{ES256, RS256}) ||
		!slices.Equal(cfg.ResponseTypes, []string{"token"}) || !slices.Equal(cfg.SubjectTypes, []string{"public"}) {
		t.Errorf("configuration %s", doc)
	}
	for _, want := range []string{"iss", "nonce", "submods", "eat_profile", "x-ms-runtime", "x-ms-policy-hash", "x-ms-ver",
		"x-ms-attestation-type", "x-ms-sevsnpvm-launchmeasurement", "x-ms-sevsnpvm-vmpl", "x-ms-sgx-mrenclave", "x-ms-sgx-config-svn",
		"tdx_mrtd", "attester_tcb_status", "x-ms-isolation-tee", "secureboot", "x-tb-simulated"} {
		if !slices.Contains(cfg.Claims, want) {
			t.Errorf("claims_supported lacks %s", want)
		}
	}
	for _, bad := range []string{"", "coordinator.test", "ftp://x", "https://x/?q=1"} {
		if _, err := iss.OpenIDConfiguration(bad); err == nil {
			t.Errorf("base URL %q accepted", bad)
		}
	}
	if kids := jwksKids(t, iss, t0.Add(time.Hour)); len(kids) != 2 {
		t.Errorf("current keys are always published: %v", kids)
	}
}

// Issued claim names, and the member names of issued objects, must be
// valid UTF-8: encoded, "a\xff" and "a\xfe" would both become "a\uFFFD",
// one name twice in a signed token.
func TestIssuedNamesMustBeUTF8(t *testing.T) {
	for _, name := range []string{"a\xff", "\xfe", "ok\xc3"} {
		if err := CheckIssuedName(name); err == nil || !strings.Contains(err.Error(), "not valid UTF-8") {
			t.Errorf("CheckIssuedName(%q) = %v, want a refusal", name, err)
		}
	}
	if err := CheckIssuedName("größe"); err != nil {
		t.Errorf("a valid UTF-8 name refused: %v", err)
	}
	for name, issued := range map[string]map[string]any{
		"two names":           {"a\xff": 1, "a\xfe": 2},
		"nested member names": {"c": map[string]any{"k\xff": 1, "k\xfe": 2}},
		"in an array":         {"c": []any{"x", map[string]any{"k\xff": true}}},
		"string map":          {"c": map[string]string{"k\xff": "v"}},
	} {
		r := testResult(t)
		r.Issued = issued
		if _, err := NewClaims(r); !errors.Is(err, ErrClaims) || !strings.Contains(err.Error(), "not valid UTF-8") {
			t.Errorf("%s: NewClaims = %v, want ErrClaims for invalid UTF-8", name, err)
		}
		// Claims built by hand are refused when encoded.
		c, err := NewClaims(testResult(t))
		if err != nil {
			t.Fatal(err)
		}
		maps.Copy(c.Azure, issued)
		if b, err := c.MarshalJSON(); err == nil || !strings.Contains(err.Error(), "not valid UTF-8") {
			t.Errorf("%s: MarshalJSON = %s, %v; want a refusal", name, b, err)
		}
	}
	r := testResult(t)
	r.Issued = map[string]any{"größe": map[string]any{"ключ": []any{"wert"}}}
	if _, err := NewClaims(r); err != nil {
		t.Errorf("valid UTF-8 issued claims refused: %v", err)
	}
}

// A Doc changed in place after ParseRuntime is checked again when encoded:
// its bytes, not its address, decide.
func TestRuntimeDocChangedInPlace(t *testing.T) {
	rt, err := ParseRuntime([]byte(`{"nonce":"n1","keys":[]}`))
	if err != nil {
		t.Fatal(err)
	}
	if b, err := rt.MarshalJSON(); err != nil || string(b) != `{"nonce":"n1","keys":[]}` {
		t.Fatalf("MarshalJSON = %s, %v", b, err)
	}
	// Same length, same backing array: a member name repeated, and then
	// not JSON at all.
	copy(rt.Doc, `{"nonce":"n1","nonce":1}`)
	if b, err := rt.MarshalJSON(); err == nil {
		t.Errorf("a Doc with a repeated name changed in place was encoded: %s", b)
	}
	copy(rt.Doc, `{"nonce":"n1","keys":[]`+"\x00")
	if b, err := json.Marshal(Claims{Runtime: rt}); err == nil {
		t.Errorf("a Doc changed in place into invalid JSON was encoded: %s", b)
	}
	// Restored, it is the checked document again.
	copy(rt.Doc, `{"nonce":"n1","keys":[]}`)
	if b, err := rt.MarshalJSON(); err != nil || string(b) != `{"nonce":"n1","keys":[]}` {
		t.Errorf("MarshalJSON after restoring = %s, %v", b, err)
	}
}
