package tdx

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"strconv"

	"github.com/trustbound/trustbound/attest"
	"github.com/trustbound/trustbound/attest/dcap"
)

// The names of the TCB components in Claims.TCB.Components, as Intel's TCB
// info spells the lists: sgxtcbcomp01svn…16, tdxtcbcomp01svn…16.
var sgxComponentNames, tdxComponentNames = func() (s, t [16]string) {
	for i := range s {
		s[i] = fmt.Sprintf("sgxtcbcomp%02dsvn", i+1)
		t[i] = fmt.Sprintf("tdxtcbcomp%02dsvn", i+1)
	}
	return
}()

// claims turns a verified quote into claims, without TCB evaluation.
func claims(q *Quote, p *dcap.PCKChain) *attest.Claims {
	b := &q.Body
	qe := &q.Signature.QEReport
	c := &attest.Claims{
		TEE:         attest.TDX,
		Format:      attest.FormatTDXQuote,
		Simulated:   p.Simulated,
		Measurement: bytes.Clone(b.MRTD[:]),
		Debug:       b.Debug(),
		HostData:    bytes.Clone(b.MRConfigID[:]),
		ReportData:  bytes.Clone(b.ReportData[:]),
		TCB:         attest.TCB{Components: make(map[string]uint64, 2*16+2)},
		Platform: map[string]string{
			"quote_version":   strconv.Itoa(int(q.Header.Version)),
			"quote_body_type": strconv.Itoa(int(q.BodyType)),
			"tee_tcb_svn":     hex.EncodeToString(b.TEETCBSVN[:]),
			"mrseam":          hex.EncodeToString(b.MRSEAM[:]),
			"mrsignerseam":    hex.EncodeToString(b.MRSignerSEAM[:]),
			"seam_attributes": hex.EncodeToString(b.SEAMAttributes[:]),
			"td_attributes":   hex.EncodeToString(b.TDAttributes[:]),
			"xfam":            hex.EncodeToString(b.XFAM[:]),
			"mrtd":            hex.EncodeToString(b.MRTD[:]),
			"mrconfigid":      hex.EncodeToString(b.MRConfigID[:]),
			"mrowner":         hex.EncodeToString(b.MROwner[:]),
			"mrownerconfig":   hex.EncodeToString(b.MROwnerConfig[:]),
			"qe_vendor_id":    hex.EncodeToString(q.Header.QEVendorID[:]),
			"qe_mrsigner":     hex.EncodeToString(qe.MRSigner[:]),
			"qe_isv_prod_id":  strconv.Itoa(int(qe.ISVProdID)),
			"qe_svn":          strconv.Itoa(int(qe.ISVSVN)),
			"pce_svn":         strconv.Itoa(int(p.Ext.TCB.PCESVN)),
			"pce_id":          hex.EncodeToString(p.Ext.PCEID[:]),
			"fmspc":           hex.EncodeToString(p.Ext.FMSPC[:]),
			"pck_ca":          string(p.CA),
			"sgx_type":        strconv.Itoa(p.Ext.SGXType),
		},
	}
	for i := range b.RTMR {
		c.Platform["rtmr"+strconv.Itoa(i)] = hex.EncodeToString(b.RTMR[i][:])
	}
	if q.BodyType == BodyTypeTD15 {
		c.Platform["tee_tcb_svn2"] = hex.EncodeToString(b.TEETCBSVN2[:])
		c.Platform["mrservicetd"] = hex.EncodeToString(b.MRServiceTD[:])
	}
	if q.Padding > 0 {
		// Zero bytes after the quote, tolerated (see ParseQuote) and
		// reported: a quote buffer handed over at a fixed size.
		c.Platform["quote_padding"] = strconv.Itoa(q.Padding)
	}
	if p.Ext.PlatformInstanceID != nil {
		c.Platform["platform_instance_id"] = hex.EncodeToString(p.Ext.PlatformInstanceID)
	}
	// The components Intel's TDX TCB evaluation matches: the PCK
	// certificate's SGX TCB and PCESVN, the TD's TEE_TCB_SVN, the QE's SVN.
	for i, svn := range p.Ext.TCB.CompSVN {
		c.TCB.Components[sgxComponentNames[i]] = uint64(svn)
	}
	for i, svn := range b.TEETCBSVN {
		c.TCB.Components[tdxComponentNames[i]] = uint64(svn)
	}
	c.TCB.Components["pcesvn"] = uint64(p.Ext.TCB.PCESVN)
	c.TCB.Components["qesvn"] = uint64(qe.ISVSVN)
	return c
}
