package snp_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-sev-guest/abi"
	"github.com/google/go-sev-guest/kds"
	spb "github.com/google/go-sev-guest/proto/sevsnp"
	"github.com/google/go-sev-guest/verify/trust"

	"github.com/trustbound/trustbound/attest"
	"github.com/trustbound/trustbound/attest/simtee"
	"github.com/trustbound/trustbound/attest/snp"
)

// certTable marshals a GHCB certificate table with go-sev-guest, as a host
// would serve it.
func certTable(chain *spb.CertificateChain, order func([]abi.CertTableEntry)) []byte {
	ct := abi.CertsFromProto(chain)
	// CertsFromProto puts ARK, ASK, VCEK, VLEK, then extras; sort for
	// determinism before any reordering.
	slices.SortStableFunc(ct.Entries, func(a, b abi.CertTableEntry) int { return bytes.Compare(a.GUID[:], b.GUID[:]) })
	if order != nil {
		order(ct.Entries)
	}
	return ct.Marshal()
}

func checkCerts(t *testing.T, got [][]byte, want ...[]byte) {
	t.Helper()
	if !slices.EqualFunc(got, want, bytes.Equal) {
		t.Fatalf("Evidence.Certs has %d certificates, not the %d expected in order", len(got), len(want))
	}
}

func TestConfigFSSimulated(t *testing.T) {
	sim := attestSim(t, simtee.SNP{}, [64]byte{0x5e})
	vcek, ask, ark := sim.Certs[0], sim.Certs[1], sim.Certs[2]
	chain := &spb.CertificateChain{VcekCert: vcek, AskCert: ask, ArkCert: ark}
	for name, order := range map[string]func([]abi.CertTableEntry){
		"sorted":   nil,
		"reversed": slices.Reverse[[]abi.CertTableEntry],
	} {
		t.Run(name, func(t *testing.T) {
			ev, err := snp.EvidenceFromConfigFS(sim.Data, certTable(chain, order))
			if err != nil {
				t.Fatal(err)
			}
			if ev.Format != attest.FormatSNPReport || !bytes.Equal(ev.Data, sim.Data) {
				t.Fatalf("evidence %q, %d bytes", ev.Format, len(ev.Data))
			}
			checkCerts(t, ev.Certs, vcek, ask, ark)
			c, err := newVerifier().Verify(context.Background(), ev, simulation)
			if err != nil || c.ReportData[0] != 0x5e || !c.RevocationChecked {
				t.Fatalf("Verify: %+v, %v", c, err)
			}
		})
	}

	// Unknown GUIDs (here go-sev-guest's extra platform info) are ignored.
	withExtra := &spb.CertificateChain{VcekCert: vcek, Extras: map[string][]byte{abi.ExtraPlatformInfoGUID: {8, 0, 0, 0, 0x10, 0x0f, 0xa0, 0}}}
	ev, err := snp.EvidenceFromConfigFS(sim.Data, certTable(withExtra, nil))
	if err != nil {
		t.Fatal(err)
	}
	checkCerts(t, ev.Certs, vcek)

	// Without the VCEK (no table at all, or ASK and ARK only) the evidence
	// has no certificates and the verifier fetches the VCEK by its KDS URL.
	url := kds.VCEKCertURL(simtee.SNPProductLine, sim.Data[0x1A0:0x1E0], kds.TCBVersion(binary.LittleEndian.Uint64(sim.Data[0x180:])))
	for _, aux := range [][]byte{nil, certTable(&spb.CertificateChain{AskCert: ask, ArkCert: ark}, nil)} {
		ev, err := snp.EvidenceFromConfigFS(sim.Data, aux)
		if err != nil {
			t.Fatal(err)
		}
		checkCerts(t, ev.Certs)
		g := newGetter(map[string][]byte{url: vcek})
		c, err := snp.NewVerifier(snp.Config{Simulated: simRoots(), Getter: g}).Verify(context.Background(), ev, simulation)
		if err != nil || !c.Simulated || g.requests() != 1 {
			t.Fatalf("Verify with the VCEK fetched: %+v, %v, %d requests", c, err, g.requests())
		}
	}
	// A VLEK is not what a VCEK-signed report needs.
	ev, err = snp.EvidenceFromConfigFS(sim.Data, certTable(&spb.CertificateChain{VlekCert: vcek, AskCert: ask}, nil))
	if err != nil {
		t.Fatal(err)
	}
	checkCerts(t, ev.Certs)
}

func TestConfigFSReal(t *testing.T) {
	// go-sev-guest's Milan report with its VCEK only.
	report, vcek := readTestdata(t, "gosevguest-milan-attestation.bin"), readTestdata(t, "gosevguest-milan-vcek.der")
	ev, err := snp.EvidenceFromConfigFS(report, certTable(&spb.CertificateChain{VcekCert: vcek}, nil))
	if err != nil {
		t.Fatal(err)
	}
	checkCerts(t, ev.Certs, vcek)
	if _, err := realVerifier(nil).Verify(context.Background(), ev, attest.Options{Now: now}); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	// With AMD's Milan ASK and ARK beside it.
	ask, ark, err := kds.ParseProductCertChain(trust.AskArkMilanVcekBytes)
	if err != nil {
		t.Fatal(err)
	}
	ev, err = snp.EvidenceFromConfigFS(report, certTable(&spb.CertificateChain{VcekCert: vcek, AskCert: ask, ArkCert: ark}, nil))
	if err != nil {
		t.Fatal(err)
	}
	checkCerts(t, ev.Certs, vcek, ask, ark)
	if _, err := realVerifier(nil).Verify(context.Background(), ev, attest.Options{Now: now}); err != nil {
		t.Fatalf("Verify: %v", err)
	}

	// trustee's VLEK report: VLEK, ASVK (under the ASK GUID) and ARK.
	report, vlek := readTestdata(t, "trustee-milan-vlek-report.bin"), readTestdata(t, "trustee-milan-vlek.der")
	asvk, ark, err := kds.ParseProductCertChain(trust.AskArkMilanVlekBytes)
	if err != nil {
		t.Fatal(err)
	}
	ev, err = snp.EvidenceFromConfigFS(report, certTable(&spb.CertificateChain{VlekCert: vlek, AskCert: asvk, ArkCert: ark}, nil))
	if err != nil {
		t.Fatal(err)
	}
	checkCerts(t, ev.Certs, vlek, asvk, ark)
	if c, err := realVerifier(nil).Verify(context.Background(), ev, attest.Options{Now: vlekDay}); err != nil || c.Platform["signer"] != "vlek" {
		t.Fatalf("Verify: %+v, %v", c, err)
	}
}

// row is one raw certificate table row.
func row(guid string, offset, length uint32) []byte {
	g, err := hex.DecodeString(strings.ReplaceAll(guid, "-", ""))
	if err != nil || len(g) != 16 {
		panic(guid)
	}
	b := make([]byte, 24)
	copy(b, g)
	binary.LittleEndian.PutUint32(b[16:], offset)
	binary.LittleEndian.PutUint32(b[20:], length)
	return b
}

func cat(bs ...[]byte) []byte { return bytes.Join(bs, nil) }

func TestConfigFSStrict(t *testing.T) {
	sim := attestSim(t, simtee.SNP{}, [64]byte{})
	vcek, ask := sim.Certs[0], sim.Certs[1]
	n := uint32(len(vcek))
	end := make([]byte, 24)
	good := cat(row(abi.VcekGUID, 48, n), end, vcek)
	if ev, err := snp.EvidenceFromConfigFS(sim.Data, good); err != nil || len(ev.Certs) != 1 {
		t.Fatalf("hand-made table: %v", err)
	}
	// Zero padding between the rows and the certificates, or between
	// certificates, is accepted.
	padded := cat(row(abi.VcekGUID, 80, n), row(abi.AskGUID, 80+n+8, uint32(len(ask))), end, make([]byte, 8), vcek, make([]byte, 8), ask)
	if ev, err := snp.EvidenceFromConfigFS(sim.Data, padded); err != nil || len(ev.Certs) != 2 {
		t.Fatalf("padded table: %v", err)
	}
	for _, tc := range []struct {
		name     string
		out, aux []byte
	}{
		{"trailing byte", sim.Data, append(bytes.Clone(good), 0)},
		{"trailing page", sim.Data, append(bytes.Clone(good), make([]byte, 4096)...)},
		{"no terminator", sim.Data, row(abi.VcekGUID, 24, 0)},
		{"rows only", sim.Data, cat(row(abi.VcekGUID, 48, n))},
		{"short row", sim.Data, make([]byte, 23)},
		{"terminator only, then bytes", sim.Data, cat(end, []byte{1})},
		{"entry in the header", sim.Data, cat(row(abi.VcekGUID, 24, n), end, vcek)},
		{"entry past the end", sim.Data, cat(row(abi.VcekGUID, 48, n+1), end, vcek)},
		{"offset+length overflows", sim.Data, cat(row(abi.VcekGUID, 0xffffffff, 2), end, vcek)},
		{"empty entry", sim.Data, cat(row(abi.VcekGUID, 72, n), row(abi.ArkGUID, 72, 0), end, vcek)},
		{"overlapping entries", sim.Data, cat(row(abi.VcekGUID, 72, n), row(abi.ArkGUID, 72+n-1, 1), end, vcek)},
		{"same range twice", sim.Data, cat(row(abi.VcekGUID, 72, n), row(abi.AskGUID, 72, n), end, vcek)},
		{"GUID twice", sim.Data, cat(row(abi.VcekGUID, 72, n), row(abi.VcekGUID, 72+n, n), end, vcek, vcek)},
		{"garbage between", sim.Data, cat(row(abi.VcekGUID, 49, n), end, []byte{7}, vcek)},
		{"zero GUID entry overlapping", sim.Data, cat(row(abi.VcekGUID, 72, n), row("00000000-0000-0000-0000-000000000000", 72, 1), end, vcek)},
		{"truncated report", sim.Data[:abi.ReportSize-1], good},
		{"extended report", append(bytes.Clone(sim.Data), good...), good},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ev, err := snp.EvidenceFromConfigFS(tc.out, tc.aux)
			if ev != nil {
				t.Errorf("evidence returned with an error")
			}
			wantOnly(t, err, attest.ErrMalformed)
		})
	}
	// An unknown GUID's entry is still checked for its place.
	if _, err := snp.EvidenceFromConfigFS(sim.Data, cat(row(abi.VcekGUID, 72, n), row(abi.ExtraPlatformInfoGUID, 72+n, 8), end, vcek, make([]byte, 8))); err != nil {
		t.Errorf("unknown GUID: %v", err)
	}
}
