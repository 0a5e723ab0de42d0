package bench

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"fmt"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"time"

	"github.com/trustbound/trustbound/api"
	"github.com/trustbound/trustbound/identity"
	"github.com/trustbound/trustbound/keybroker"
	"github.com/trustbound/trustbound/store"
	"github.com/trustbound/trustbound/token"
)

// Floor is what one round trip on the combined route cannot do without,
// each step measured alone in the same run with the code the coordinator
// and the agent run: the cryptography and the one durable write, and
// nothing of TLS, HTTP, JSON, appraisal, garbage collection or
// scheduling. Its sums bound what any implementation of the same round
// trip could reach on these cores, so the round-trip figures can be read
// against it. Where the floor simplifies, it leaves work out, never adds
// it, so its ceilings are if anything too high: it does not count reading
// and unsealing the secrets at rest, parsing the identity key, the
// kernel's own threads' share of an fsync, or (in the minimal ceiling)
// the client's HPKE open.
type Floor struct {
	// VerifyMs is the warm verification (RoundTrips.VerifyMs).
	VerifyMs float64 `json:"verifyMs"`
	// SealMs: the TEE's HPKE key parsed from its runtime data and both
	// secrets sealed under one context (ML-KEM-768 + X25519).
	SealMs float64 `json:"sealMs"`
	// CertificateMs: the X.509-SVID issued by the manifest's intermediate
	// (x509.CreateCertificate: an ECDSA P-256 signature and its check).
	CertificateMs float64 `json:"certificateMs"`
	// TokenMs: the attestation token of the same size signed (ES256).
	TokenMs float64 `json:"tokenMs"`
	// RecordMs: a release's audit write as the keybroker makes it (two
	// records of the same size and the manifest check, one Apply)
	// committed to a bbolt store with fdatasync, in CPU time per release
	// with floorWriters releases writing at once, so group commit shares
	// commits between them as it can at c=16 — the least a durable
	// record costs. RecordSoloMs is the same one writer at a time, and
	// RecordWallMs that one's elapsed time, mostly waiting for the disk.
	// The CPU the kernel spends on other threads for an fsync (the
	// journal) is not counted: these figures are lower bounds.
	RecordMs     float64 `json:"recordMs"`
	RecordSoloMs float64 `json:"recordSoloMs"`
	RecordWallMs float64 `json:"recordWallMs"`
	// CoordinatorMs is the sum of the above: the coordinator's floor.
	CoordinatorMs float64 `json:"coordinatorMs"`
	// ClientMs is the clients' own crypto per round trip
	// (RoundTrips.ClientCPUMs): the simulated report's P-384 signature,
	// the HPKE open and the certificate chain check.
	ClientMs float64 `json:"clientMs"`
	// MaxPctOfVerifyBound is VerifyMs ÷ (CoordinatorMs + ClientMs): the
	// most of what verification alone allows that a round trip with
	// these steps can reach with its clients on the same cores.
	MaxPctOfVerifyBound float64 `json:"maxPctOfVerifyBound"`
	// MaxCoordinatorPct is VerifyMs ÷ CoordinatorMs: the same for the
	// coordinator alone.
	MaxCoordinatorPct float64 `json:"maxCoordinatorPct"`
	// ReportSignMs is the simulated TEE's report signature alone (ECDSA
	// P-384), part of ClientMs (RoundTrips.AttestOnlyClientCPUMs).
	ReportSignMs float64 `json:"reportSignMs"`
	// MinimalMaxPct and MinimalMaxCoordinatorPct are the same ceilings
	// for the least a release can be: verification and the seal on the
	// coordinator (no token, no certificate, and the durable record taken
	// as free, as if group commit spread it over many releases), and only
	// the report signature on the client.
	MinimalMaxPct            float64 `json:"minimalMaxPct"`
	MinimalMaxCoordinatorPct float64 `json:"minimalMaxCoordinatorPct"`
}

// floorAuditValue is the size of a release's audit record (a JSON
// keybroker record: workload, secret, version, digests, token id, time).
const floorAuditValue = 320

// floorWriters is how many releases write their audit records at once in
// RecordMs: the round trips' c=16.
const floorWriters = 16

// runFloor measures the floor's steps. rd is the runtime data of a round
// trip and ar the answer the coordinator gave to it (what the steps are
// sized by); verifyMs, clientMs and reportSignMs (RoundTrips.VerifyMs,
// ClientCPUMs and AttestOnlyClientCPUMs) were measured already.
func runFloor(ctx context.Context, t timing, dir string, rd []byte, ar *api.AttestReleaseResponse, verifyMs, clientMs, reportSignMs float64) (*Floor, error) {
	f := &Floor{VerifyMs: verifyMs, ClientMs: clientMs, ReportSignMs: reportSignMs}
	doc, err := api.ParseRuntimeData(rd)
	if err != nil {
		return nil, err
	}
	secrets := [][]byte{bytes.Repeat([]byte{0x5a}, 32), bytes.Repeat([]byte{0xa5}, 32)}
	aads := []string{"bench secret one", "bench secret two"}
	info := "trustbound bench release " + strings.Repeat("x", 64)
	if f.SealMs, err = msOf(t, func() error {
		to, err := keybroker.RecipientKey(doc.HPKE)
		if err != nil {
			return err
		}
		_, _, err = keybroker.WrapAll(to, info, aads, secrets)
		return err
	}); err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}

	now := time.Now()
	root, err := identity.NewCA("bench.example", now)
	if err != nil {
		return nil, err
	}
	inter, err := root.NewIntermediate("bench", now, 24*time.Hour)
	if err != nil {
		return nil, err
	}
	idJWK, ok := doc.Key(api.KeyIdentity)
	if !ok {
		return nil, fmt.Errorf("runtime data has no %q key", api.KeyIdentity)
	}
	idPub, err := idJWK.PublicKey()
	if err != nil {
		return nil, err
	}
	if _, ok := idPub.(*ecdsa.PublicKey); !ok {
		return nil, fmt.Errorf("identity key is a %T, not ECDSA", idPub)
	}
	if f.CertificateMs, err = msOf(t, func() error {
		_, err := inter.IssueWorkload(identity.WorkloadRequest{PublicKey: idPub, TrustDomain: "bench.example",
			Model: "cvm", Workload: "ledger-vm", Simulated: true, NotBefore: time.Now()})
		return err
	}); err != nil {
		return nil, fmt.Errorf("certificate: %w", err)
	}

	claims, err := tokenClaims(ar.Token)
	if err != nil {
		return nil, err
	}
	key, err := token.GenerateKey(token.ES256, now)
	if err != nil {
		return nil, err
	}
	ring, err := token.NewKeyring(24*time.Hour, key)
	if err != nil {
		return nil, err
	}
	iss, err := token.NewIssuer(token.Config{Issuer: claims.Issuer, Keyring: ring, TTL: time.Hour})
	if err != nil {
		return nil, err
	}
	if f.TokenMs, err = msOf(t, func() error { _, _, err := iss.IssueClaims(*claims, time.Now()); return err }); err != nil {
		return nil, fmt.Errorf("token: %w", err)
	}

	st, err := store.OpenBolt(filepath.Join(dir, "floor.db"), store.BoltOptions{})
	if err != nil {
		return nil, err
	}
	defer st.Close()
	manifestRev, err := store.Put(ctx, st, "manifest", []byte("m"), 0)
	if err != nil {
		return nil, err
	}
	value := bytes.Repeat([]byte{'r'}, floorAuditValue)
	var n atomic.Int64
	record := func() error {
		i := n.Add(1)
		_, err := st.Apply(ctx,
			store.Op{Key: fmt.Sprintf("audit/%016d-a", i), Value: value},
			store.Op{Key: fmt.Sprintf("audit/%016d-b", i), Value: value},
			store.Op{Key: "manifest", Expect: manifestRev, Check: true})
		return err
	}
	runtime.GC() // the garbage of the round trips before is not the record's
	ns, err := t.measureCPU(record)
	if err != nil {
		return nil, fmt.Errorf("record: %w", err)
	}
	f.RecordSoloMs = ns / 1e6
	if f.RecordWallMs, err = msOf(t, record); err != nil {
		return nil, fmt.Errorf("record: %w", err)
	}
	if f.RecordMs, err = parallelCPUMs(t, floorWriters, f.RecordWallMs, record); err != nil {
		return nil, fmt.Errorf("record: %w", err)
	}

	f.CoordinatorMs = f.VerifyMs + f.SealMs + f.CertificateMs + f.TokenMs + f.RecordMs
	f.MaxPctOfVerifyBound = 100 * f.VerifyMs / (f.CoordinatorMs + f.ClientMs)
	f.MaxCoordinatorPct = 100 * f.VerifyMs / f.CoordinatorMs
	minimal := f.VerifyMs + f.SealMs
	f.MinimalMaxPct = 100 * f.VerifyMs / (minimal + f.ReportSignMs)
	f.MinimalMaxCoordinatorPct = 100 * f.VerifyMs / minimal
	return f, nil
}

// parallelCPUMs is this process's CPU time per call of op with writers
// goroutines calling it at once, in milliseconds: the median of t.reps
// repetitions, each long enough (by wallMs, op's elapsed time alone) to
// take about t.minRep.
func parallelCPUMs(t timing, writers int, wallMs float64, op func() error) (float64, error) {
	per := max(1, int(float64(t.minRep)/(wallMs*1e6)))
	samples := make([]float64, 0, t.reps)
	for range t.reps {
		runtime.GC()
		errs := make(chan error, writers)
		start := cpuTime()
		for range writers {
			go func() {
				for range per {
					if err := op(); err != nil {
						errs <- err
						return
					}
				}
				errs <- nil
			}()
		}
		for range writers {
			if err := <-errs; err != nil {
				return 0, err
			}
		}
		samples = append(samples, float64(cpuTime()-start)/1e6/float64(writers*per))
	}
	return median(samples), nil
}

// msOf is t.measure in milliseconds.
func msOf(t timing, op func() error) (float64, error) {
	ns, err := t.measure(op)
	return ns / 1e6, err
}

// tokenClaims reads the claims of a token the coordinator issued, without
// checking its signature (the floor only re-signs claims of its size).
func tokenClaims(raw string) (*token.Claims, error) {
	payload, err := token.Payload(raw)
	if err != nil {
		return nil, fmt.Errorf("token: %w", err)
	}
	var c token.Claims
	if err := c.UnmarshalJSON(payload); err != nil {
		return nil, fmt.Errorf("token payload: %w", err)
	}
	return &c, nil
}

// floorNote is the floor in one line, for the text report.
func (f *Floor) floorNote() string {
	return fmt.Sprintf("verify %.3f + seal %.3f + certificate %.3f + token %.3f + durable record %.3f (%.3f one writer at a time) = coordinator %.3f ms; clients' crypto %.3f ms (of it the report signature %.3f ms)",
		f.VerifyMs, f.SealMs, f.CertificateMs, f.TokenMs, f.RecordMs, f.RecordSoloMs, f.CoordinatorMs, f.ClientMs, f.ReportSignMs)
}
