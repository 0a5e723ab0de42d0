package tdx_test

import (
	"crypto/x509"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/trustbound/trustbound/attest"
	"github.com/trustbound/trustbound/attest/dcap"
	"github.com/trustbound/trustbound/attest/dcap/dcaptest"
	"github.com/trustbound/trustbound/attest/tdx"
)

// invalidatingSource is a fake caching dcap.Source: it serves like source
// and records the platforms it was told to drop (dcap.Invalidator).
type invalidatingSource struct {
	source
	dropped []string
}

func (s *invalidatingSource) InvalidateCollateral(kind dcap.Kind, fmspc [6]byte, ca dcap.CA) {
	s.dropped = append(s.dropped, fmt.Sprintf("%s/%x/%s", kind, fmspc, ca))
}

var _ dcap.Invalidator = (*invalidatingSource)(nil)

// TestRejectedCollateralInvalidated: TDX collateral refused as not genuine
// is dropped from a caching source; stale collateral, collateral for
// another platform and a good verdict drop nothing. A TCB info signed by
// the platform's own PCK key (a review finding) is among the refused.
func TestRejectedCollateralInvalidated(t *testing.T) {
	f := newFakeIntelQuote(t)
	good, err := f.pki.Collateral(f.tcb, f.qe, at.Add(-time.Hour), at.Add(24*time.Hour), dcaptest.Revoked{})
	if err != nil {
		t.Fatal(err)
	}
	badSig := *good
	badSig.TCBInfo = append([]byte(nil), good.TCBInfo...)
	badSig.TCBInfo[len(badSig.TCBInfo)-4] ^= 1 // a hex digit of the signature
	// Signed by the PCK CA, which chains to the root but signs no collateral.
	byPCKCA := *good
	if byPCKCA.TCBInfo, err = dcaptest.Sign("tcbInfo", mustTCB(t, good).Signed, f.pki.PCKCAKey); err != nil {
		t.Fatal(err)
	}
	byPCKCA.TCBInfoIssuerChain = dcaptest.ChainPEM(f.pki.PCKCA, f.pki.Root)
	otherFMSPC := *f.tcb
	otherFMSPC.FMSPC[5] ^= 1
	other, err := f.pki.Collateral(&otherFMSPC, f.qe, at.Add(-time.Hour), at.Add(24*time.Hour), dcaptest.Revoked{})
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("tdx/%x/platform", qvlFMSPC)
	for _, tt := range []struct {
		name    string
		c       *dcap.Collateral
		at      time.Time
		dropped bool
	}{
		{"UpToDate", good, at, false},
		{"TCB info signature", &badSig, at, true},
		{"TCB info signed by the PCK CA", &byPCKCA, at, true},
		{"stale", good, at.Add(48 * time.Hour), false},
		{"another FMSPC", other, at, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			src := &invalidatingSource{source: source{kind: dcap.TDX, fmspc: qvlFMSPC, ca: dcap.PlatformCA, c: tt.c}}
			v := tdx.NewVerifier(tdx.Config{Roots: []*x509.Certificate{f.pki.Root}, Collateral: src})
			_, err := verify(t, v, f.quote, attest.Options{Now: tt.at})
			if (err != nil) != (tt.name != "UpToDate") {
				t.Fatalf("err = %v", err)
			}
			var rej *dcap.RejectedError
			if errors.As(err, &rej) != tt.dropped || tt.dropped != (len(src.dropped) == 1) || tt.dropped && src.dropped[0] != want {
				t.Fatalf("dropped %q, err %v; want dropped %v", src.dropped, err, tt.dropped)
			}
		})
	}
}

func mustTCB(t *testing.T, c *dcap.Collateral) *dcap.TCBInfo {
	t.Helper()
	tcb, err := dcap.ParseTCBInfo(c.TCBInfo)
	if err != nil {
		t.Fatal(err)
	}
	return tcb
}

// TestQEVendorIDChecked: only quotes of Intel's quoting enclave (QE vendor
// ID dcap.IntelQEVendorID) parse; the header is signed, so this is the
// quote's own claim, refused as an unsupported format as Intel's QVL does.
func TestQEVendorIDChecked(t *testing.T) {
	for _, file := range []string{"trustee-tdx_quote_4.dat", "trustee-tdx_quote_5.dat"} {
		b := readTestdata(t, file)
		b[12] ^= 1
		if _, err := tdx.ParseQuote(b); !errors.Is(err, attest.ErrMalformed) || !strings.Contains(err.Error(), "QE vendor ID") {
			t.Errorf("%s with another QE vendor: %v", file, err)
		}
	}
}

// TestQuotePaddingClaim: the zero padding ParseQuote tolerates is
// recorded (Quote.Padding) and claimed as Platform["quote_padding"].
func TestQuotePaddingClaim(t *testing.T) {
	v := tdx.NewVerifier(tdx.Config{})
	for _, rq := range realQuotes {
		t.Run(rq.file, func(t *testing.T) {
			b := readTestdata(t, rq.file)
			if q := mustParse(t, b); q.Padding != rq.padding {
				t.Fatalf("Padding %d, want %d", q.Padding, rq.padding)
			}
			cl, err := verify(t, v, b, attest.Options{Now: at, SkipCollateral: true})
			if err != nil {
				t.Fatal(err)
			}
			got, has := cl.Platform["quote_padding"]
			if has != (rq.padding > 0) || has && got != strconv.Itoa(rq.padding) {
				t.Errorf("quote_padding %q (present %v), want %d", got, has, rq.padding)
			}
		})
	}
}
