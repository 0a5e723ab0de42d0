package coordinator

import (
	"bytes"
	"crypto"
	"crypto/rsa"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/go-jose/go-jose/v4"

	"github.com/trustbound/trustbound/api"
	"github.com/trustbound/trustbound/keybroker"
	"github.com/trustbound/trustbound/manifest"
	"github.com/trustbound/trustbound/store"
	"github.com/trustbound/trustbound/token"
)

// The Key Vault style release surface: POST /keys/{name}/{version}/release
// (and /keys/{name}/release for the current version), as Azure Key
// Vault's secure key release answers it and the Azure SDK's azkeys client
// calls it.
//
// What differs from Key Vault:
//   - Authentication. Key Vault takes an Entra ID access token; here the
//     bearer token is Config.KeyReleaseBearer, an access token the
//     operator configures (serve --key-release-bearer-file), compared in
//     constant time. The challenge (401 with WWW-Authenticate) is Key
//     Vault's, so azkeys authenticates as it does against a vault.
//   - Wrapping is Key Vault's: for CKM_RSA_AES_KEY_WRAP,
//     RSA_AES_KEY_WRAP_256 (the default) and RSA_AES_KEY_WRAP_384 the
//     ciphertext in key_hsm is RSA-OAEP (SHA-1 / SHA-256 / SHA-384) of a
//     fresh AES-256 key followed by the key wrapped with AES key wrap with
//     padding (RFC 5649, Tink's KWP): keybroker.WrapRSAAES. Key pairs go
//     out as PKCS #8 DER, symmetric keys as their bytes. trustbound also
//     serves enc "RSA-OAEP-256": the key material as a JWE (RSA-OAEP-256,
//     A256GCM, flattened JSON; go-jose) to the same key.
//   - Versions are trustbound's version numbers.
//   - The request's nonce. Key Vault echoes it in the signed result
//     (request.nonce) and binds it to nothing. Here, when the target token
//     carries a nonce (its "nonce" claim, and the "nonce" member of its
//     x-ms-runtime, which trustbound's /v1/attest and /kbs/v0/attest
//     tokens both set to the attestation's challenge), a request nonce
//     must equal each of them (constant time), else 403 Forbidden: a
//     caller that sends a nonce gets a release only for the attestation it
//     made with that nonce. A request without a nonce, or a token without
//     one, is not compared (Key Vault's behaviour): the nonce is echoed.
//   - Keys are manifest secrets: symmetric keys and RSA key pairs
//     (rsa-2048, rsa-3072; released as the stored PKCS #8 PEM), granted to
//     the token's workload (x-tb-workload) and, when the secret names a
//     releasePolicy, permitted by that stored Key Vault release policy
//     over the token's claims.

// akvEncJWE is trustbound's additional enc value: a JWE to the TEE key.
const akvEncJWE = "RSA-OAEP-256"

// akvEncKeyWrap are Key Vault's enc values and the OAEP hash of each.
var akvEncKeyWrap = map[string]crypto.Hash{
	"CKM_RSA_AES_KEY_WRAP": crypto.SHA1,
	"RSA_AES_KEY_WRAP_256": crypto.SHA256,
	"RSA_AES_KEY_WRAP_384": crypto.SHA384,
}

// akvReleaseRequest is Key Vault's KeyReleaseParameters.
type akvReleaseRequest struct {
	Target string `json:"target"`
	Nonce  string `json:"nonce,omitempty"`
	Enc    string `json:"enc,omitempty"`
}

// akvFail writes a Key Vault error. Messages are error texts, which never
// carry secret values.
func (c *Coordinator) akvFail(w http.ResponseWriter, r *http.Request, status int, code string, err error) {
	c.log.Warn("key release refused", "path", r.URL.Path, "status", status, "code", code, "err", err)
	writeAzureError(w, "application/json; charset=utf-8", status, code, err)
}

// akvChallenge is Key Vault's authentication challenge, in the form
// azkeys' challenge policy parses (authorization, resource), naming the
// coordinator in place of Entra ID and the vault.
func (c *Coordinator) akvChallenge() string {
	base := strings.TrimSuffix(c.cfg.Issuer, "/")
	return fmt.Sprintf(`Bearer authorization="%s/", resource="%s"`, base, base)
}

// akvAuthorized checks the bearer token, writing the challenge if it is
// missing or wrong.
func (c *Coordinator) akvAuthorized(w http.ResponseWriter, r *http.Request) bool {
	bearer, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	var err error
	switch {
	case !ok || bearer == "":
		err = errors.New("a bearer access token is required")
	case len(c.cfg.KeyReleaseBearer) == 0:
		err = errors.New("the coordinator has no key release access token configured (serve --key-release-bearer-file)")
	case subtle.ConstantTimeCompare([]byte(bearer), c.cfg.KeyReleaseBearer) != 1:
		err = errors.New("the bearer access token is not the coordinator's key release token")
	default:
		return true
	}
	w.Header().Set("WWW-Authenticate", c.akvChallenge())
	c.akvFail(w, r, http.StatusUnauthorized, "Unauthorized", err)
	return false
}

func (c *Coordinator) handleAKVRelease(w http.ResponseWriter, r *http.Request) {
	if !c.akvAuthorized(w, r) {
		return
	}
	body, err := readLimited(w, r, api.MaxBody)
	if err != nil {
		c.akvFail(w, r, http.StatusBadRequest, "BadParameter", fmt.Errorf("unreadable request (at most %d bytes): %w", api.MaxBody, err))
		return
	}
	var req akvReleaseRequest
	if err := api.DecodeStrict(body, &req); err != nil {
		c.akvFail(w, r, http.StatusBadRequest, "BadParameter", fmt.Errorf("body must be {\"target\", \"nonce\"?, \"enc\"?}: %w", err))
		return
	}
	if req.Enc == "" {
		req.Enc = "RSA_AES_KEY_WRAP_256" // Key Vault's default
	}
	if _, keyWrap := akvEncKeyWrap[req.Enc]; !keyWrap && req.Enc != akvEncJWE {
		c.akvFail(w, r, http.StatusBadRequest, "BadParameter", fmt.Errorf("unknown enc %q; this coordinator serves CKM_RSA_AES_KEY_WRAP, RSA_AES_KEY_WRAP_256, RSA_AES_KEY_WRAP_384 and %s", req.Enc, akvEncJWE))
		return
	}
	version := 0
	if vs := r.PathValue("version"); vs != "" {
		if version, err = strconv.Atoi(vs); err != nil || version < 1 {
			c.akvFail(w, r, http.StatusNotFound, "KeyNotFound", fmt.Errorf("key version %q is not a version number", vs))
			return
		}
	}
	now := c.now()
	tc, err := c.issuer(token.RS256).Verify(req.Target, now)
	if err != nil {
		c.akvFail(w, r, http.StatusForbidden, "Forbidden", fmt.Errorf("target attestation token refused: %w", err))
		return
	}
	if err := akvNonceBinds(req.Nonce, tc); err != nil {
		c.akvFail(w, r, http.StatusForbidden, "Forbidden", err)
		return
	}
	ms := c.manifestInForce()
	if ms == nil || ms.Digest != tc.ManifestDigest {
		c.akvFail(w, r, http.StatusForbidden, "Forbidden", errors.New("the target token was issued under another manifest than the one in force; attest again"))
		return
	}
	name := r.PathValue("name")
	i := slices.IndexFunc(ms.parsed.Secrets, func(s manifest.Secret) bool { return s.Name == name })
	if i < 0 {
		c.akvFail(w, r, http.StatusNotFound, "KeyNotFound", fmt.Errorf("key %q is not in the manifest", name))
		return
	}
	s := ms.parsed.Secrets[i]
	kty, ok := akvKeyType(s)
	if !ok {
		c.akvFail(w, r, http.StatusBadRequest, "BadParameter", fmt.Errorf("secret %q is not a key this surface releases (symmetric, or keypair rsa-2048/rsa-3072)", name))
		return
	}
	if tc.Workload == "" || !slices.Contains(s.GrantedTo, tc.Workload) {
		c.akvFail(w, r, http.StatusForbidden, "Forbidden", fmt.Errorf("key %q is not granted to workload %q", name, tc.Workload))
		return
	}
	if s.ReleasePolicy != "" {
		if status, err := c.akvReleasePolicy(r, s.ReleasePolicy, req.Target, tc.Issuer); err != nil {
			c.akvFail(w, r, status, "Forbidden", err)
			return
		}
	}
	to, err := akvWrappingKey(tc)
	if err != nil {
		c.akvFail(w, r, http.StatusBadRequest, "BadParameter", err)
		return
	}
	v, jwe, err := c.broker.Export(r.Context(), keybroker.ExportRequest{
		Record:     keybroker.Release{Workload: tc.Workload, EvidenceDigest: tc.EvidenceDigest, TokenID: tc.ID, Simulated: tc.Simulated},
		Secret:     s,
		Version:    version,
		Now:        now,
		Wrap:       akvWrap(req.Enc, to),
		Conditions: []store.Op{{Key: keyManifest, Expect: ms.Revision, Check: true}},
	})
	if err != nil {
		status, code := http.StatusInternalServerError, "InternalError"
		switch {
		case errors.Is(err, keybroker.ErrNoVersion):
			status, code = http.StatusNotFound, "KeyNotFound"
		case errors.Is(err, keybroker.ErrTypeChanged), errors.Is(err, store.ErrConflict):
			status, code = http.StatusConflict, "Conflict"
		}
		c.akvFail(w, r, status, code, err)
		return
	}
	jws, err := c.akvResult(r, &req, s, kty, to.KeyID, v, jwe)
	if err != nil {
		c.akvFail(w, r, http.StatusInternalServerError, "InternalError", err)
		return
	}
	c.record(tc.Workload, func(rec *workloadRecord) { rec.released++ })
	c.log.Info("key released", "workload", tc.Workload, "key", name, "version", v, "enc", req.Enc, "simulated", tc.Simulated)
	writeJSON(w, map[string]string{"value": jws})
}

// akvResult signs (RS256) Key Vault's release result:
// {"request": {api-version, enc, kid, nonce}, "response": {"key": {"key":
// {kid, kty, key_ops, key_hsm}, "attributes", "release_policy"}}}, where
// key_hsm is base64url of {"schema_version", "header": {kid of the
// wrapping key, alg "dir", enc}, "ciphertext": base64url(JWE)}.
func (c *Coordinator) akvResult(r *http.Request, req *akvReleaseRequest, s manifest.Secret, kty, wrapKid string, v int, jwe []byte) (string, error) {
	keyID := fmt.Sprintf("%s/keys/%s/%d", strings.TrimSuffix(c.cfg.Issuer, "/"), s.Name, v)
	hsm, err := json.Marshal(map[string]any{
		"schema_version": "1.0",
		"header":         map[string]string{"kid": wrapKid, "alg": "dir", "enc": req.Enc},
		"ciphertext":     base64.RawURLEncoding.EncodeToString(jwe),
	})
	if err != nil {
		return "", err
	}
	bundle := map[string]any{
		"key":        map[string]any{"kid": keyID, "kty": kty, "key_ops": []string{}, "key_hsm": base64.RawURLEncoding.EncodeToString(hsm)},
		"attributes": map[string]any{"enabled": true, "exportable": true},
	}
	if s.ReleasePolicy != "" {
		bundle["release_policy"] = map[string]any{"policyName": s.ReleasePolicy}
	}
	request := map[string]any{"api-version": r.URL.Query().Get("api-version"), "enc": req.Enc, "kid": keyID}
	if req.Nonce != "" {
		request["nonce"] = req.Nonce
	}
	return c.issuer(token.RS256).SignKeyRelease(map[string]any{"request": request, "response": map[string]any{"key": bundle}})
}

// akvKeyType is the Key Vault kty of a secret this surface releases.
func akvKeyType(s manifest.Secret) (string, bool) {
	switch {
	case s.Type == manifest.Symmetric:
		return "oct", true
	case s.Type == manifest.KeyPair && (s.Algorithm == "rsa-2048" || s.Algorithm == "rsa-3072"):
		return "RSA", true
	}
	return "", false
}

// akvReleasePolicy evaluates the stored release policy name over the
// claims of the verified token raw, issued by iss. It fails closed: a
// policy not set, or not of kind release, refuses.
func (c *Coordinator) akvReleasePolicy(r *http.Request, name, raw, iss string) (int, error) {
	p, err := c.preparedPolicy(r.Context(), name)
	if err != nil {
		return http.StatusInternalServerError, err
	}
	if p.Kind != api.PolicyRelease || p.release == nil {
		return http.StatusForbidden, fmt.Errorf("release policy %q is not set as a policy of kind %s; an owner must set it", name, api.PolicyRelease)
	}
	claims, err := verifiedPayload(raw)
	if err != nil {
		return http.StatusForbidden, err
	}
	if err := p.release.Evaluate(iss, claims); err != nil {
		return http.StatusForbidden, fmt.Errorf("release policy %q: %w", name, err)
	}
	return 0, nil
}

// verifiedPayload decodes the payload of a compact JWS that was verified
// already, numbers as json.Number.
func verifiedPayload(raw string) (map[string]any, error) {
	b, err := token.Payload(raw)
	if err != nil {
		return nil, fmt.Errorf("target token: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var claims map[string]any
	if err := dec.Decode(&claims); err != nil {
		return nil, fmt.Errorf("target token payload: %w", err)
	}
	return claims, nil
}

// akvWrappingKey is what Key Vault wraps to: the first RSA key in the
// token's top-level x-ms-runtime.keys whose key_ops contains "encrypt".
func akvWrappingKey(tc *token.Claims) (*jose.JSONWebKey, error) {
	keys, err := tc.Runtime.JWKs()
	if err != nil {
		return nil, err
	}
	for _, k := range keys {
		if k.Kty != "RSA" || !slices.Contains(k.KeyOps, "encrypt") {
			continue
		}
		pub, err := (api.JWK{Kid: k.Kid, Kty: k.Kty, N: k.N, E: k.E}).PublicKey()
		if err != nil {
			return nil, fmt.Errorf("x-ms-runtime.keys: %w", err)
		}
		return &jose.JSONWebKey{Key: pub, KeyID: k.Kid}, nil
	}
	return nil, errors.New(`the target token's x-ms-runtime.keys has no RSA key with key_ops "encrypt" to wrap the key to`)
}

// akvWrap returns the wrapping of enc to the TEE's RSA key.
func akvWrap(enc string, to *jose.JSONWebKey) func(int, []byte) ([]byte, error) {
	hash, keyWrap := akvEncKeyWrap[enc]
	if !keyWrap {
		return func(_ int, value []byte) ([]byte, error) { return keybroker.WrapJWE(to, value) }
	}
	return func(_ int, value []byte) ([]byte, error) {
		pub, ok := to.Key.(*rsa.PublicKey)
		if !ok {
			return nil, errors.New("the wrapping key is not RSA")
		}
		if blk, _ := pem.Decode(value); blk != nil {
			value = blk.Bytes // a key pair: PKCS #8 DER, as Key Vault releases it
		}
		return keybroker.WrapRSAAES(pub, hash, value)
	}
}

// akvNonceBinds checks the request's nonce against the nonces the verified
// target token carries: its "nonce" claim and its x-ms-runtime's "nonce"
// member. An empty request nonce, or a token with neither, compares
// nothing; a runtime document or nonce that cannot be read refuses (fail
// closed).
func akvNonceBinds(nonce string, tc *token.Claims) error {
	if nonce == "" {
		return nil
	}
	var carried []string
	if tc.Nonce != "" {
		carried = append(carried, tc.Nonce)
	}
	if len(tc.Runtime.Doc) > 0 {
		var doc map[string]json.RawMessage
		if err := json.Unmarshal(tc.Runtime.Doc, &doc); err != nil {
			return errors.New("the target token's x-ms-runtime is not a JSON object; its nonce cannot be compared")
		}
		if raw, ok := doc["nonce"]; ok {
			var n string
			if err := json.Unmarshal(raw, &n); err != nil {
				return errors.New("the target token's x-ms-runtime nonce is not a string; it cannot be compared with the request's")
			}
			carried = append(carried, n)
		}
	}
	for _, n := range carried {
		if subtle.ConstantTimeCompare([]byte(nonce), []byte(n)) != 1 {
			return errors.New("the request's nonce is not the nonce of the target attestation token (the attestation's challenge); send that nonce, or none")
		}
	}
	return nil
}
