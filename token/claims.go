package token

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/trustbound/trustbound/api"
	"github.com/trustbound/trustbound/attest"
)

// EATProfile is the EAR profile the tokens follow: Veraison's, which
// Confidential Containers Trustee also issues, with the dotted claim names
// (ear.status, ear.trustworthiness-vector, ...).
const EATProfile = "tag:github.com,2023:veraison/ear"

// AzureVersion is the x-ms-ver claim of Azure Attestation's tokens.
const AzureVersion = "1.0"

// Verifier identity (ear.verifier-id).
const (
	VerifierDeveloper = "trustbound"
	DefaultBuild      = "trustbound"
)

// EAR statuses (ear.status), from best to worst; "none" means no claim.
const (
	StatusAffirming       = "affirming"
	StatusWarning         = "warning"
	StatusContraindicated = "contraindicated"
	StatusNone            = "none"
)

// statusRank orders statuses by how bad they are.
var statusRank = map[string]int{StatusNone: 0, StatusAffirming: 1, StatusWarning: 2, StatusContraindicated: 3}

// TrustClaim is one AR4SI trustworthiness claim: -1..1 make no claim,
// 2..31 affirm, 32..95 warn, 96..127 contraindicate (and the mirrored
// negative ranges).
type TrustClaim int8

// The trustworthiness claims trustbound asserts (draft-ietf-rats-ar4si,
// as Veraison's EAR implementation numbers them).
const (
	NoClaim                TrustClaim = 0
	TrustworthyInstance    TrustClaim = 2  // instance-identity
	ApprovedConfig         TrustClaim = 2  // configuration
	ApprovedRuntime        TrustClaim = 2  // executables
	GenuineHardware        TrustClaim = 2  // hardware
	UnsafeHardware         TrustClaim = 32 // hardware: genuine, known vulnerabilities
	UnrecognizedHardware   TrustClaim = 97 // hardware: not recognised (simulated)
	EncryptedMemoryRuntime TrustClaim = 2  // runtime-opaque
	VisibleMemoryRuntime   TrustClaim = 96 // runtime-opaque: debuggable
)

// Tier is the EAR status a claim falls in.
func (c TrustClaim) Tier() string {
	switch {
	case c >= -1 && c <= 1:
		return StatusNone
	case (c >= 2 && c <= 31) || (c >= -32 && c <= -2):
		return StatusAffirming
	case (c >= 32 && c <= 95) || (c >= -96 && c <= -33):
		return StatusWarning
	}
	return StatusContraindicated
}

// TrustVector is the EAR trustworthiness vector. All eight claims are
// written, 0 meaning that no claim is made.
type TrustVector struct {
	InstanceIdentity TrustClaim `json:"instance-identity"`
	Configuration    TrustClaim `json:"configuration"`
	Executables      TrustClaim `json:"executables"`
	FileSystem       TrustClaim `json:"file-system"`
	Hardware         TrustClaim `json:"hardware"`
	RuntimeOpaque    TrustClaim `json:"runtime-opaque"`
	StorageOpaque    TrustClaim `json:"storage-opaque"`
	SourcedData      TrustClaim `json:"sourced-data"`
}

// Tier is the worst tier of the claims made, "none" if none is made.
func (v TrustVector) Tier() string {
	worst := StatusNone
	for _, c := range []TrustClaim{v.InstanceIdentity, v.Configuration, v.Executables, v.FileSystem,
		v.Hardware, v.RuntimeOpaque, v.StorageOpaque, v.SourcedData} {
		if t := c.Tier(); statusRank[t] > statusRank[worst] {
			worst = t
		}
	}
	return worst
}

// DeriveTrustVector states what verified claims c and an appraisal ending in
// status establish:
//   - instance-identity 2 when the vendor's revocation lists were checked
//     for real hardware, otherwise no claim;
//   - configuration and executables 2 when the appraisal affirmed (the
//     workload's reference values matched), otherwise no claim;
//   - hardware 97 for simulated evidence, 32 when the vendor's TCB status
//     is known and not UpToDate, otherwise 2;
//   - runtime-opaque 96 when the TEE is debuggable, otherwise 2;
//   - file-system, storage-opaque and sourced-data: no claim.
func DeriveTrustVector(c *attest.Claims, status string) TrustVector {
	var v TrustVector
	if c == nil {
		return v
	}
	if c.RevocationChecked && !c.Simulated {
		v.InstanceIdentity = TrustworthyInstance
	}
	if status == StatusAffirming {
		v.Configuration, v.Executables = ApprovedConfig, ApprovedRuntime
	}
	switch {
	case c.Simulated:
		v.Hardware = UnrecognizedHardware
	case c.TCB.Status != "" && c.TCB.Status != "UpToDate":
		v.Hardware = UnsafeHardware
	default:
		v.Hardware = GenuineHardware
	}
	v.RuntimeOpaque = EncryptedMemoryRuntime
	if c.Debug {
		v.RuntimeOpaque = VisibleMemoryRuntime
	}
	return v
}

// worstStatus lowers status to the worst tier of v (an appraisal cannot
// affirm more than its claims do); "none" stays "none".
func worstStatus(status string, v *TrustVector) string {
	if status == StatusNone || v == nil {
		return status
	}
	if t := v.Tier(); statusRank[t] > statusRank[status] {
		return t
	}
	return status
}

// Submod is one EAR appraisal; trustbound issues one, named after the TEE.
type Submod struct {
	Status            string         `json:"ear.status"`
	TrustVector       *TrustVector   `json:"ear.trustworthiness-vector,omitempty"`
	PolicyID          string         `json:"ear.appraisal-policy-id,omitempty"`
	AnnotatedEvidence *attest.Claims `json:"ear.veraison.annotated-evidence,omitempty"`
}

// JWK is an RFC 7517 public key as workloads put them in their runtime
// data (x-ms-runtime.keys): EC, OKP or RSA, with key_ops.
type JWK struct {
	Kid    string   `json:"kid"`
	Kty    string   `json:"kty"`
	Use    string   `json:"use,omitempty"`
	KeyOps []string `json:"key_ops,omitempty"`
	Alg    string   `json:"alg,omitempty"`
	Crv    string   `json:"crv,omitempty"`
	X      string   `json:"x,omitempty"`
	Y      string   `json:"y,omitempty"`
	N      string   `json:"n,omitempty"`
	E      string   `json:"e,omitempty"`
}

// Runtime is x-ms-runtime: the runtime data the workload bound into its
// evidence, with its TEE-held keys as JWKs under "keys".
type Runtime struct {
	// Keys and HPKE are the typed view of trustbound's own runtime data
	// (api.RuntimeData): its EC and OKP keys and its HPKE key.
	Keys []api.JWK
	HPKE api.HPKEKey
	// Doc is the runtime JSON object as the workload sent it. When set it
	// is what x-ms-runtime carries, every member kept; otherwise
	// x-ms-runtime is {"keys": Keys, "hpke": HPKE}. After Verify it is set.
	// MarshalJSON checks a Doc again unless its bytes are still those
	// ParseRuntime checked.
	Doc json.RawMessage
	// checked is ParseRuntime's own copy of the Doc it made (checked and
	// compacted), which no caller can reach to change.
	checked json.RawMessage
}

// docChecked reports whether Doc holds the bytes ParseRuntime checked:
// compared, not trusted by identity, since a caller may change Doc's
// bytes in place.
func (r Runtime) docChecked() bool {
	return len(r.Doc) > 0 && bytes.Equal(r.Doc, r.checked)
}

// ParseRuntime reads runtime JSON a workload sent (untrusted): a JSON
// object whose "keys", if present, is an array of JWKs each with a kid and
// a kty, and whose "hpke", if present, is an HPKE key.
//
// A member name repeated within one object is refused: readers differ on
// which of the two they take, so the token would say different things to
// different relying parties.
func ParseRuntime(doc []byte) (Runtime, error) {
	var members map[string]json.RawMessage
	if err := json.Unmarshal(doc, &members); err != nil || members == nil {
		return Runtime{}, fmt.Errorf("token: runtime data is not a JSON object")
	}
	if err := api.UniqueNames(doc); err != nil {
		return Runtime{}, fmt.Errorf("token: runtime data: %w", err)
	}
	var rt Runtime
	if raw, ok := members["keys"]; ok {
		var jwks []JWK
		if err := json.Unmarshal(raw, &jwks); err != nil {
			return Runtime{}, fmt.Errorf("token: runtime data keys: %w", err)
		}
		if jwks != nil {
			rt.Keys = make([]api.JWK, 0, len(jwks))
		}
		for i, k := range jwks {
			if k.Kid == "" || k.Kty == "" {
				return Runtime{}, fmt.Errorf("token: runtime data key %d has no kid or kty", i)
			}
			rt.Keys = append(rt.Keys, api.JWK{Kid: k.Kid, Kty: k.Kty, Use: k.Use, KeyOps: k.KeyOps, Crv: k.Crv, X: k.X, Y: k.Y, N: k.N, E: k.E})
		}
	}
	if raw, ok := members["hpke"]; ok {
		if err := json.Unmarshal(raw, &rt.HPKE); err != nil {
			return Runtime{}, fmt.Errorf("token: runtime data hpke: %w", err)
		}
	}
	// A document without any JSON whitespace byte is already compact
	// (json.Compact would copy it unchanged): it is copied, not rescanned.
	if bytes.ContainsAny(doc, " \t\r\n") {
		var buf bytes.Buffer
		buf.Grow(len(doc))
		if err := json.Compact(&buf, doc); err != nil {
			return Runtime{}, fmt.Errorf("token: runtime data: %w", err)
		}
		rt.Doc = buf.Bytes()
	} else {
		rt.Doc = bytes.Clone(doc)
	}
	rt.checked = bytes.Clone(rt.Doc)
	return rt, nil
}

// JWKs returns the runtime keys as full RFC 7517 JWKs (key_ops, RSA n and
// e included), as a relying party such as a key vault reads them.
func (r Runtime) JWKs() ([]JWK, error) {
	if r.Doc == nil {
		out := make([]JWK, 0, len(r.Keys))
		for _, k := range r.Keys {
			out = append(out, JWK{Kid: k.Kid, Kty: k.Kty, Use: k.Use, KeyOps: k.KeyOps, Crv: k.Crv, X: k.X, Y: k.Y, N: k.N, E: k.E})
		}
		return out, nil
	}
	var doc struct {
		Keys []JWK `json:"keys"`
	}
	if err := json.Unmarshal(r.Doc, &doc); err != nil {
		return nil, fmt.Errorf("token: runtime keys: %w", err)
	}
	return doc.Keys, nil
}

func (r Runtime) isZero() bool {
	return r.Doc == nil && len(r.Keys) == 0 && r.HPKE.KEM == 0 && r.HPKE.KDF == 0 && r.HPKE.AEAD == 0 && len(r.HPKE.PublicKey) == 0
}

// MarshalJSON writes Doc, or {"keys", "hpke"} when there is no Doc.
func (r Runtime) MarshalJSON() ([]byte, error) {
	if r.Doc != nil {
		if r.docChecked() {
			return r.checked, nil
		}
		rt, err := ParseRuntime(r.Doc)
		if err != nil {
			return nil, err
		}
		return rt.Doc, nil
	}
	keys := r.Keys
	if keys == nil {
		keys = []api.JWK{}
	}
	return json.Marshal(struct {
		Keys []api.JWK   `json:"keys"`
		HPKE api.HPKEKey `json:"hpke"`
	}{keys, r.HPKE})
}

// UnmarshalJSON reads x-ms-runtime as ParseRuntime does.
func (r *Runtime) UnmarshalJSON(b []byte) error {
	rt, err := ParseRuntime(b)
	if err != nil {
		return err
	}
	*r = rt
	return nil
}

// Claims is the body of a trustbound attestation token: the standard JWT
// claims, the EAR shape, the Azure Attestation claims of the TEE at hand,
// x-ms-runtime, and trustbound's own x-tb-* claims.
type Claims struct {
	// jwt.Claims holds iss, sub (the workload's SPIFFE ID when known), aud,
	// iat, nbf, exp and jti. Issue sets all but sub and aud.
	jwt.Claims
	Nonce string
	// EATProfile, VerifierID and Submods give the token the EAR shape.
	EATProfile string
	VerifierID map[string]string
	Submods    map[string]Submod
	// Version is x-ms-ver ("1.0"); PolicyHash is x-ms-policy-hash of the
	// Azure-language policy that decided, if any.
	Version    string
	PolicyHash string
	// Azure holds the claims written at the top level under Azure
	// Attestation's names: AzureClaims of the TEE (x-ms-attestation-type,
	// x-ms-sevsnpvm-*, x-ms-sgx-*, tdx_*, x-ms-isolation-tee, ...) and any
	// claims the appraisal policy issued. None may replace a claim this
	// type names. After Verify every top-level claim this type does not
	// name is here, numbers as json.Number.
	Azure map[string]any
	// Runtime is x-ms-runtime.
	Runtime Runtime
	// trustbound's own claims (x-tb-*).
	Workload       string
	Model          string
	Simulated      bool
	ManifestDigest string
	EvidenceDigest string
	// TEE is the verified, normalised evidence. It is written as the
	// submods' ear.veraison.annotated-evidence (Issue fills that in when it
	// is missing), and Verify reads it back from there.
	TEE attest.Claims
}

// claimsJSON is the wire form of the claims that Claims names.
type claimsJSON struct {
	Issuer         string            `json:"iss,omitempty"`
	Subject        string            `json:"sub,omitempty"`
	Audience       jwt.Audience      `json:"aud,omitempty"`
	Expiry         *jwt.NumericDate  `json:"exp,omitempty"`
	NotBefore      *jwt.NumericDate  `json:"nbf,omitempty"`
	IssuedAt       *jwt.NumericDate  `json:"iat,omitempty"`
	ID             string            `json:"jti,omitempty"`
	Nonce          string            `json:"nonce,omitempty"`
	EATProfile     string            `json:"eat_profile"`
	VerifierID     map[string]string `json:"ear.verifier-id,omitempty"`
	Submods        map[string]Submod `json:"submods"`
	Version        string            `json:"x-ms-ver,omitempty"`
	PolicyHash     string            `json:"x-ms-policy-hash,omitempty"`
	Runtime        *Runtime          `json:"x-ms-runtime,omitempty"`
	Workload       string            `json:"x-tb-workload"`
	Model          string            `json:"x-tb-model,omitempty"`
	Simulated      bool              `json:"x-tb-simulated"`
	ManifestDigest string            `json:"x-tb-manifest-digest,omitempty"`
	EvidenceDigest string            `json:"x-tb-evidence-digest,omitempty"`
}

// namedClaims are the top-level claim names claimsJSON writes.
var namedClaims = []string{"iss", "sub", "aud", "exp", "nbf", "iat", "jti", "nonce", "eat_profile",
	"ear.verifier-id", "submods", "x-ms-ver", "x-ms-policy-hash", "x-ms-runtime", "x-tb-workload",
	"x-tb-model", "x-tb-simulated", "x-tb-manifest-digest", "x-tb-evidence-digest"}

// MarshalJSON writes the token body, the Azure claims flattened at the top
// level.
func (c Claims) MarshalJSON() ([]byte, error) {
	w := claimsJSON{
		Issuer: c.Issuer, Subject: c.Subject, Audience: c.Audience, Expiry: c.Expiry, NotBefore: c.NotBefore,
		IssuedAt: c.IssuedAt, ID: c.ID, Nonce: c.Nonce, EATProfile: c.EATProfile, VerifierID: c.VerifierID,
		Submods: c.Submods, Version: c.Version, PolicyHash: c.PolicyHash, Workload: c.Workload, Model: c.Model,
		Simulated: c.Simulated, ManifestDigest: c.ManifestDigest, EvidenceDigest: c.EvidenceDigest,
	}
	if w.Submods == nil {
		w.Submods = map[string]Submod{}
	}
	if !c.Runtime.isZero() {
		w.Runtime = &c.Runtime
	}
	b, err := json.Marshal(w)
	if err != nil || len(c.Azure) == 0 {
		return b, err
	}
	// The Azure claims join the object's members, in name order. w always
	// writes eat_profile, so b is a non-empty object and ends in '}'.
	out := b[:len(b)-1]
	for _, name := range slices.Sorted(maps.Keys(c.Azure)) {
		if slices.Contains(namedClaims, name) {
			return nil, fmt.Errorf("token: claim %q is trustbound's and cannot be set through Azure claims", name)
		}
		// json.Marshal writes invalid UTF-8 as U+FFFD: two names (or two
		// keys of one object) that differ there would be one name twice.
		if !utf8.ValidString(name) {
			return nil, fmt.Errorf("token: claim %q: the name is not valid UTF-8", name)
		}
		if err := checkKeysUTF8(c.Azure[name], name); err != nil {
			return nil, fmt.Errorf("token: %w", err)
		}
		k, err := json.Marshal(name)
		if err != nil {
			return nil, fmt.Errorf("token: claim %q: %w", name, err)
		}
		v, err := json.Marshal(c.Azure[name])
		if err != nil {
			return nil, fmt.Errorf("token: claim %q: %w", name, err)
		}
		out = append(append(append(append(out, ','), k...), ':'), v...)
	}
	return append(out, '}'), nil
}

// UnmarshalJSON reads a token body: the named claims into their fields,
// every other top-level claim into Azure, and TEE from the annotated
// evidence of the one submod that carries it.
func (c *Claims) UnmarshalJSON(b []byte) error {
	// One pass splits the body into its members; each is then decoded
	// once, into its field or, when Claims does not name it, into Azure.
	var all map[string]json.RawMessage
	if err := json.Unmarshal(b, &all); err != nil {
		return err
	}
	if all == nil {
		return errors.New("token: claims are not a JSON object")
	}
	var w claimsJSON
	fields := map[string]any{
		"iss": &w.Issuer, "sub": &w.Subject, "aud": &w.Audience, "exp": &w.Expiry, "nbf": &w.NotBefore,
		"iat": &w.IssuedAt, "jti": &w.ID, "nonce": &w.Nonce, "eat_profile": &w.EATProfile,
		"ear.verifier-id": &w.VerifierID, "submods": &w.Submods, "x-ms-ver": &w.Version,
		"x-ms-policy-hash": &w.PolicyHash, "x-ms-runtime": &w.Runtime, "x-tb-workload": &w.Workload,
		"x-tb-model": &w.Model, "x-tb-simulated": &w.Simulated, "x-tb-manifest-digest": &w.ManifestDigest,
		"x-tb-evidence-digest": &w.EvidenceDigest,
	}
	var azure map[string]any
	for name, raw := range all {
		if f, ok := fields[name]; ok {
			if err := json.Unmarshal(raw, f); err != nil {
				return fmt.Errorf("claim %q: %w", name, err)
			}
			continue
		}
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		var v any
		if err := dec.Decode(&v); err != nil {
			return fmt.Errorf("claim %q: %w", name, err)
		}
		if azure == nil {
			azure = map[string]any{}
		}
		azure[name] = v
	}
	out := Claims{
		Claims: jwt.Claims{Issuer: w.Issuer, Subject: w.Subject, Audience: w.Audience, Expiry: w.Expiry,
			NotBefore: w.NotBefore, IssuedAt: w.IssuedAt, ID: w.ID},
		Nonce: w.Nonce, EATProfile: w.EATProfile, VerifierID: w.VerifierID, Submods: w.Submods,
		Version: w.Version, PolicyHash: w.PolicyHash, Workload: w.Workload, Model: w.Model,
		Simulated: w.Simulated, ManifestDigest: w.ManifestDigest, EvidenceDigest: w.EvidenceDigest,
		Azure: azure,
	}
	if w.Runtime != nil {
		out.Runtime = *w.Runtime
	}
	var withEvidence []*attest.Claims
	for _, s := range out.Submods {
		if s.AnnotatedEvidence != nil {
			withEvidence = append(withEvidence, s.AnnotatedEvidence)
		}
	}
	if len(withEvidence) == 1 {
		out.TEE = *withEvidence[0]
	}
	*c = out
	return nil
}

// AttestationResult is what the coordinator knows once evidence has been
// verified, bound and appraised. NewClaims assembles a token body from it.
type AttestationResult struct {
	// Claims are the verified, normalised claims. Required.
	Claims *attest.Claims
	// Status is the appraisal's EAR status (policy.Verdict.Status). It is
	// lowered to the worst tier of the trustworthiness vector.
	Status string
	// TrustVector, when set, replaces the one DeriveTrustVector makes.
	TrustVector *TrustVector
	// PolicyID names the appraisal policy (ear.appraisal-policy-id), e.g.
	// "manifest:<digest>".
	PolicyID string
	// PolicyHash is x-ms-policy-hash of the Azure-language policy that
	// decided, if one did.
	PolicyHash string
	// Subject is the workload's SPIFFE ID when known (sub); Audience the
	// relying parties the token is for (aud), optional.
	Subject  string
	Audience []string
	Nonce    string
	Workload string
	Model    string
	// ManifestDigest is the manifest in force; EvidenceDigest the digest of
	// the raw evidence.
	ManifestDigest string
	EvidenceDigest string
	// Runtime is the runtime JSON exactly as the workload sent and bound
	// it; it becomes x-ms-runtime.
	Runtime []byte
	// Issued are claims the appraisal policy issued (Azure issuance
	// rules); they join the Azure claims at the top level and may replace
	// none of them.
	Issued map[string]any
	// Build is the verifier build (ear.verifier-id.build); DefaultBuild if
	// empty.
	Build string
}

// ErrClaims is wrapped by NewClaims' refusals.
var ErrClaims = errors.New("token: cannot assemble claims")

// NewClaims assembles a token body from an attestation result: one EAR
// submod named after the TEE with the status, the trustworthiness vector,
// the appraisal policy id and the normalised claims as annotated evidence;
// the TEE's claims under Azure Attestation's names; x-ms-ver, x-ms-policy-
// hash and x-ms-runtime; and the x-tb-* claims. Issue adds iss, iat, nbf,
// exp, jti and eat_profile.
func NewClaims(r AttestationResult) (Claims, error) {
	if r.Claims == nil || r.Claims.TEE == "" {
		return Claims{}, fmt.Errorf("%w: no verified claims", ErrClaims)
	}
	if _, ok := statusRank[r.Status]; !ok {
		return Claims{}, fmt.Errorf("%w: EAR status %q is none of affirming, warning, contraindicated, none", ErrClaims, r.Status)
	}
	tee := *r.Claims
	vec := r.TrustVector
	if vec == nil {
		v := DeriveTrustVector(&tee, r.Status)
		vec = &v
	}
	build := r.Build
	if build == "" {
		build = DefaultBuild
	}
	c := Claims{
		Claims:     jwt.Claims{Subject: r.Subject, Audience: jwt.Audience(r.Audience)},
		Nonce:      r.Nonce,
		VerifierID: map[string]string{"developer": VerifierDeveloper, "build": build},
		Submods: map[string]Submod{string(tee.TEE): {
			Status: worstStatus(r.Status, vec), TrustVector: vec, PolicyID: r.PolicyID, AnnotatedEvidence: &tee,
		}},
		Version:        AzureVersion,
		PolicyHash:     r.PolicyHash,
		Azure:          AzureClaims(&tee),
		Workload:       r.Workload,
		Model:          r.Model,
		Simulated:      tee.Simulated,
		ManifestDigest: r.ManifestDigest,
		EvidenceDigest: r.EvidenceDigest,
		TEE:            tee,
	}
	if len(r.Runtime) > 0 {
		rt, err := ParseRuntime(r.Runtime)
		if err != nil {
			return Claims{}, fmt.Errorf("%w: %w", ErrClaims, err)
		}
		c.Runtime = rt
	}
	for name, v := range r.Issued {
		if c.Azure == nil {
			c.Azure = map[string]any{}
		}
		if _, ok := c.Azure[name]; ok || slices.Contains(namedClaims, name) {
			return Claims{}, fmt.Errorf("%w: issued claim %q would replace one the evidence or trustbound sets", ErrClaims, name)
		}
		if err := CheckIssuedName(name); err != nil {
			return Claims{}, fmt.Errorf("%w: %w", ErrClaims, err)
		}
		if err := checkKeysUTF8(v, name); err != nil {
			return Claims{}, fmt.Errorf("%w: issued %w", ErrClaims, err)
		}
		c.Azure[name] = v
	}
	return c, nil
}

// checkKeysUTF8 refuses a claim value (as policies issue them: JSON
// objects, arrays and scalars) holding an object member name that is not
// valid UTF-8; path names the value in errors.
func checkKeysUTF8(v any, path string) error {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			if !utf8.ValidString(k) {
				return fmt.Errorf("claim %q: member %q is not valid UTF-8", path, k)
			}
			if err := checkKeysUTF8(e, path+"."+k); err != nil {
				return err
			}
		}
	case map[string]string:
		for k := range v {
			if !utf8.ValidString(k) {
				return fmt.Errorf("claim %q: member %q is not valid UTF-8", path, k)
			}
		}
	case []any:
		for i, e := range v {
			if err := checkKeysUTF8(e, fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
	}
	return nil
}

// CheckIssuedName refuses the name of a claim a policy issues when a
// relying party could mistake it for one of the evidence's or
// trustbound's: a name with "." (policies and release policies read the
// nested member b of a as "a.b", so an issued "a.b" would shadow it) or
// with the reserved prefixes "x-ms-" and "x-tb-". Azure's documented
// policies issue plain names only, so no reserved name is allowed. A name
// must be valid UTF-8: JSON encoders replace invalid bytes, so two issued
// names could become one name twice in the token.
func CheckIssuedName(name string) error {
	switch {
	case name == "":
		return errors.New("an issued claim has an empty name")
	case !utf8.ValidString(name):
		return fmt.Errorf("issued claim %q: the name is not valid UTF-8", name)
	case strings.Contains(name, "."):
		return fmt.Errorf("issued claim %q: issued names may not contain \".\"", name)
	case strings.HasPrefix(name, "x-ms-"), strings.HasPrefix(name, "x-tb-"):
		return fmt.Errorf("issued claim %q: the prefixes x-ms- and x-tb- are reserved for the evidence's and trustbound's claims", name)
	}
	return nil
}

// complete fills what a caller that built Claims by hand left out and the
// TEE claims determine: the Azure claims, each submod's annotated evidence
// and trustworthiness vector (lowering its status to the vector's worst
// tier), x-ms-ver and the verifier id. It refuses an unknown EAR status.
func (c *Claims) complete() error {
	for name, s := range c.Submods {
		if _, ok := statusRank[s.Status]; !ok {
			return fmt.Errorf("%w: submod %q has EAR status %q, none of affirming, warning, contraindicated, none", ErrClaims, name, s.Status)
		}
	}
	if c.Version == "" {
		c.Version = AzureVersion
	}
	if c.VerifierID == nil {
		c.VerifierID = map[string]string{"developer": VerifierDeveloper, "build": DefaultBuild}
	}
	if c.TEE.TEE == "" {
		return nil
	}
	if c.Azure == nil {
		c.Azure = AzureClaims(&c.TEE)
	}
	if !c.Simulated {
		c.Simulated = c.TEE.Simulated
	}
	subs := make(map[string]Submod, len(c.Submods))
	for name, s := range c.Submods {
		if s.AnnotatedEvidence == nil {
			tee := c.TEE
			s.AnnotatedEvidence = &tee
		}
		if s.TrustVector == nil {
			v := DeriveTrustVector(s.AnnotatedEvidence, s.Status)
			s.TrustVector = &v
		}
		s.Status = worstStatus(s.Status, s.TrustVector)
		subs[name] = s
	}
	c.Submods = subs
	return nil
}
