package sgx_test

import (
	"bytes"
	"crypto/x509"
	"crypto/x509/pkix"
	"testing"

	"github.com/trustbound/trustbound/attest/sgx"
)

func pckOf(t testing.TB, quoteFile string) *x509.Certificate {
	t.Helper()
	q, err := sgx.ParseQuote(readTestdata(t, quoteFile))
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(q.PCKChain[0])
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestParsePCKExtensions(t *testing.T) {
	// Values read with `openssl asn1parse` from the PCK certificates in the
	// quotes (see testdata/PROVENANCE.md).
	tests := []struct {
		file     string
		ppid     string
		comps    [16]uint8
		pcesvn   uint16
		cpusvn   string
		fmspc    string
		sgxType  int
		instance string
	}{
		{"quote.release.bin", "6dd903cff94eb222fa46e8fd55cca7ad",
			[16]uint8{20, 20, 2, 4, 1, 128, 14}, 13, "1414020401800e000000000000000000",
			"00906ed50000", sgx.SGXTypeStandard, ""},
		{"occlum_quote_v3.dat", "",
			[16]uint8{4, 4, 3, 3, 255, 255}, 11, "04040303ffff00000000000000000000",
			"00606a000000", sgx.SGXTypeScalable, "c8c0cfb23d3dd90b06d55c0641693a7a"},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			x, err := sgx.ParsePCKExtensions(pckOf(t, tt.file))
			if err != nil {
				t.Fatal(err)
			}
			if tt.ppid != "" && !bytes.Equal(x.PPID[:], mustHex(t, tt.ppid)) {
				t.Errorf("PPID %x", x.PPID)
			}
			if x.TCB.CompSVN != tt.comps || x.TCB.PCESVN != tt.pcesvn || !bytes.Equal(x.TCB.CPUSVN[:], mustHex(t, tt.cpusvn)) {
				t.Errorf("TCB %+v", x.TCB)
			}
			if !bytes.Equal(x.FMSPC[:], mustHex(t, tt.fmspc)) || x.PCEID != [2]byte{} || x.SGXType != tt.sgxType {
				t.Errorf("FMSPC %x, PCE-ID %x, SGX type %d", x.FMSPC, x.PCEID, x.SGXType)
			}
			if !bytes.Equal(x.PlatformInstanceID, mustHex(t, tt.instance)) {
				t.Errorf("platform instance ID %x", x.PlatformInstanceID)
			}
		})
	}
}

func TestParsePCKExtensionsRefuses(t *testing.T) {
	if _, err := sgx.ParsePCKExtensions(sgx.IntelSGXRoot()); err == nil {
		t.Error("the root CA has no SGX extension, yet it parsed")
	}
	leaf := pckOf(t, "quote.release.bin")
	var ext []byte
	for _, e := range leaf.Extensions {
		if e.Id.Equal(sgx.OIDSGXExtensions) {
			ext = e.Value
		}
	}
	oid := func(arcs string) []byte { return mustHex(t, "060a2a864886f84d010d01"+arcs) }
	tcbOID := func(arc string) []byte { return mustHex(t, "060b2a864886f84d010d0102"+arc) }
	for name, edit := range map[string]func([]byte) []byte{
		"trailing byte":          func(b []byte) []byte { return append(b, 0) },
		"truncated":              func(b []byte) []byte { return b[:len(b)-1] },
		"no FMSPC":               func(b []byte) []byte { return bytes.Replace(b, oid("04"), oid("09"), 1) },
		"PCE-ID twice":           func(b []byte) []byte { return bytes.Replace(b, oid("04"), oid("03"), 1) },
		"no TCB component 16":    func(b []byte) []byte { return bytes.Replace(b, tcbOID("10"), tcbOID("13"), 1) },
		"TCB component 16 twice": func(b []byte) []byte { return bytes.Replace(b, tcbOID("10"), tcbOID("0f"), 1) },
		"no SGX type":            func(b []byte) []byte { return bytes.Replace(b, oid("05"), oid("0a"), 1) },
	} {
		if bytes.Equal(edit(bytes.Clone(ext)), ext) {
			t.Fatalf("%s: edit changed nothing", name)
		}
		c := *leaf
		c.Extensions = []pkix.Extension{{Id: sgx.OIDSGXExtensions, Value: edit(bytes.Clone(ext))}}
		if _, err := sgx.ParsePCKExtensions(&c); err == nil {
			t.Errorf("%s: parsed", name)
		}
	}
}
