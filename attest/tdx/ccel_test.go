package tdx_test

import (
	"bytes"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/binary"
	"errors"
	"strings"
	"testing"

	"github.com/trustbound/trustbound/attest"
	"github.com/trustbound/trustbound/attest/tdx"
)

// ccelEvent is one event of a test CC event log: the RTMR it extends (-1
// for MRTD, CC MR index 0), its type and data; its SHA-384 digest is of
// the data.
type ccelEvent struct {
	rtmr int
	typ  uint32
	data []byte
}

// buildCCEL writes a TCG crypto-agile event log with SHA-384 digests (or
// SHA-256 only, when sha256Only) and returns it with the RTMRs its events
// extend to.
func buildCCEL(events []ccelEvent, sha256Only bool) ([]byte, [4][48]byte) {
	le := binary.LittleEndian
	alg, size := uint16(0x000C), uint16(48)
	if sha256Only {
		alg, size = 0x000B, 32
	}
	// The "Spec ID Event03" header event, in the SHA-1 event format.
	var spec []byte
	spec = append(spec, "Spec ID Event03\x00"...)
	spec = le.AppendUint32(spec, 0)        // platform class
	spec = append(spec, 0, 2, 0, 2)        // version 2.0, errata 0, uintn size
	spec = le.AppendUint32(spec, 1)        // one algorithm
	spec = le.AppendUint16(spec, alg)      // its id
	spec = le.AppendUint16(spec, size)     // and digest size
	spec = append(spec, 0)                 // no vendor info
	log := le.AppendUint32(nil, 0)         // PCR index
	log = le.AppendUint32(log, 3)          // EV_NO_ACTION
	log = append(log, make([]byte, 20)...) // SHA-1 digest
	log = le.AppendUint32(log, uint32(len(spec)))
	log = append(log, spec...)
	var rtmrs [4][48]byte
	for _, e := range events {
		log = le.AppendUint32(log, uint32(e.rtmr+1))
		log = le.AppendUint32(log, e.typ)
		log = le.AppendUint32(log, 1)
		log = le.AppendUint16(log, alg)
		if sha256Only {
			d := sha256.Sum256(e.data)
			log = append(log, d[:]...)
		} else {
			d := sha512.Sum384(e.data)
			log = append(log, d[:]...)
			if e.rtmr >= 0 {
				rtmrs[e.rtmr] = sha512.Sum384(append(rtmrs[e.rtmr][:], d[:]...))
			}
		}
		log = le.AppendUint32(log, uint32(len(e.data)))
		log = append(log, e.data...)
	}
	return log, rtmrs
}

var testEvents = []ccelEvent{
	{0, 0x80000001, []byte("EFI variable: SecureBoot")},
	{0, 0x80000008, []byte("TD HOB")},
	{1, 0x80000003, []byte("EFI boot services application: shim")},
	{1, 0x80000003, []byte("EFI boot services application: grub")},
	{2, 0x0000000D, []byte("linux /vmlinuz console=hvc0")},
	{-1, 0x80000001, []byte("an event naming MRTD, not replayed")},
}

func TestReplayCCEL(t *testing.T) {
	log, rtmrs := buildCCEL(testEvents, false)
	r, err := tdx.ReplayCCEL(log, rtmrs)
	if err != nil {
		t.Fatal(err)
	}
	if r.Events != [4]int{2, 2, 1, 0} || r.MRTDEvents != 1 || r.Covered(3) || !r.Covered(0) {
		t.Errorf("replay %+v", r)
	}
	if c := r.Claims(); c["cc_eventlog"] != "replayed" || c["cc_eventlog_rtmr1"] != "2" || c["cc_eventlog_rtmr3"] != "not covered" {
		t.Errorf("claims %v", c)
	}
	// The CCEL log area's padding (0xFF) after the last event is allowed.
	if _, err := tdx.ReplayCCEL(append(bytes.Clone(log), bytes.Repeat([]byte{0xFF}, 64)...), rtmrs); err != nil {
		t.Errorf("padded: %v", err)
	}
	// RTMR3 extended at run time (by the attestation agent, not in the
	// CCEL): not covered, not refused.
	r3 := rtmrs
	r3[3] = sha512.Sum384([]byte("runtime"))
	if _, err := tdx.ReplayCCEL(log, r3); err != nil {
		t.Errorf("RTMR3 outside the log: %v", err)
	}

	// Event data is not what RTMRs measure (an EFI application's event
	// digests the image, not the event's text): changed data still
	// replays, so nothing here reads event data as measured.
	if _, err := tdx.ReplayCCEL(tamper(log, []byte("grub"), []byte("grut")), rtmrs); err != nil {
		t.Errorf("event data changed: %v", err)
	}

	refused := []struct {
		name  string
		log   []byte
		rtmrs [4][48]byte
		is    error
		msg   string
	}{
		{"one event's digest changed", tamperDigest(t, log), rtmrs, tdx.ErrEventLog, "does not replay to RTMR[0]"},
		{"quote RTMR2 differs", log, with(rtmrs, 2, 1), tdx.ErrEventLog, "does not replay to RTMR[2]"},
		{"RTMR3 has events and differs", appendEvent(log, ccelEvent{3, 13, []byte("x")}), rtmrs, tdx.ErrEventLog, "does not replay to RTMR[3]"},
		{"no event for a non-zero RTMR2", first(buildCCEL(testEvents[:4], false)), rtmrs, tdx.ErrEventLog, "RTMR[2]: it has no event"},
		{"SHA-256 only", first(buildCCEL(testEvents, true)), rtmrs, attest.ErrMalformed, "SHA-384"},
		{"CC MR index 5", appendEvent(log, ccelEvent{4, 13, []byte("x")}), rtmrs, attest.ErrMalformed, "measurement register 5"},
		{"truncated", log[:len(log)-3], rtmrs, attest.ErrMalformed, "cc_eventlog"},
		{"empty", nil, rtmrs, attest.ErrMalformed, "empty"},
		{"not a log", []byte("hello, world, this is not an event log at all"), rtmrs, attest.ErrMalformed, "cc_eventlog"},
	}
	for _, c := range refused {
		_, err := tdx.ReplayCCEL(c.log, c.rtmrs)
		if !errors.Is(err, c.is) || err == nil || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%s: %v, want %v containing %q", c.name, err, c.is, c.msg)
		}
	}
}

// The real CCEL of a COS 113 TD on GCP replays to the RTMRs of that TD's
// quote (both from go-eventlog / go-tdx-guest test data).
func TestReplayCCELReal(t *testing.T) {
	log := readTestdata(t, "goeventlog-cos113-ccel.bin")
	q, err := tdx.ParseQuote(readTestdata(t, "gotdxguest-cos113-quote.dat"))
	if err != nil {
		t.Fatal(err)
	}
	r, err := tdx.ReplayCCEL(log, q.Body.RTMR)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if !r.Covered(i) {
			t.Errorf("RTMR[%d] not covered: %+v", i, r)
		}
	}
	if r.Covered(3) {
		t.Errorf("RTMR3 covered: %+v", r)
	}
	// As Linux exposes it, padded with 0xFF to the log area's size.
	if _, err := tdx.ReplayCCEL(append(bytes.Clone(log), bytes.Repeat([]byte{0xFF}, 4096)...), q.Body.RTMR); err != nil {
		t.Errorf("padded: %v", err)
	}
	bad := q.Body.RTMR
	bad[1][47] ^= 1
	if _, err := tdx.ReplayCCEL(log, bad); !errors.Is(err, tdx.ErrEventLog) || !strings.Contains(err.Error(), "RTMR[1]") {
		t.Errorf("another RTMR1: %v", err)
	}
}

func first(log []byte, _ [4][48]byte) []byte { return log }

func with(r [4][48]byte, i int, b byte) [4][48]byte {
	r[i][0] ^= b
	return r
}

func tamper(log, old, new []byte) []byte {
	return bytes.Replace(bytes.Clone(log), old, new, 1)
}

// tamperDigest flips a bit of the first RTMR0 event's digest.
func tamperDigest(t *testing.T, log []byte) []byte {
	t.Helper()
	d := sha512.Sum384(testEvents[0].data)
	i := bytes.Index(log, d[:])
	if i < 0 {
		t.Fatal("digest not found")
	}
	out := bytes.Clone(log)
	out[i] ^= 1
	return out
}

func appendEvent(log []byte, e ccelEvent) []byte {
	le := binary.LittleEndian
	d := sha512.Sum384(e.data)
	out := bytes.Clone(log)
	out = le.AppendUint32(out, uint32(e.rtmr+1))
	out = le.AppendUint32(out, e.typ)
	out = le.AppendUint32(out, 1)
	out = le.AppendUint16(out, 0x000C)
	out = append(out, d[:]...)
	out = le.AppendUint32(out, uint32(len(e.data)))
	return append(out, e.data...)
}

// FuzzReplayCCEL: the log parser never panics and refuses only with
// attest.ErrMalformed or ErrEventLog; what replays, replays again.
func FuzzReplayCCEL(f *testing.F) {
	log, rtmrs := buildCCEL(testEvents, false)
	f.Add(log, rtmrs[0][:], rtmrs[1][:], rtmrs[2][:])
	f.Add(readTestdata(f, "goeventlog-cos113-ccel.bin"), []byte{}, []byte{}, []byte{})
	f.Add(first(buildCCEL(testEvents, true)), []byte{}, []byte{}, []byte{})
	f.Add(appendEvent(log, ccelEvent{4, 13, nil}), rtmrs[0][:], rtmrs[1][:], rtmrs[2][:])
	f.Fuzz(func(t *testing.T, b, r0, r1, r2 []byte) {
		var rt [4][48]byte
		copy(rt[0][:], r0)
		copy(rt[1][:], r1)
		copy(rt[2][:], r2)
		r, err := tdx.ReplayCCEL(b, rt)
		if err != nil {
			if !errors.Is(err, attest.ErrMalformed) && !errors.Is(err, tdx.ErrEventLog) {
				t.Fatalf("refused with neither ErrMalformed nor ErrEventLog: %v", err)
			}
			return
		}
		again, err := tdx.ReplayCCEL(b, rt)
		if err != nil || again.Events != r.Events {
			t.Fatalf("replayed once, not twice: %v", err)
		}
	})
}
