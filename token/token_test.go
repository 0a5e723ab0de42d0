package token

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/trustbound/trustbound/attest"
)

var t0 = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

func newIssuer(t *testing.T) *Issuer {
	t.Helper()
	k, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	i, err := NewIssuer(k, "https://coordinator.test", 5*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	return i
}

func TestIssueVerifyRoundTrip(t *testing.T) {
	i := newIssuer(t)
	raw, err := i.Issue(Claims{Nonce: "n1", Workload: "web", Simulated: true, TEE: attest.Claims{TEE: attest.SEVSNP, Measurement: attest.Hex{1, 2}}}, t0)
	if err != nil {
		t.Fatal(err)
	}
	c, err := i.Verify(raw, t0.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if c.Issuer != "https://coordinator.test" || c.Nonce != "n1" || c.Workload != "web" || !c.Simulated || c.EATProfile != EATProfile || c.ID == "" {
		t.Errorf("claims %+v", c)
	}
	if c.TEE.TEE != attest.SEVSNP || c.TEE.Measurement.String() != "0102" {
		t.Errorf("TEE claims %+v", c.TEE)
	}
	if got := c.Expiry.Time().Sub(c.IssuedAt.Time()); got != 5*time.Minute {
		t.Errorf("lifetime %v", got)
	}
	// The simulated label is visible to any JWT reader.
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		t.Fatal("not a compact JWS")
	}
}

func TestVerifyRefuses(t *testing.T) {
	i := newIssuer(t)
	raw, err := i.Issue(Claims{Workload: "web"}, t0)
	if err != nil {
		t.Fatal(err)
	}
	other := newIssuer(t)
	otherRaw, _ := other.Issue(Claims{Workload: "web"}, t0)

	// A token signed by a key that is not the coordinator's.
	k2, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	sig, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: k2}, nil)
	forged, _ := jwt.Signed(sig).Claims(Claims{Claims: jwt.Claims{Issuer: "https://coordinator.test", Expiry: jwt.NewNumericDate(t0.Add(time.Hour))}, Workload: "web"}).Serialize()

	tampered := []byte(raw)
	tampered[len(tampered)-5] ^= 1

	for name, tc := range map[string]struct {
		raw string
		at  time.Time
	}{
		"expired":       {raw, t0.Add(5*time.Minute + time.Second)},
		"not yet valid": {raw, t0.Add(-time.Minute)},
		"other issuer":  {otherRaw, t0},
		"forged":        {forged, t0},
		"tampered":      {string(tampered), t0},
		"garbage":       {"a.b.c", t0},
	} {
		if _, err := i.Verify(tc.raw, tc.at); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: want ErrInvalid, got %v", name, err)
		}
	}
}

func TestIssuerNeedsP256(t *testing.T) {
	k, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if _, err := NewIssuer(k, "x", time.Minute); err == nil {
		t.Error("a P-384 key was accepted for ES256")
	}
}
