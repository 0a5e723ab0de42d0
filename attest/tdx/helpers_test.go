package tdx_test

import (
	"context"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/trustbound/trustbound/attest/dcap"
)

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

// qvlCollateral reads a collateral JSON of the dcap-qvl project.
func qvlCollateral(t testing.TB, name string) *dcap.Collateral {
	t.Helper()
	c, err := dcap.ParseQVLCollateral(readTestdata(t, name))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// spr collateral: go-tdx-guest's sample PCS responses for the Sapphire
// Rapids quote, with the issuer chains its tests send as headers.
func sprCollateral(t testing.TB) *dcap.Collateral {
	return &dcap.Collateral{
		PCKCRL:                readTestdata(t, "gotdxguest-spr-pckcrl"),
		PCKCRLIssuerChain:     readTestdata(t, "gotdxguest-spr-pckcrl_issuer_chain.pem"),
		RootCACRL:             readTestdata(t, "gotdxguest-spr-rootcrl.der"),
		TCBInfo:               readTestdata(t, "gotdxguest-spr-sample_tcbInfo_response"),
		TCBInfoIssuerChain:    readTestdata(t, "gotdxguest-spr-tcbinfo_issuer_chain.pem"),
		QEIdentity:            readTestdata(t, "gotdxguest-spr-sample_qeIdentity_response"),
		QEIdentityIssuerChain: readTestdata(t, "gotdxguest-spr-qeidentity_issuer_chain.pem"),
	}
}

// source is a fake dcap.Source serving fixed collateral for one FMSPC and
// PCK CA, counting its calls.
type source struct {
	kind  dcap.Kind
	fmspc [6]byte
	ca    dcap.CA
	c     *dcap.Collateral
	calls int
}

func (s *source) Collateral(_ context.Context, kind dcap.Kind, fmspc [6]byte, ca dcap.CA) (*dcap.Collateral, error) {
	s.calls++
	if kind != s.kind || fmspc != s.fmspc || ca != s.ca {
		return nil, fmt.Errorf("%w: no collateral for %s FMSPC %x %s CA", dcap.ErrCollateral, kind, fmspc, ca)
	}
	return s.c, nil
}
