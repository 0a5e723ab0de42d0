package tee

import (
	"context"
	"crypto/rsa"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-tpm/tpm2"

	"github.com/trustbound/trustbound/attest/azure"
	"github.com/trustbound/trustbound/attest/simtee"
)

// paravisor plays Azure's paravisor in front of a swtpm: after a write to
// the user-data index (0x01400002) it renews the HCL report with that data
// as user-data, once the HCL report has been read renewAfter more times.
// Every open shares its one connection to swtpm, command by command, as
// processes share /dev/tpmrm0, so that concurrent attesters interleave.
type paravisor struct {
	mu         sync.Mutex
	tpm        TPM
	ak         *rsa.PublicKey
	renewAfter int

	pending  *[64]byte // user data written and not yet in the HCL report
	reads    int       // HCL report reads since the write
	renewals int
}

// The TPM 2.0 command codes the paravisor watches.
const (
	ccNVWrite      = 0x137
	ccNVReadPublic = 0x169
)

// newParavisor connects to s (keeping the connection for the test) and
// reads the AK the HCL reports are to name.
func newParavisor(t *testing.T, s *swtpm, renewAfter int) *paravisor {
	t.Helper()
	c, err := s.open()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	pub, err := tpm2.ReadPublic{ObjectHandle: akHandle}.Execute(c)
	if err != nil {
		t.Fatal(err)
	}
	ak, err := rsaPublic(pub.OutPublic)
	if err != nil {
		t.Fatal(err)
	}
	return &paravisor{tpm: c, ak: ak, renewAfter: renewAfter}
}

func (p *paravisor) open() (TPM, error) { return paravisorConn{p}, nil }

func (p *paravisor) stats() (renewals int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.renewals
}

type paravisorConn struct{ p *paravisor }

func (c paravisorConn) Send(cmd []byte) ([]byte, error) { return c.p.send(cmd) }
func (paravisorConn) Close() error                      { return nil }

func (p *paravisor) send(cmd []byte) ([]byte, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(cmd) < 14 {
		return nil, errors.New("paravisor: short command")
	}
	cc := binary.BigEndian.Uint32(cmd[6:])
	if cc == ccNVReadPublic && tpm2.TPMHandle(binary.BigEndian.Uint32(cmd[10:])) == nvHCLReport && p.pending != nil {
		if p.reads >= p.renewAfter {
			if err := p.renew(*p.pending); err != nil {
				return nil, err
			}
			p.pending = nil
		}
		p.reads++
	}
	rsp, err := p.tpm.Send(cmd)
	if err != nil || len(rsp) < 10 || binary.BigEndian.Uint32(rsp[6:]) != 0 {
		return rsp, err
	}
	if cc == ccNVWrite && len(cmd) >= 22 && tpm2.TPMHandle(binary.BigEndian.Uint32(cmd[14:])) == nvUserData {
		// authHandle, nvIndex, the authorization area, then TPM2B data.
		off := 22 + int(binary.BigEndian.Uint32(cmd[18:]))
		if off+2 > len(cmd) {
			return nil, errors.New("paravisor: NV_Write command too short")
		}
		n := int(binary.BigEndian.Uint16(cmd[off:]))
		if n != 64 || off+2+n > len(cmd) {
			return nil, fmt.Errorf("paravisor: %d bytes of user data, want 64", n)
		}
		var ud [64]byte
		copy(ud[:], cmd[off+2:])
		p.pending, p.reads = &ud, 0
	}
	return rsp, nil
}

// renew writes a new HCL report whose runtime claims carry userData.
func (p *paravisor) renew(userData [64]byte) error {
	varData, err := runtimeClaimsJSON(p.ak, userData)
	if err != nil {
		return err
	}
	ev, err := (simtee.SNP{Measurement: [48]byte{0xaa}}).Attest(context.Background(), varDataReportData(varData))
	if err != nil {
		return err
	}
	if err := defineNV(p.tpm, nvHCLReport, simtee.AzureHCLReport(uint32(azure.ReportTypeSNP), ev.Data, varData)); err != nil {
		return err
	}
	p.renewals++
	return nil
}

// fakeClock is the wait for the paravisor without sleeping: each wait
// advances the time by what was asked.
type fakeClock struct {
	mu    sync.Mutex
	t     time.Time
	waits int
}

func (c *fakeClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func (c *fakeClock) wait(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
	c.waits++
	return nil
}
