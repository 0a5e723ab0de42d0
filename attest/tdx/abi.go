package tdx

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/google/go-tdx-guest/abi"
	pb "github.com/google/go-tdx-guest/proto/tdx"

	"github.com/trustbound/trustbound/attest/dcap"
)

// errABILayout means go-tdx-guest's abi package no longer splits the QE
// report as this package expects: a dependency upgrade to look at.
var errABILayout = errors.New("tdx: unexpected go-tdx-guest abi layout")

// decodeV4 decodes a framed version 4 quote b (no padding) with
// go-tdx-guest's abi package. frame has checked every size field, so abi
// cannot index out of range; a panic there is still turned into an error,
// as b is untrusted.
func decodeV4(b []byte) (q *Quote, err error) {
	defer func() {
		if r := recover(); r != nil {
			q, err = nil, malformed("go-tdx-guest abi: %v", r)
		}
	}()
	v, err := abi.QuoteToProto(b)
	if err != nil {
		return nil, malformed("go-tdx-guest abi: %v", err)
	}
	p, ok := v.(*pb.QuoteV4)
	if !ok {
		return nil, malformed("go-tdx-guest abi returned a %T, not a QuoteV4", v)
	}
	if len(p.GetExtraBytes()) != 0 {
		return nil, malformed("%d bytes after the quote", len(p.GetExtraBytes()))
	}
	return fromProto(p)
}

// fromProto converts go-tdx-guest's QuoteV4 (whose field sizes
// abi.CheckQuoteV4 has checked) to a Quote.
func fromProto(p *pb.QuoteV4) (*Quote, error) {
	h, body := p.GetHeader(), p.GetTdQuoteBody()
	sd := p.GetSignedData()
	qrc := sd.GetCertificationData().GetQeReportCertificationData()
	qe := qrc.GetQeReport()
	if h == nil || body == nil || qe == nil || qrc.GetPckCertificateChainData() == nil {
		return nil, malformed("go-tdx-guest abi left a part of the quote empty")
	}
	q := &Quote{BodyType: BodyTypeTD10}
	q.Header.Version = uint16(h.GetVersion())
	q.Header.AttestationKeyType = uint16(h.GetAttestationKeyType())
	q.Header.TEEType = h.GetTeeType()
	copy(q.Header.QEVendorID[:], h.GetQeVendorId())
	copy(q.Header.UserData[:], h.GetUserData())
	// abi reads header bytes 8..12 as PCE SVN then QE SVN; TDX reserves them.
	if !allZero(h.GetPceSvn()) || !allZero(h.GetQeSvn()) {
		return nil, malformed("header reserved bytes 8..12 are %x%x, want zero", h.GetPceSvn(), h.GetQeSvn())
	}

	d := &q.Body
	copy(d.TEETCBSVN[:], body.GetTeeTcbSvn())
	copy(d.MRSEAM[:], body.GetMrSeam())
	copy(d.MRSignerSEAM[:], body.GetMrSignerSeam())
	copy(d.SEAMAttributes[:], body.GetSeamAttributes())
	copy(d.TDAttributes[:], body.GetTdAttributes())
	copy(d.XFAM[:], body.GetXfam())
	copy(d.MRTD[:], body.GetMrTd())
	copy(d.MRConfigID[:], body.GetMrConfigId())
	copy(d.MROwner[:], body.GetMrOwner())
	copy(d.MROwnerConfig[:], body.GetMrOwnerConfig())
	for i, r := range body.GetRtmrs() {
		copy(d.RTMR[i][:], r)
	}
	copy(d.ReportData[:], body.GetReportData())

	s := &q.Signature
	copy(s.QuoteSignature[:], sd.GetSignature())
	copy(s.AttestationKey[:], sd.GetEcdsaAttestationKey())
	// abi keeps the SGX report body's reserved ranges together with the
	// fields they surround; take those fields from their offsets.
	if len(qe.GetReserved1()) != 28 || len(qe.GetReserved3()) != 96 || len(qe.GetReserved4()) != 60 {
		return nil, fmt.Errorf("%w: go-tdx-guest abi's QE report layout is not the one this package knows", errABILayout)
	}
	r := &s.QEReport
	copy(r.CPUSVN[:], qe.GetCpuSvn())
	r.MiscSelect = qe.GetMiscSelect()
	copy(r.ISVExtProdID[:], qe.GetReserved1()[12:28])
	var attrs [16]byte
	copy(attrs[:], qe.GetAttributes())
	r.Attributes = dcap.Attributes{Flags: binary.LittleEndian.Uint64(attrs[0:]), XFRM: binary.LittleEndian.Uint64(attrs[8:])}
	copy(r.MREnclave[:], qe.GetMrEnclave())
	copy(r.MRSigner[:], qe.GetMrSigner())
	copy(r.ConfigID[:], qe.GetReserved3()[32:96])
	r.ISVProdID = uint16(qe.GetIsvProdId())
	r.ISVSVN = uint16(qe.GetIsvSvn())
	r.ConfigSVN = binary.LittleEndian.Uint16(qe.GetReserved4()[0:2])
	copy(r.ISVFamilyID[:], qe.GetReserved4()[44:60])
	copy(r.ReportData[:], qe.GetReportData())
	copy(s.QEReportSignature[:], qrc.GetQeReportSignature())
	s.QEAuthData = qrc.GetQeAuthData().GetData()
	s.PCKCertChain = qrc.GetPckCertificateChainData().GetPckCertChain()
	if s.QEAuthData == nil {
		s.QEAuthData = []byte{}
	}
	return q, nil
}
