package azure

import (
	"bytes"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"

	"github.com/google/go-tpm/tpm2"

	"github.com/trustbound/trustbound/attest"
)

// maxQuoteSize bounds a TPMS_ATTEST quote: a name, 64 bytes of qualifying
// data, one PCR selection and a digest take a few hundred bytes.
const maxQuoteSize = 1024

// pcrSelectSize is the size of a PCR bitmap for the vTPM's 24 PCRs.
const pcrSelectSize = PCRCount / 8

// Quote is a parsed TPMS_ATTEST of type TPM_ST_ATTEST_QUOTE.
type Quote struct {
	Attest *tpm2.TPMSAttest
	Info   *tpm2.TPMSQuoteInfo
	// Selected are the PCR indices the quote covers, ascending: the order
	// of the values its PCR digest hashes.
	Selected []int
}

// ParseQuote parses a TPMS_ATTEST strictly: TPM_GENERATED_VALUE, type
// TPM_ST_ATTEST_QUOTE, canonical encoding with no trailing bytes, at most 64
// bytes of qualifying data, and exactly one PCR selection, of the SHA-256
// bank, over at least one of the 24 PCRs, with a 32-byte digest. Errors wrap
// attest.ErrMalformed.
func ParseQuote(msg []byte) (*Quote, error) {
	var q *Quote
	var err error
	// go-tpm's reflective (un)marshalling panics on what it cannot encode;
	// no fuzzing has found such an input, but a quote is untrusted.
	func() {
		defer func() {
			if r := recover(); r != nil {
				q, err = nil, fmt.Errorf("%w: TPM quote: %v", attest.ErrMalformed, r)
			}
		}()
		q, err = parseQuote(msg)
	}()
	return q, err
}

func parseQuote(msg []byte) (*Quote, error) {
	if len(msg) > maxQuoteSize {
		return nil, fmt.Errorf("%w: TPM quote is %d bytes, more than %d", attest.ErrMalformed, len(msg), maxQuoteSize)
	}
	a, err := tpm2.Unmarshal[tpm2.TPMSAttest](msg)
	if err != nil {
		return nil, fmt.Errorf("%w: TPM quote is not a TPMS_ATTEST: %w", attest.ErrMalformed, err)
	}
	if a.Magic != tpm2.TPMGeneratedValue {
		return nil, fmt.Errorf("%w: TPM quote magic is %#x, not TPM_GENERATED_VALUE", attest.ErrMalformed, uint32(a.Magic))
	}
	if a.Type != tpm2.TPMSTAttestQuote {
		return nil, fmt.Errorf("%w: TPMS_ATTEST type is %#x, not TPM_ST_ATTEST_QUOTE", attest.ErrMalformed, uint16(a.Type))
	}
	// tpm2.Unmarshal ignores trailing bytes and reads any non-zero byte as
	// YES: the encoding must be exactly the canonical one.
	if !bytes.Equal(tpm2.Marshal(a), msg) {
		return nil, fmt.Errorf("%w: TPM quote has trailing or non-canonical bytes", attest.ErrMalformed)
	}
	info, err := a.Attested.Quote()
	if err != nil {
		return nil, fmt.Errorf("%w: TPM quote: %w", attest.ErrMalformed, err)
	}
	if n := len(a.ExtraData.Buffer); n > 64 {
		return nil, fmt.Errorf("%w: TPM quote qualifying data is %d bytes, more than 64", attest.ErrMalformed, n)
	}
	sels := info.PCRSelect.PCRSelections
	if len(sels) != 1 {
		return nil, fmt.Errorf("%w: TPM quote selects %d PCR banks, want exactly one (SHA-256)", attest.ErrMalformed, len(sels))
	}
	if sels[0].Hash != tpm2.TPMAlgSHA256 {
		return nil, fmt.Errorf("%w: TPM quote selects PCR bank %#x, want SHA-256", attest.ErrMalformed, uint16(sels[0].Hash))
	}
	if len(sels[0].PCRSelect) != pcrSelectSize {
		return nil, fmt.Errorf("%w: TPM quote PCR bitmap is %d bytes, want %d", attest.ErrMalformed, len(sels[0].PCRSelect), pcrSelectSize)
	}
	q := &Quote{Attest: a, Info: info}
	for i := range PCRCount {
		if sels[0].PCRSelect[i/8]&(1<<(i%8)) != 0 {
			q.Selected = append(q.Selected, i)
		}
	}
	if len(q.Selected) == 0 {
		return nil, fmt.Errorf("%w: TPM quote selects no PCR", attest.ErrMalformed)
	}
	if n := len(info.PCRDigest.Buffer); n != sha256.Size {
		return nil, fmt.Errorf("%w: TPM quote PCR digest is %d bytes, want %d", attest.ErrMalformed, n, sha256.Size)
	}
	return q, nil
}

// CheckSignature verifies the AK's RSASSA-PKCS1-v1_5 SHA-256 signature over
// the TPMS_ATTEST bytes, the scheme of Azure's vTPM AK. Errors wrap
// attest.ErrSignature.
func CheckSignature(ak *rsa.PublicKey, msg, sig []byte) error {
	d := sha256.Sum256(msg)
	if err := rsa.VerifyPKCS1v15(ak, crypto.SHA256, d[:], sig); err != nil {
		return fmt.Errorf("%w: the TPM quote is not signed by the %s key the HCL report binds: %w", attest.ErrSignature, KeyIDAK, err)
	}
	return nil
}

// CheckPCRs checks that the quote's PCR digest is the SHA-256 of values,
// the presented values of the selected PCRs in order, and returns them by
// PCR index. Errors wrap attest.ErrBinding (a mismatch) or
// attest.ErrMalformed (a wrong count or size).
func (q *Quote) CheckPCRs(values [][]byte) (map[int]attest.Hex, error) {
	if len(values) != len(q.Selected) {
		return nil, fmt.Errorf("%w: the evidence has %d PCR values but the TPM quote selects %d PCRs", attest.ErrMalformed, len(values), len(q.Selected))
	}
	h := sha256.New()
	pcrs := make(map[int]attest.Hex, len(values))
	for i, v := range values {
		if len(v) != sha256.Size {
			return nil, fmt.Errorf("%w: PCR %d value is %d bytes, want %d", attest.ErrMalformed, q.Selected[i], len(v), sha256.Size)
		}
		h.Write(v)
		pcrs[q.Selected[i]] = bytes.Clone(v)
	}
	if subtle.ConstantTimeCompare(h.Sum(nil), q.Info.PCRDigest.Buffer) != 1 {
		return nil, fmt.Errorf("%w: the PCR values presented do not hash to the PCR digest the TPM quote signs: a PCR value was altered", attest.ErrBinding)
	}
	return pcrs, nil
}
