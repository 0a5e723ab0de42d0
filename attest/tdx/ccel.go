package tdx

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"

	"github.com/google/go-eventlog/register"
	"github.com/google/go-eventlog/tcg"

	"github.com/trustbound/trustbound/attest"
)

// The Confidential Computing event log (CCEL) of a TD: the TCG PC Client
// crypto-agile event log (a "Spec ID Event03" header event, then
// TCG_PCR_EVENT2 entries) that TDVF and the kernel write to the CCEL ACPI
// table's log area, as Linux exposes it at
// /sys/firmware/acpi/tables/data/CCEL and guest-components' tdx attester
// sends it (cc_eventlog, trailing padding optional). Each event's
// "PCRIndex" is a CC measurement register index (GHCI 1.5, "TD
// measurement"): 0 is MRTD, 1..4 are RTMR0..3. RTMR[i] starts at 48 zero
// bytes and each event extends it: RTMR = SHA-384(RTMR ‖ event digest).
//
// Parsing and replay are github.com/google/go-eventlog's (tcg); what this
// adds is the decision of what must replay:
//   - the log must be crypto-agile and carry SHA-384 digests;
//   - events may name CC MR indexes 0..4 only; index 0 (MRTD, which the
//     TDX module computes and no event extends) is not replayed;
//   - an RTMR the log has events for must replay to the quote's value;
//   - RTMR0..2, which TDVF always extends, must be zero when the log has
//     no events for them (a log cut short does not pass);
//   - RTMR3 with no events in the log is reported "not covered": in
//     confidential containers the attestation agent extends it at run time
//     and keeps its own log, which is not the CCEL.

// RTMRCount is the number of TDX runtime measurement registers.
const RTMRCount = 4

// ErrEventLog is wrapped by ReplayCCEL when a well-formed log does not
// replay to the quote's RTMRs.
var ErrEventLog = errors.New("tdx: CC event log does not replay")

// CCELReplay is what replaying a CC event log established.
type CCELReplay struct {
	// Events is the number of measured events the log has for each RTMR.
	Events [RTMRCount]int
	// MRTDEvents is the number of events naming MRTD (CC MR index 0),
	// which are not replayed.
	MRTDEvents int
}

// Covered reports whether RTMR[i] was replayed from events of the log
// (rather than found zero with none).
func (r *CCELReplay) Covered(i int) bool { return i >= 0 && i < RTMRCount && r.Events[i] > 0 }

// Claims returns the replay's outcome as claims for attest.Claims.Platform:
// cc_eventlog "replayed", and cc_eventlog_rtmrN the number of events
// replayed into RTMR N, or "not covered" for an RTMR the log has no event
// for.
func (r *CCELReplay) Claims() map[string]string {
	out := map[string]string{"cc_eventlog": "replayed"}
	for i, n := range r.Events {
		v := strconv.Itoa(n)
		if n == 0 {
			v = "not covered"
		}
		out["cc_eventlog_rtmr"+strconv.Itoa(i)] = v
	}
	return out
}

// ccelMaxEvents bounds the events of one log: real TDVF and kernel logs
// have a few hundred.
const ccelMaxEvents = 1 << 14

// ReplayCCEL parses log, a CC event log (untrusted), and replays it into
// RTMR0..3, which must equal rtmrs, the verified quote's. It refuses a log
// that does not parse with attest.ErrMalformed, and one that does not
// replay with ErrEventLog, naming the first RTMR that differs ("event log
// does not replay to RTMR[i]").
func ReplayCCEL(log []byte, rtmrs [RTMRCount][48]byte) (out *CCELReplay, err error) {
	defer func() {
		// The log is untrusted and the parser is not ours: a panic there is
		// a refusal, not a crash.
		if r := recover(); r != nil {
			out, err = nil, fmt.Errorf("%w: cc_eventlog: go-eventlog: %v", attest.ErrMalformed, r)
		}
	}()
	if len(log) == 0 {
		return nil, fmt.Errorf("%w: cc_eventlog is empty", attest.ErrMalformed)
	}
	el, err := tcg.ParseEventLog(log, tcg.ParseOpts{AllowPadding: true})
	if err != nil {
		return nil, fmt.Errorf("%w: cc_eventlog: %v", attest.ErrMalformed, err)
	}
	if !hasSHA384(el.Algs) {
		return nil, fmt.Errorf("%w: cc_eventlog is not a crypto-agile log with SHA-384 digests (its algorithms: %v)", attest.ErrMalformed, el.Algs)
	}
	events := el.Events(register.HashSHA384)
	if len(events) > ccelMaxEvents {
		return nil, fmt.Errorf("%w: cc_eventlog has %d events, at most %d are replayed", attest.ErrMalformed, len(events), ccelMaxEvents)
	}
	res := &CCELReplay{}
	for n, e := range events {
		if e.Type == tcg.NoAction {
			continue
		}
		switch {
		case e.Index == 0:
			res.MRTDEvents++
		case e.Index >= 1 && e.Index <= RTMRCount:
			if len(e.Digest) != 48 {
				return nil, fmt.Errorf("%w: cc_eventlog event %d (RTMR[%d]) has no SHA-384 digest", attest.ErrMalformed, n, e.Index-1)
			}
			res.Events[e.Index-1]++
		default:
			return nil, fmt.Errorf("%w: cc_eventlog event %d names CC measurement register %d; a TD has 0 (MRTD) to 4 (RTMR3)", attest.ErrMalformed, n, e.Index)
		}
	}
	bank := register.RTMRBank{}
	for i := range rtmrs {
		bank.RTMRs = append(bank.RTMRs, register.RTMR{Index: i, Digest: bytes.Clone(rtmrs[i][:])})
	}
	if _, err := el.Verify(bank.MRs()); err != nil {
		var re tcg.ReplayError
		if errors.As(err, &re) && len(re.InvalidMRs) > 0 {
			return nil, fmt.Errorf("%w: event log does not replay to RTMR[%d]", ErrEventLog, minIndex(re.InvalidMRs)-1)
		}
		return nil, fmt.Errorf("%w: %v", ErrEventLog, err)
	}
	var zero [48]byte
	for i := 0; i < RTMRCount-1; i++ {
		if res.Events[i] == 0 && rtmrs[i] != zero {
			return nil, fmt.Errorf("%w: event log does not replay to RTMR[%d]: it has no event for it, and the quote's RTMR[%d] is not zero", ErrEventLog, i, i)
		}
	}
	return res, nil
}

func hasSHA384(algs []register.HashAlg) bool {
	for _, a := range algs {
		if a == register.HashSHA384 {
			return true
		}
	}
	return false
}

func minIndex(idx []int) int {
	m := idx[0]
	for _, i := range idx[1:] {
		m = min(m, i)
	}
	return m
}

// RTMRsOf reads RTMR0..3 back from verified TDX claims (Platform
// "rtmr0".."rtmr3", hex), as claims of this package carry them.
func RTMRsOf(c *attest.Claims) ([RTMRCount][48]byte, error) {
	var out [RTMRCount][48]byte
	for i := range out {
		name := "rtmr" + strconv.Itoa(i)
		v, ok := c.Platform[name]
		if !ok {
			return out, fmt.Errorf("tdx: the claims carry no %s", name)
		}
		b, err := decodeHex48(v)
		if err != nil {
			return out, fmt.Errorf("tdx: claim %s: %w", name, err)
		}
		out[i] = b
	}
	return out, nil
}

func decodeHex48(s string) ([48]byte, error) {
	var out [48]byte
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != len(out) {
		return out, errors.New("not 48 bytes of hex")
	}
	copy(out[:], b)
	return out, nil
}
