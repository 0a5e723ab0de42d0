package identity

import (
	"crypto/x509"
	"errors"
	"testing"
	"time"
)

func TestIntermediateIssuesLeavesThatVerifyAgainstTheRoot(t *testing.T) {
	root := newCA(t)
	inter, err := root.NewIntermediate("abcdef0123456789", now, 0)
	if err != nil {
		t.Fatal(err)
	}
	ic := inter.Certificate()
	if !ic.IsCA || ic.MaxPathLen != 0 || !ic.MaxPathLenZero {
		t.Errorf("intermediate: IsCA %v MaxPathLen %d zero %v, want CA with MaxPathLen 0", ic.IsCA, ic.MaxPathLen, ic.MaxPathLenZero)
	}
	if len(ic.URIs) != 1 || ic.URIs[0].String() != "spiffe://"+td {
		t.Errorf("intermediate URIs %v", ic.URIs)
	}
	if got, want := ic.NotAfter, now.Add(DefaultIntermediateTTL); !got.Equal(want) {
		t.Errorf("intermediate NotAfter %s, want %s", got, want)
	}
	if inter.Root() != root.Root() || inter.IsRoot() || len(inter.Chain()) != 1 || len(root.Chain()) != 0 {
		t.Error("Root/Chain/IsRoot of the intermediate are wrong")
	}
	key := p256(t)
	leaf := parse(t, mustIssue(t, inter, workloadReq(&key.PublicKey)))
	opts := VerifyOptions{Roots: rootPool(root), Now: now, Usage: x509.ExtKeyUsageClientAuth}
	if _, err := VerifySVID([]*x509.Certificate{leaf, ic}, opts); err != nil {
		t.Errorf("leaf → intermediate → root: %v", err)
	}
	if _, err := VerifySVID([]*x509.Certificate{leaf}, opts); !errors.Is(err, ErrNotSVID) {
		t.Errorf("leaf without its intermediate: %v, want ErrNotSVID", err)
	}
	// An intermediate signs leaves only.
	if _, err := inter.NewIntermediate("x", now, 0); !errors.Is(err, ErrInvalidRequest) {
		t.Errorf("intermediate of an intermediate: %v", err)
	}
	// A leaf may not outlive its intermediate.
	late := workloadReq(&key.PublicKey)
	late.NotBefore = ic.NotAfter.Add(-time.Minute)
	if _, err := inter.IssueWorkload(late); !errors.Is(err, ErrCAValidity) {
		t.Errorf("leaf outliving the intermediate: %v, want ErrCAValidity", err)
	}
}

func mustIssue(t *testing.T, ca *CA, req WorkloadRequest) []byte {
	t.Helper()
	der, err := ca.IssueWorkload(req)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func TestLoadIntermediate(t *testing.T) {
	root, other := newCA(t), newCA(t)
	inter, err := root.NewIntermediate("m1", now, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, err := inter.MarshalPEM()
	if err != nil {
		t.Fatal(err)
	}
	got, err := LoadIntermediate(root.Root(), certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Certificate().Equal(inter.Certificate()) || got.TrustDomain() != td {
		t.Error("round trip changed the intermediate")
	}
	if _, err := LoadIntermediate(other.Root(), certPEM, keyPEM); !errors.Is(err, ErrInvalidCA) {
		t.Errorf("intermediate of another root: %v, want ErrInvalidCA", err)
	}
	rootCert, rootKey, _ := root.MarshalPEM()
	if _, err := LoadIntermediate(root.Root(), rootCert, rootKey); !errors.Is(err, ErrInvalidCA) {
		t.Errorf("root as intermediate: %v, want ErrInvalidCA", err)
	}
	_, otherKey, _ := other.MarshalPEM()
	if _, err := LoadIntermediate(root.Root(), certPEM, otherKey); !errors.Is(err, ErrInvalidCA) {
		t.Errorf("mismatched key: %v, want ErrInvalidCA", err)
	}
	if _, err := LoadCA(certPEM, keyPEM); !errors.Is(err, ErrInvalidCA) {
		t.Errorf("intermediate as root: %v, want ErrInvalidCA", err)
	}
}

func TestNewIntermediateRejectsLabels(t *testing.T) {
	root := newCA(t)
	for _, label := range []string{"", "UPPER", "a/b", "0123456789012345678901234567890123456789"} {
		if _, err := root.NewIntermediate(label, now, 0); !errors.Is(err, ErrInvalidRequest) {
			t.Errorf("label %q: %v, want ErrInvalidRequest", label, err)
		}
	}
}
