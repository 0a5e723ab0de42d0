package keybroker

import (
	"context"
	"errors"
	"testing"

	"github.com/trustbound/trustbound/api"
	"github.com/trustbound/trustbound/manifest"
)

// A release given the TEE key already parsed (ToKey) seals to it when it
// is To, and refuses, recording nothing, when it is another key.
func TestReleaseToKeyMustBeTo(t *testing.T) {
	ctx := context.Background()
	b, _ := newBroker(t)
	priv, wire, err := NewTEEKey()
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := RecipientKey(wire)
	if err != nil {
		t.Fatal(err)
	}
	_, otherWire, err := NewTEEKey()
	if err != nil {
		t.Fatal(err)
	}
	other, err := RecipientKey(otherWire)
	if err != nil {
		t.Fatal(err)
	}
	req := ReleaseRequest{
		Record:  Release{Workload: "w", TokenID: "tok"},
		Secrets: []manifest.Secret{{Name: "k", Type: manifest.Symmetric}},
		To:      wire, ToKey: other, Now: t0,
	}
	if _, _, err := b.ReleaseAll(ctx, req); err == nil {
		t.Fatal("ReleaseAll sealed to a ToKey that is not To")
	}
	if _, err := b.Release(ctx, req); err == nil {
		t.Fatal("Release sealed to a ToKey that is not To")
	}
	if audit, err := b.Audit(ctx); err != nil || len(audit) != 0 {
		t.Fatalf("refused releases recorded: %+v %v", audit, err)
	}
	req.ToKey = parsed
	out, rc, err := b.ReleaseAll(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	vals, err := UnwrapAll(priv, rc, out)
	if err != nil || len(vals) != 1 || len(vals[0]) != 32 {
		t.Fatalf("opened %d values: %v", len(vals), err)
	}
}

// A TEE key naming another KDF, AEAD or KEM than trustbound's is refused
// with ErrSuite, whether the release parses To or is given ToKey.
func TestReleaseRefusesOtherSuites(t *testing.T) {
	ctx := context.Background()
	b, _ := newBroker(t)
	_, wire, err := NewTEEKey()
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := RecipientKey(wire)
	if err != nil {
		t.Fatal(err)
	}
	for name, change := range map[string]func(k *api.HPKEKey){
		"kdf":  func(k *api.HPKEKey) { k.KDF++ },
		"aead": func(k *api.HPKEKey) { k.AEAD++ },
		"kem":  func(k *api.HPKEKey) { k.KEM = 0xffff },
	} {
		t.Run(name, func(t *testing.T) {
			bad := wire
			change(&bad)
			if _, err := RecipientKey(bad); !errors.Is(err, ErrSuite) {
				t.Errorf("RecipientKey: %v, want ErrSuite", err)
			}
			req := ReleaseRequest{
				Record:  Release{Workload: "w", TokenID: "tok"},
				Secrets: []manifest.Secret{{Name: "k", Type: manifest.Symmetric}},
				To:      bad, Now: t0,
			}
			if _, err := b.Release(ctx, req); !errors.Is(err, ErrSuite) {
				t.Errorf("Release parsing To: %v, want ErrSuite", err)
			}
			req.ToKey = parsed
			if _, _, err := b.ReleaseAll(ctx, req); err == nil {
				t.Error("ReleaseAll sealed with a ToKey whose To names another suite")
			} else if name != "kem" && !errors.Is(err, ErrSuite) {
				t.Errorf("ReleaseAll with ToKey: %v, want ErrSuite", err)
			}
		})
	}
	if audit, err := b.Audit(ctx); err != nil || len(audit) != 0 {
		t.Fatalf("refused releases recorded: %+v %v", audit, err)
	}
}
