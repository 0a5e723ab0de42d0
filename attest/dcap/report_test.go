package dcap_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/trustbound/trustbound/attest/dcap"
)

func TestReportBodyRoundTrip(t *testing.T) {
	r := dcap.ReportBody{
		CPUSVN: [16]byte{1}, MiscSelect: 2, ISVExtProdID: [16]byte{3},
		Attributes: dcap.Attributes{Flags: dcap.FlagInit | dcap.FlagDebug, XFRM: 7},
		MREnclave:  [32]byte{4}, MRSigner: [32]byte{5}, ConfigID: [64]byte{6},
		ISVProdID: 8, ISVSVN: 9, ConfigSVN: 10, ISVFamilyID: [16]byte{11}, ReportData: [64]byte{12},
	}
	b := r.Append([]byte("prefix"))
	if !bytes.HasPrefix(b, []byte("prefix")) || len(b) != len("prefix")+dcap.ReportBodySize {
		t.Fatalf("Append wrote %d bytes after the prefix", len(b)-len("prefix"))
	}
	body := b[len("prefix"):]
	if err := dcap.CheckReportBody(body); err != nil {
		t.Fatal(err)
	}
	if got := dcap.DecodeReportBody(body); got != r || !got.Attributes.Debug() {
		t.Fatalf("round trip: %+v", got)
	}
	if qe := r.QE(); qe.MRSigner != r.MRSigner || qe.ISVProdID != 8 || qe.ISVSVN != 9 || qe.MiscSelect != 2 || qe.Attributes != r.Attributes.Bytes() {
		t.Fatalf("QE: %+v", qe)
	}
	for _, off := range []int{20, 31, 96, 127, 160, 191, 262, 303} {
		bad := bytes.Clone(body)
		bad[off] = 1
		if err := dcap.CheckReportBody(bad); err == nil || !strings.Contains(err.Error(), "reserved byte") {
			t.Errorf("reserved byte %d set: %v", off, err)
		}
	}
	if err := dcap.CheckReportBody(body[1:]); err == nil {
		t.Error("short report body accepted")
	}
}

// FuzzReportBody: every report body CheckReportBody accepts decodes and
// re-encodes to itself.
func FuzzReportBody(f *testing.F) {
	f.Add(make([]byte, dcap.ReportBodySize))
	f.Add((&dcap.ReportBody{MREnclave: [32]byte{1}, ReportData: [64]byte{2}}).Append(nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		if dcap.CheckReportBody(b) != nil {
			return
		}
		r := dcap.DecodeReportBody(b)
		if got := r.Append(nil); !bytes.Equal(got, b) {
			t.Fatalf("re-encoded body differs:\n got %x\nwant %x", got, b)
		}
	})
}
