package azure

import (
	"bytes"
	"crypto/rsa"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"
	"slices"

	"github.com/trustbound/trustbound/attest"
)

// The key IDs of the runtime claims.
const (
	// KeyIDAK names the vTPM attestation key, which signs quotes.
	KeyIDAK = "HCLAkPub"
	// KeyIDEK names the vTPM endorsement key.
	KeyIDEK = "HCLEkPub"
)

// RuntimeClaims are the HCL report's var data: the JSON the paravisor
// writes and binds into the hardware report.
type RuntimeClaims struct {
	// Keys are the vTPM's public keys as RSA JWKs (HCLAkPub, HCLEkPub).
	Keys []JWK
	// VMConfiguration holds the vm-configuration members as they are
	// (secure-boot, tpm-enabled, console-enabled, vmUniqueId, …). Their set
	// changes with the paravisor version, so none is required.
	VMConfiguration map[string]json.RawMessage
	// UserData is the hex user-data: the 64 bytes of vTPM NV index
	// 0x01400002 when the report was made. Empty when absent.
	UserData string
}

// JWK is an RSA public key of the runtime claims.
type JWK struct {
	Kid    string
	KeyOps []string
	Kty    string
	// N and E are the modulus and exponent, big-endian.
	N, E []byte
}

// ParseRuntimeClaims decodes the var data: one JSON object with "keys" and
// "vm-configuration" and optionally "user-data", no other or duplicate
// members, keys with exactly kid, key_ops, kty, e and n. Errors wrap
// attest.ErrMalformed.
func ParseRuntimeClaims(b []byte) (*RuntimeClaims, error) {
	if err := checkJSON(b); err != nil {
		return nil, fmt.Errorf("%w: HCL runtime claims are not strict JSON: %w", attest.ErrMalformed, err)
	}
	m, err := object(b, "HCL runtime claims", []string{"keys", "vm-configuration"}, []string{"user-data"})
	if err != nil {
		return nil, err
	}
	rc := &RuntimeClaims{}
	keys, err := jsonArray(m["keys"], "runtime claims keys")
	if err != nil {
		return nil, err
	}
	for i, k := range keys {
		jwk, err := parseJWK(k, fmt.Sprintf("runtime claims keys[%d]", i))
		if err != nil {
			return nil, err
		}
		rc.Keys = append(rc.Keys, jwk)
	}
	if err := json.Unmarshal(m["vm-configuration"], &rc.VMConfiguration); err != nil || rc.VMConfiguration == nil {
		return nil, fmt.Errorf("%w: runtime claims vm-configuration is not a JSON object", attest.ErrMalformed)
	}
	if raw, ok := m["user-data"]; ok {
		if rc.UserData, err = jsonString(raw, "runtime claims user-data"); err != nil {
			return nil, err
		}
	}
	return rc, nil
}

func parseJWK(raw json.RawMessage, what string) (JWK, error) {
	m, err := object(raw, what, []string{"kid", "key_ops", "kty", "e", "n"}, nil)
	if err != nil {
		return JWK{}, err
	}
	var k JWK
	if k.Kid, err = jsonString(m["kid"], what+".kid"); err != nil {
		return JWK{}, err
	}
	if k.Kty, err = jsonString(m["kty"], what+".kty"); err != nil {
		return JWK{}, err
	}
	ops, err := jsonArray(m["key_ops"], what+".key_ops")
	if err != nil {
		return JWK{}, err
	}
	for i, op := range ops {
		s, err := jsonString(op, fmt.Sprintf("%s.key_ops[%d]", what, i))
		if err != nil {
			return JWK{}, err
		}
		k.KeyOps = append(k.KeyOps, s)
	}
	if k.N, err = base64URLRaw(m["n"], what+".n"); err != nil {
		return JWK{}, err
	}
	if k.E, err = base64URLRaw(m["e"], what+".e"); err != nil {
		return JWK{}, err
	}
	return k, nil
}

// base64URLRaw decodes a JSON string of canonical unpadded URL-safe base64,
// the JWK encoding.
func base64URLRaw(raw json.RawMessage, what string) ([]byte, error) {
	s, err := jsonString(raw, what)
	if err != nil {
		return nil, err
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil || base64.RawURLEncoding.EncodeToString(b) != s {
		return nil, fmt.Errorf("%w: %s is not unpadded URL-safe base64", attest.ErrMalformed, what)
	}
	return b, nil
}

// AKPub returns the attestation key: the one RSA key with kid HCLAkPub,
// whose key_ops allow "sign", of at least 2048 bits. Errors wrap
// attest.ErrMalformed.
func (rc *RuntimeClaims) AKPub() (*rsa.PublicKey, error) {
	var ak *JWK
	for i := range rc.Keys {
		if rc.Keys[i].Kid != KeyIDAK {
			continue
		}
		if ak != nil {
			return nil, fmt.Errorf("%w: the runtime claims name two %s keys", attest.ErrMalformed, KeyIDAK)
		}
		ak = &rc.Keys[i]
	}
	if ak == nil {
		return nil, fmt.Errorf("%w: the runtime claims have no %s key", attest.ErrMalformed, KeyIDAK)
	}
	if ak.Kty != "RSA" || !slices.Contains(ak.KeyOps, "sign") {
		return nil, fmt.Errorf("%w: the %s key is kty %q with key_ops %q, want an RSA signing key", attest.ErrMalformed, KeyIDAK, ak.Kty, ak.KeyOps)
	}
	// Minimal big-endian integers: no leading zero byte.
	if len(ak.N) == 0 || ak.N[0] == 0 || len(ak.E) == 0 || ak.E[0] == 0 || len(ak.E) > 4 {
		return nil, fmt.Errorf("%w: the %s key's modulus or exponent is not a minimal positive integer of the right size", attest.ErrMalformed, KeyIDAK)
	}
	e64 := new(big.Int).SetBytes(ak.E).Int64()
	n := new(big.Int).SetBytes(ak.N)
	if n.BitLen() < 2048 || n.BitLen() > 8192 || e64 < 3 || e64 > 1<<31-1 || e64%2 == 0 || n.Bit(0) == 0 {
		return nil, fmt.Errorf("%w: the %s key (%d bits, exponent %d) is not an RSA key of 2048 to 8192 bits with an odd exponent", attest.ErrMalformed, KeyIDAK, n.BitLen(), e64)
	}
	return &rsa.PublicKey{N: n, E: int(e64)}, nil
}

// userDataMatches compares user-data with want padded with zeros to 64 bytes,
// ignoring hex case.
func userDataMatches(userData string, want []byte) bool {
	var padded [64]byte
	copy(padded[:], want)
	got, err := hex.DecodeString(userData)
	if err != nil || len(got) != len(padded) {
		return false
	}
	return bytes.Equal(got, padded[:])
}
