package snp

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"

	"github.com/google/go-sev-guest/abi"

	"github.com/trustbound/trustbound/attest"
)

// The GUIDs of the GHCB certificate table (GHCB specification 56421,
// "SNP Extended Guest Request") that a verification uses.
var (
	guidVCEK = mustGUID(abi.VcekGUID)
	guidVLEK = mustGUID(abi.VlekGUID)
	guidASK  = mustGUID(abi.AskGUID) // the ASVK too, in a VLEK table
	guidARK  = mustGUID(abi.ArkGUID)
)

// guid is a GUID as the table stores it: its 16 bytes in the order of its
// text form, as go-sev-guest and the hosts' tools write them.
type guid [abi.GUIDSize]byte

func mustGUID(s string) guid {
	b, err := hex.DecodeString(strings.ReplaceAll(s, "-", ""))
	if err != nil || len(b) != abi.GUIDSize {
		panic("snp: bad GUID constant " + s)
	}
	return guid(b)
}

func (g guid) String() string {
	h := hex.EncodeToString(g[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// certTableEntry is one GUID/offset/length row of a GHCB certificate table.
type certTableEntry struct {
	guid           guid
	offset, length uint32
}

// parseCertTable parses a GHCB certificate table as Linux configfs-tsm
// gives it in auxblob: rows of {GUID, offset, length} (24 bytes, little
// endian) ended by an all-zero row, then the certificates the rows point
// to. It is strict: every entry lies after the rows and inside the blob,
// is not empty and overlaps no other; a GUID appears at most once; bytes
// that no entry covers are zero (padding); and the blob ends where the last
// certificate ends, as the kernel cuts it. Rows with GUIDs it does not know
// are kept (the caller ignores them, as the GHCB specification lets a
// guest). An empty auxblob is a table without certificates. It returns the
// certificates by GUID. Every error wraps attest.ErrMalformed.
func parseCertTable(aux []byte) (map[guid][]byte, error) {
	out := map[guid][]byte{}
	if len(aux) == 0 {
		return out, nil
	}
	var entries []certTableEntry
	header := 0
	for {
		if len(aux)-header < abi.CertTableEntrySize {
			return nil, fmt.Errorf("%w: SNP certificate table: no all-zero terminator row within %d bytes", attest.ErrMalformed, len(aux))
		}
		row := aux[header : header+abi.CertTableEntrySize]
		header += abi.CertTableEntrySize
		if allZero(row) {
			break
		}
		e := certTableEntry{
			guid:   guid(row[:abi.GUIDSize]),
			offset: binary.LittleEndian.Uint32(row[abi.GUIDSize:]),
			length: binary.LittleEndian.Uint32(row[abi.GUIDSize+4:]),
		}
		if _, dup := out[e.guid]; dup {
			return nil, fmt.Errorf("%w: SNP certificate table: GUID %s appears twice", attest.ErrMalformed, e.guid)
		}
		out[e.guid] = nil
		entries = append(entries, e)
	}
	end := header
	for i, e := range entries {
		lo, hi := uint64(e.offset), uint64(e.offset)+uint64(e.length)
		switch {
		case e.length == 0:
			return nil, fmt.Errorf("%w: SNP certificate table: entry %d (%s) is empty", attest.ErrMalformed, i, e.guid)
		case lo < uint64(header):
			return nil, fmt.Errorf("%w: SNP certificate table: entry %d (%s) at offset %d lies in the %d-byte table header",
				attest.ErrMalformed, i, e.guid, e.offset, header)
		case hi > uint64(len(aux)):
			return nil, fmt.Errorf("%w: SNP certificate table: entry %d (%s) [%d:%d] runs past the %d-byte blob",
				attest.ErrMalformed, i, e.guid, lo, hi, len(aux))
		}
		end = max(end, int(hi))
		out[e.guid] = aux[lo:hi:hi]
	}
	if end != len(aux) {
		return nil, fmt.Errorf("%w: SNP certificate table: %d trailing bytes after the last certificate", attest.ErrMalformed, len(aux)-end)
	}
	// No overlaps, and nothing but zero padding between certificates.
	byOffset := slices.Clone(entries)
	slices.SortFunc(byOffset, func(a, b certTableEntry) int { return cmp.Compare(a.offset, b.offset) })
	next := header
	for _, e := range byOffset {
		if int(e.offset) < next {
			return nil, fmt.Errorf("%w: SNP certificate table: entry %s at offset %d overlaps the one before, which ends at %d",
				attest.ErrMalformed, e.guid, e.offset, next)
		}
		if !allZero(aux[next:e.offset]) {
			return nil, fmt.Errorf("%w: SNP certificate table: non-zero bytes in [%d:%d], which no entry covers", attest.ErrMalformed, next, e.offset)
		}
		next = int(e.offset) + int(e.length)
	}
	return out, nil
}

// EvidenceFromConfigFS turns a Linux configfs-tsm capture of an SEV-SNP
// guest (/sys/kernel/config/tsm/report/*/outblob and auxblob) into
// attest.FormatSNPReport evidence. outblob is the raw attestation report,
// parsed strictly (ParseReport); auxblob the GHCB certificate table the
// host supplied (see parseCertTable), possibly empty. Evidence.Certs is the
// VCEK or VLEK (the one the report's SIGNING_KEY names), then the ASK (or
// ASVK) and ARK when the table has them; without the endorsement
// certificate it is empty, and the verifier fetches the VCEK (a VLEK cannot
// be fetched). Certificates of other GUIDs are ignored. Every error wraps
// attest.ErrMalformed.
func EvidenceFromConfigFS(outblob, auxblob []byte) (*attest.Evidence, error) {
	r, err := ParseReport(outblob)
	if err != nil {
		return nil, fmt.Errorf("configfs-tsm outblob: %w", err)
	}
	certs, err := parseCertTable(auxblob)
	if err != nil {
		return nil, fmt.Errorf("configfs-tsm auxblob: %w", err)
	}
	info, err := abi.ParseSignerInfo(r.GetSignerInfo())
	if err != nil { // ParseReport checked it
		return nil, fmt.Errorf("%w: %w", attest.ErrMalformed, err)
	}
	ev := &attest.Evidence{Format: attest.FormatSNPReport, Data: bytes.Clone(outblob)}
	var ek []byte
	switch info.SigningKey {
	case abi.VcekReportSigner:
		ek = certs[guidVCEK]
	case abi.VlekReportSigner:
		ek = certs[guidVLEK]
	}
	if ek == nil {
		return ev, nil
	}
	ev.Certs = append(ev.Certs, bytes.Clone(ek))
	for _, g := range []guid{guidASK, guidARK} {
		if c := certs[g]; c != nil {
			ev.Certs = append(ev.Certs, bytes.Clone(c))
		}
	}
	return ev, nil
}
