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

// maxPlatformClaims is the most entries Claims.Platform of a TDX quote
// gets: 21 and the four RTMRs from claims, at most four more there (TD
// report 1.5: two, padding, platform instance ID) and five from the TCB
// evaluation.
const maxPlatformClaims = 21 + 4 + 4 + 5

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
		// Sized for every entry claims and Verifier.evaluate set, so that
		// the map never grows.
		Platform: make(map[string]string, maxPlatformClaims),
	}
	c.Platform["quote_version"] = strconv.Itoa(int(q.Header.Version))
	c.Platform["quote_body_type"] = strconv.Itoa(int(q.BodyType))
	c.Platform["tee_tcb_svn"] = hex.EncodeToString(b.TEETCBSVN[:])
	c.Platform["mrseam"] = hex.EncodeToString(b.MRSEAM[:])
	c.Platform["mrsignerseam"] = hex.EncodeToString(b.MRSignerSEAM[:])
	c.Platform["seam_attributes"] = hex.EncodeToString(b.SEAMAttributes[:])
	c.Platform["td_attributes"] = hex.EncodeToString(b.TDAttributes[:])
	c.Platform["xfam"] = hex.EncodeToString(b.XFAM[:])
	c.Platform["mrtd"] = hex.EncodeToString(b.MRTD[:])
	c.Platform["mrconfigid"] = hex.EncodeToString(b.MRConfigID[:])
	c.Platform["mrowner"] = hex.EncodeToString(b.MROwner[:])
	c.Platform["mrownerconfig"] = hex.EncodeToString(b.MROwnerConfig[:])
	c.Platform["qe_vendor_id"] = hex.EncodeToString(q.Header.QEVendorID[:])
	c.Platform["qe_mrsigner"] = hex.EncodeToString(qe.MRSigner[:])
	c.Platform["qe_isv_prod_id"] = strconv.Itoa(int(qe.ISVProdID))
	c.Platform["qe_svn"] = strconv.Itoa(int(qe.ISVSVN))
	c.Platform["pce_svn"] = strconv.Itoa(int(p.Ext.TCB.PCESVN))
	c.Platform["pce_id"] = hex.EncodeToString(p.Ext.PCEID[:])
	c.Platform["fmspc"] = hex.EncodeToString(p.Ext.FMSPC[:])
	c.Platform["pck_ca"] = string(p.CA)
	c.Platform["sgx_type"] = strconv.Itoa(p.Ext.SGXType)
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
