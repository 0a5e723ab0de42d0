package tee

import (
	"context"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"

	"github.com/trustbound/trustbound/attest/simtee"
)

// swtpm is a software TPM started for one test: its raw command port is
// addr, and it dies with the test.
type swtpm struct {
	addr string
}

// startSWTPM starts swtpm on free loopback ports with a fresh state
// directory. Without swtpm the test is skipped, or fails when CI is set.
// swtpm cannot be handed a listening socket or report a port it chose, so
// a port taken between freePort and swtpm's bind (it then exits) is
// retried with new ports, a few times.
func startSWTPM(t *testing.T) *swtpm {
	t.Helper()
	bin, err := exec.LookPath("swtpm")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("swtpm is not installed (scripts/deps.sh installs it): %v", err)
		}
		t.Skipf("swtpm is not installed; skipping the vTPM test (make test installs it via scripts/deps.sh): %v", err)
	}
	var why []string
	for range 5 {
		s, err := tryStartSWTPM(t, bin)
		if err == nil {
			return s
		}
		why = append(why, err.Error())
	}
	t.Fatalf("swtpm did not start: %s", strings.Join(why, "; "))
	return nil
}

// tryStartSWTPM starts one swtpm and waits until it accepts connections;
// an error means it exited (a port was taken) or never listened.
func tryStartSWTPM(t *testing.T, bin string) (*swtpm, error) {
	t.Helper()
	port, ctrl := freePort(t), freePort(t)
	cmd := exec.Command(bin, "socket", "--tpm2",
		"--tpmstate", "dir="+t.TempDir(),
		"--server", "type=tcp,port="+strconv.Itoa(port)+",bindaddr=127.0.0.1",
		"--ctrl", "type=tcp,port="+strconv.Itoa(ctrl)+",bindaddr=127.0.0.1",
		"--flags", "not-need-init,startup-clear")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting swtpm: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stop := func() {
		_ = cmd.Process.Kill()
		<-exited
	}
	s := &swtpm{addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port))}
	// Wait until it accepts connections (or dies).
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", s.addr, time.Second)
		if err == nil {
			c.Close()
			select {
			case err := <-exited: // another process has the port
				return nil, fmt.Errorf("swtpm on port %d exited: %v: %s", port, err, stderr.String())
			default:
			}
			t.Cleanup(stop)
			return s, nil
		}
		select {
		case err := <-exited:
			return nil, fmt.Errorf("swtpm on ports %d and %d exited: %v: %s", port, ctrl, err, stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			stop()
			return nil, fmt.Errorf("swtpm did not listen on %s: %s", s.addr, stderr.String())
		}
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// open connects to the swtpm's command port.
func (s *swtpm) open() (TPM, error) { return DialTCPTPM(s.addr) }

// with runs f on a connection to the swtpm and closes it: swtpm serves
// one connection at a time, so none may stay open.
func (s *swtpm) with(t *testing.T, f func(tpm TPM)) {
	t.Helper()
	c, err := s.open()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	f(c)
}

// provisionAK makes the AK and persists it at 0x81000003, as Azure
// provisions the vTPM, and returns its public key. It uses a fresh key
// per call (the unique field is random).
func provisionAK(t *testing.T, tpm transport.TPM, unique byte) *rsa.PublicKey {
	t.Helper()
	tmpl := simtee.AzureAKPublic(append([]byte{unique}, make([]byte, 255)...))
	cp, err := tpm2.CreatePrimary{
		PrimaryHandle: tpm2.AuthHandle{Handle: tpm2.TPMRHOwner, Auth: tpm2.PasswordAuth(nil)},
		InPublic:      tpm2.New2B(*tmpl),
	}.Execute(tpm)
	if err != nil {
		t.Fatalf("creating the AK: %v", err)
	}
	defer tpm2.FlushContext{FlushHandle: cp.ObjectHandle}.Execute(tpm)
	// Replace any AK persisted before.
	if old, err := (tpm2.ReadPublic{ObjectHandle: akHandle}).Execute(tpm); err == nil {
		if _, err := (tpm2.EvictControl{
			Auth:             tpm2.AuthHandle{Handle: tpm2.TPMRHOwner, Auth: tpm2.PasswordAuth(nil)},
			ObjectHandle:     tpm2.NamedHandle{Handle: akHandle, Name: old.Name},
			PersistentHandle: akHandle,
		}).Execute(tpm); err != nil {
			t.Fatalf("evicting the old AK: %v", err)
		}
	}
	if _, err := (tpm2.EvictControl{
		Auth:             tpm2.AuthHandle{Handle: tpm2.TPMRHOwner, Auth: tpm2.PasswordAuth(nil)},
		ObjectHandle:     tpm2.NamedHandle{Handle: cp.ObjectHandle, Name: cp.Name},
		PersistentHandle: akHandle,
	}).Execute(tpm); err != nil {
		t.Fatalf("persisting the AK at %#x: %v", uint32(akHandle), err)
	}
	k, err := rsaPublic(cp.OutPublic)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// runtimeClaims is the var data the paravisor would write: only the AK
// (the EK would not fit swtpm's NV), the VM configuration and user-data.
func runtimeClaims(t *testing.T, ak *rsa.PublicKey, userData [64]byte) []byte {
	t.Helper()
	b, err := runtimeClaimsJSON(ak, userData)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func runtimeClaimsJSON(ak *rsa.PublicKey, userData [64]byte) ([]byte, error) {
	return json.Marshal(map[string]any{
		"keys": []map[string]any{{
			"kid": "HCLAkPub", "key_ops": []string{"sign"}, "kty": "RSA",
			"e": base64.RawURLEncoding.EncodeToString(big.NewInt(int64(ak.E)).Bytes()),
			"n": base64.RawURLEncoding.EncodeToString(ak.N.Bytes()),
		}},
		"vm-configuration": map[string]any{"secure-boot": true, "tpm-enabled": true, "vmUniqueId": "swtpm-vm"},
		"user-data":        strings.ToUpper(hex.EncodeToString(userData[:])),
	})
}

// varDataReportData is what the hardware report must bind: SHA-256 of the
// var data, zero padded.
func varDataReportData(varData []byte) [64]byte {
	var rd [64]byte
	h := sha256.Sum256(varData)
	copy(rd[:], h[:])
	return rd
}

// writeNV (re)defines NV index h with data, owner read and write, writing
// at most 1024 bytes a call.
func writeNV(t *testing.T, tpm transport.TPM, h tpm2.TPMHandle, data []byte) {
	t.Helper()
	if err := defineNV(tpm, h, data); err != nil {
		t.Fatal(err)
	}
}

// defineNV is writeNV for callers that are not the test's goroutine.
func defineNV(tpm transport.TPM, h tpm2.TPMHandle, data []byte) error {
	owner := tpm2.AuthHandle{Handle: tpm2.TPMRHOwner, Auth: tpm2.PasswordAuth(nil)}
	if _, name, found, err := nvPublic(tpm, h); err != nil {
		return err
	} else if found {
		if _, err := (tpm2.NVUndefineSpace{AuthHandle: owner, NVIndex: tpm2.NamedHandle{Handle: h, Name: name}}).Execute(tpm); err != nil {
			return fmt.Errorf("undefining NV %#x: %w", uint32(h), err)
		}
	}
	if _, err := (tpm2.NVDefineSpace{AuthHandle: owner, PublicInfo: tpm2.New2B(tpm2.TPMSNVPublic{
		NVIndex: h, NameAlg: tpm2.TPMAlgSHA256,
		Attributes: tpm2.TPMANV{OwnerWrite: true, OwnerRead: true, NoDA: true, NT: tpm2.TPMNTOrdinary},
		DataSize:   uint16(len(data)),
	})}).Execute(tpm); err != nil {
		return fmt.Errorf("defining NV %#x of %d bytes: %w", uint32(h), len(data), err)
	}
	_, name, _, err := nvPublic(tpm, h)
	if err != nil {
		return err
	}
	for off := 0; off < len(data); off += 1024 {
		end := min(off+1024, len(data))
		if _, err := (tpm2.NVWrite{AuthHandle: owner, NVIndex: tpm2.NamedHandle{Handle: h, Name: name},
			Data: tpm2.TPM2BMaxNVBuffer{Buffer: data[off:end]}, Offset: uint16(off)}).Execute(tpm); err != nil {
			return fmt.Errorf("writing NV %#x at %d: %w", uint32(h), off, err)
		}
	}
	return nil
}

// extendPCR extends SHA-256 PCR i with a digest of b.
func extendPCR(t *testing.T, tpm transport.TPM, i int, b string) {
	t.Helper()
	d := sha256.Sum256([]byte(b))
	if _, err := (tpm2.PCRExtend{
		PCRHandle: tpm2.AuthHandle{Handle: tpm2.TPMHandle(i), Auth: tpm2.PasswordAuth(nil)},
		Digests:   tpm2.TPMLDigestValues{Digests: []tpm2.TPMTHA{{HashAlg: tpm2.TPMAlgSHA256, Digest: d[:]}}},
	}).Execute(tpm); err != nil {
		t.Fatalf("extending PCR %d: %v", i, err)
	}
}

var errNoIMDS = errors.New("no IMDS in tests")

func noTDQuote(context.Context, []byte) ([]byte, error) { return nil, errNoIMDS }
