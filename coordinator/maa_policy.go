package coordinator

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/go-jose/go-jose/v4"

	"github.com/trustbound/trustbound/api"
	"github.com/trustbound/trustbound/store"
)

// GET and PUT /policies/{type}: the Azure attestation policy of a type, in
// Azure's shapes, owner-signed (TB-Owner) instead of Azure AD. The policy
// is the owner's policy azurePolicyName(type) ("azure-sevsnpvm", ...) of
// the policy store (policies.go), versioned like every policy, so that
// PUT /v1/policies/azure-sevsnpvm and PUT /policies/SevSnpVm set the same
// policy and a manifest workload may name it.
//
// Azure's shapes (its REST API models as the SDKs generate them, and its
// troubleshooting guide):
//   - PUT takes the policy as text, or as a JWS whose payload is
//     {"AttestationPolicy": BASE64URL(policy text)}, unsecured (alg "none")
//     or signed; it answers {"token": JWT} whose body is a PolicyResult
//     {"x-ms-policy-result": "Updated", "x-ms-policy-token-hash":
//     BASE64URL(SHA-256(the policy JWS)), "x-ms-policy-signer": JWK};
//   - GET answers {"token": JWT} whose body carries "x-ms-policy": the
//     policy JWS, whose payload is {"AttestationPolicy": BASE64URL(text)}.
//
// trustbound refuses anything outside the supported subset of the
// language at upload with the parser's line and column (PolicyParsingError)
// and a JWS that is not exactly that shape (InvalidOperation). A signed
// JWS must carry its key (x5c or jwk) and verify with it; what authorizes
// the change is the owner's TB-Owner signature, the JWS signature only
// names the signer, in the PUT answer. Only the text is kept: GET answers
// an unsecured policy JWS of it, and tokens carry no x-ms-policy-signer.

// maaOwner checks the TB-Owner signature of a policy request against the
// owners of the manifest in force.
func (c *Coordinator) maaOwner(r *http.Request, body []byte) (string, *maaFailure) {
	ms := c.manifestInForce()
	if ms == nil {
		return "", maaFail(http.StatusUnauthorized, maaUnauthorized, errors.New("no manifest is set, so no owner can authorize policy requests"))
	}
	owner, err := c.ownerAuthority(r, body, ms.parsed.Owners)
	if err != nil {
		return "", maaFail(http.StatusUnauthorized, maaUnauthorized, err)
	}
	return owner, nil
}

func (c *Coordinator) handleMAAGetPolicy(w http.ResponseWriter, r *http.Request) {
	kind, body, f := c.maaPrelude(w, r)
	if f == nil && len(body) > 0 {
		f = maaFail(http.StatusBadRequest, maaInvalidParameter, errors.New("GET takes no body"))
	}
	if f == nil {
		_, f = c.maaOwner(r, nil)
	}
	if f != nil {
		c.maaRefuse(w, r, f)
		return
	}
	text := maaDefaultPolicy
	switch rec, err := c.policyText(r.Context(), azurePolicyName(kind)); {
	case err == nil:
		text = rec.Text
	case !errors.Is(err, ErrPolicyNotSet):
		c.maaRefuse(w, r, maaFail(http.StatusInternalServerError, maaInternal, err))
		return
	}
	tok, err := c.maaPolicyToken(map[string]any{"x-ms-policy": maaPolicyJWS(text)})
	if err != nil {
		c.maaRefuse(w, r, maaFail(http.StatusInternalServerError, maaInternal, err))
		return
	}
	writeJSON(w, map[string]string{"token": tok})
}

func (c *Coordinator) handleMAASetPolicy(w http.ResponseWriter, r *http.Request) {
	kind, body, f := c.maaPrelude(w, r)
	if f != nil {
		c.maaRefuse(w, r, f)
		return
	}
	// The owners decide before anything of the policy is parsed.
	owner, f := c.maaOwner(r, body)
	if f != nil {
		c.maaRefuse(w, r, f)
		return
	}
	up, f := parseMAAPolicyUpload(body)
	if f != nil {
		c.maaRefuse(w, r, f)
		return
	}
	rec, err := c.setPolicy(r.Context(), azurePolicyName(kind), api.PolicyAttestation, up.text, owner)
	if err != nil {
		var pe *PolicyError
		switch {
		case errors.As(err, &pe):
			f = maaFail(http.StatusBadRequest, maaPolicyParsing, pe.Err)
		case errors.Is(err, store.ErrConflict):
			f = maaFail(http.StatusConflict, maaInvalidOperation, fmt.Errorf("the policy changed meanwhile: %w", err))
		default:
			f = maaFail(http.StatusInternalServerError, maaInternal, err)
		}
		c.maaRefuse(w, r, f)
		return
	}
	sum := sha256.Sum256([]byte(up.jws))
	result := map[string]any{
		"x-ms-policy-result":     "Updated",
		"x-ms-policy-token-hash": base64.RawURLEncoding.EncodeToString(sum[:]),
	}
	if len(up.signer) > 0 {
		result["x-ms-policy-signer"] = up.signer
	}
	tok, err := c.maaPolicyToken(result)
	if err != nil {
		c.maaRefuse(w, r, maaFail(http.StatusInternalServerError, maaInternal, err))
		return
	}
	c.log.Info("attestation policy set", "owner", owner, "policy", rec.Name, "version", rec.Version)
	writeJSON(w, map[string]string{"token": tok})
}

// maaPolicyUpload is a parsed PUT /policies/{type} body.
type maaPolicyUpload struct {
	text, jws string
	signer    json.RawMessage
}

// maaPolicyAlgorithms are the JWS algorithms a signed policy may use.
var maaPolicyAlgorithms = []jose.SignatureAlgorithm{jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512, jose.ES256, jose.ES384, jose.ES512}

// parseMAAPolicyUpload reads a policy upload: a compact JWS when the body
// is one (three base64url segments, the first a JSON header), policy text
// otherwise. The policy store parses the text.
func parseMAAPolicyUpload(body []byte) (*maaPolicyUpload, *maaFailure) {
	invalid := func(err error) (*maaPolicyUpload, *maaFailure) {
		return nil, maaFail(http.StatusBadRequest, maaInvalidOperation, err)
	}
	if !utf8.Valid(body) {
		return invalid(errors.New("the policy is not UTF-8"))
	}
	up := &maaPolicyUpload{text: string(body)}
	if compact := strings.TrimSpace(string(body)); maaLooksLikeJWS(compact) {
		payload, signer, err := maaOpenPolicyJWS(compact)
		if err != nil {
			return invalid(fmt.Errorf("policy token: %w", err))
		}
		var doc struct {
			AttestationPolicy *string `json:"AttestationPolicy"`
		}
		if err := api.DecodeStrict(payload, &doc); err != nil {
			return invalid(fmt.Errorf(`policy token: the payload must be {"AttestationPolicy": BASE64URL(policy text)}: %w`, err))
		}
		if doc.AttestationPolicy == nil {
			return invalid(errors.New(`policy token: the payload has no "AttestationPolicy"`))
		}
		text, err := decodeB64("AttestationPolicy", *doc.AttestationPolicy)
		if err != nil {
			return invalid(fmt.Errorf("policy token: %w", err))
		}
		if !utf8.Valid(text) {
			return invalid(errors.New("policy token: the policy is not UTF-8"))
		}
		up.text, up.jws, up.signer = string(text), compact, signer
	} else {
		up.jws = maaPolicyJWS(up.text)
	}
	return up, nil
}

// maaLooksLikeJWS reports whether s has the form of a compact JWS: three
// dot-separated base64url segments, the first a JSON object. Policy text
// never has it (it starts with "version").
func maaLooksLikeJWS(s string) bool {
	parts := strings.Split(s, ".")
	if len(parts) != 3 {
		return false
	}
	h, err := base64.RawURLEncoding.DecodeString(parts[0])
	return err == nil && len(h) > 0 && h[0] == '{' && json.Valid(h)
}

// maaOpenPolicyJWS returns the payload of a policy JWS: unsecured (header
// exactly alg "none", optionally typ, and an empty signature) or signed
// with one of maaPolicyAlgorithms and verified with the key its header
// carries (x5c leaf or jwk), which it also returns as a public JWK.
func maaOpenPolicyJWS(s string) ([]byte, json.RawMessage, error) {
	parts := strings.Split(s, ".")
	hdr, _ := base64.RawURLEncoding.DecodeString(parts[0])
	var alg struct {
		Alg string   `json:"alg"`
		X5C []string `json:"x5c"`
	}
	if err := json.Unmarshal(hdr, &alg); err != nil {
		return nil, nil, err
	}
	if alg.Alg == "none" {
		var h struct {
			Alg string `json:"alg"`
			Typ string `json:"typ,omitempty"`
		}
		if err := api.DecodeStrict(hdr, &h); err != nil {
			return nil, nil, fmt.Errorf("an unsecured header holds alg and typ only: %w", err)
		}
		if parts[2] != "" {
			return nil, nil, errors.New(`alg "none" with a signature`)
		}
		payload, err := base64.RawURLEncoding.DecodeString(parts[1])
		return payload, nil, err
	}
	jws, err := jose.ParseSigned(s, maaPolicyAlgorithms)
	if err != nil {
		return nil, nil, err
	}
	if len(jws.Signatures) != 1 {
		return nil, nil, fmt.Errorf("want one signature, got %d", len(jws.Signatures))
	}
	h := jws.Signatures[0].Protected
	var key *jose.JSONWebKey
	switch {
	case len(alg.X5C) > 0:
		// go-jose hands out x5c only with a chain verified to given roots;
		// here the certificates only name the signer (trust comes from the
		// owner's TB-Owner signature), so they are read as they are.
		var certs []*x509.Certificate
		for i, c := range alg.X5C {
			der, err := base64.StdEncoding.DecodeString(c)
			if err != nil {
				return nil, nil, fmt.Errorf("x5c[%d]: %w", i, err)
			}
			cert, err := x509.ParseCertificate(der)
			if err != nil {
				return nil, nil, fmt.Errorf("x5c[%d]: %w", i, err)
			}
			certs = append(certs, cert)
		}
		key = &jose.JSONWebKey{Key: certs[0].PublicKey, Certificates: certs}
	case h.JSONWebKey != nil && h.JSONWebKey.IsPublic():
		key = h.JSONWebKey
	default:
		return nil, nil, errors.New("a signed policy carries its key in the header (x5c or jwk)")
	}
	payload, err := jws.Verify(key.Key)
	if err != nil {
		return nil, nil, err
	}
	signer, err := json.Marshal(key)
	if err != nil {
		return nil, nil, err
	}
	return payload, signer, nil
}

// maaPolicyJWS is the unsecured policy token of a policy text, as Azure
// wraps a policy uploaded as text.
func maaPolicyJWS(text string) string {
	payload, _ := json.Marshal(map[string]string{"AttestationPolicy": base64.RawURLEncoding.EncodeToString([]byte(text))})
	return strings.Join([]string{base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none"}`)), base64.RawURLEncoding.EncodeToString(payload), ""}, ".")
}

// maaPolicyToken signs a policy management result, as Azure answers
// policy requests: typ "policy+jwt" and aud "attestation-policy", none of
// the attestation claims, so that no relying party (nor /v1/release) can
// take it for an attestation token.
func (c *Coordinator) maaPolicyToken(result map[string]any) (string, error) {
	iss, err := c.maaIssuer()
	if err != nil {
		return "", err
	}
	return iss.IssuePolicy(result, c.now())
}
