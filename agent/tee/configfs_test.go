package tee

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-configfs-tsm/configfs/configfsi"

	"github.com/trustbound/trustbound/attest"
	"github.com/trustbound/trustbound/attest/simtee"
)

// fakeKernel plays the configfs-tsm side of the Linux kernel over a real
// directory tree: a new report entry gets its attributes, a write to
// inblob makes outblob (and auxblob) a fresh report of that data and bumps
// generation, and removing an entry removes its attributes.
type fakeKernel struct {
	DirClient
	t        *testing.T
	provider string
	// report makes outblob and auxblob for an inblob.
	report func(inblob []byte) (outblob, auxblob []byte)
	// meddle, when set, runs after each report, as another writer would.
	meddle func(entry string)
}

func (k *fakeKernel) MkdirTemp(dir, pattern string) (string, error) {
	entry, err := k.DirClient.MkdirTemp(dir, pattern)
	if err != nil {
		return "", err
	}
	for name, v := range map[string]string{"generation": "0\n", "provider": k.provider + "\n", "inblob": "", "outblob": "", "auxblob": ""} {
		if err := os.WriteFile(k.path(entry, name), []byte(v), 0o600); err != nil {
			return "", err
		}
	}
	return entry, nil
}

func (k *fakeKernel) path(entry, name string) string {
	l, err := k.local(entry + "/" + name)
	if err != nil {
		k.t.Fatal(err)
	}
	return l
}

func (k *fakeKernel) WriteFile(name string, contents []byte) error {
	if err := k.DirClient.WriteFile(name, contents); err != nil {
		return err
	}
	entry, attr := filepath.Dir(name), filepath.Base(name)
	gen, err := os.ReadFile(k.path(entry, "generation"))
	if err != nil {
		return err
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(gen)))
	if err != nil {
		return err
	}
	if err := os.WriteFile(k.path(entry, "generation"), []byte(strconv.Itoa(n+1)+"\n"), 0o600); err != nil {
		return err
	}
	if attr == "inblob" {
		out, aux := k.report(contents)
		if err := os.WriteFile(k.path(entry, "outblob"), out, 0o600); err != nil {
			return err
		}
		if err := os.WriteFile(k.path(entry, "auxblob"), aux, 0o600); err != nil {
			return err
		}
		if k.meddle != nil {
			k.meddle(entry)
		}
	}
	return nil
}

func (k *fakeKernel) RemoveAll(name string) error {
	l, err := k.local(name)
	if err != nil {
		return err
	}
	return os.RemoveAll(l)
}

// fakeTSM makes the on-disk tree sys/kernel/config/tsm/report under a temp
// root and returns the root and the kernel serving it.
func fakeTSM(t *testing.T, provider string, report func([]byte) ([]byte, []byte)) (string, *fakeKernel) {
	t.Helper()
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, configFSPath), 0o700); err != nil {
		t.Fatal(err)
	}
	return root, &fakeKernel{DirClient: DirClient(filepath.Join(root, "sys/kernel/config/tsm")), t: t, provider: provider, report: report}
}

// certTable lays out a GHCB certificate table of one VCEK entry.
func certTable(vcek []byte) []byte {
	const rows = 2 * 24
	b := make([]byte, rows+len(vcek))
	guid := []byte{0x63, 0xda, 0x75, 0x8d, 0xe6, 0x64, 0x45, 0x64, 0xad, 0xc5, 0xf4, 0xb9, 0x3b, 0xe8, 0xac, 0xcd} // VCEK
	copy(b, guid)
	b[16], b[20] = rows, byte(len(vcek))
	b[21] = byte(len(vcek) >> 8)
	copy(b[rows:], vcek)
	return b
}

func snpKernel(t *testing.T) func([]byte) ([]byte, []byte) {
	return func(in []byte) ([]byte, []byte) {
		var rd [64]byte
		copy(rd[:], in)
		ev, err := (simtee.SNP{Measurement: [48]byte{0x5e}}).Attest(context.Background(), rd)
		if err != nil {
			t.Error(err)
			return nil, nil
		}
		return ev.Data, certTable(ev.Certs[0])
	}
}

func TestConfigFSSNP(t *testing.T) {
	ctx := context.Background()
	root, kernel := fakeTSM(t, ProviderSEV, snpKernel(t))
	a, err := NewConfigFS(ctx, filepath.Join(root, configFSPath), kernel)
	if err != nil {
		t.Fatal(err)
	}
	if a.TEE() != attest.SEVSNP || a.Provider() != ProviderSEV {
		t.Fatalf("TEE %q provider %q", a.TEE(), a.Provider())
	}
	rd := nonce("configfs nonce")
	ev, err := a.Attest(ctx, rd)
	if err != nil {
		t.Fatal(err)
	}
	if ev.Format != attest.FormatSNPReport || len(ev.Certs) != 1 {
		t.Fatalf("format %q with %d certs, want the SNP report with the VCEK from auxblob", ev.Format, len(ev.Certs))
	}
	c, err := registry(t).Verify(ctx, ev, verifyOpts())
	if err != nil {
		t.Fatalf("the coordinator's verifier refuses the configfs evidence: %v", err)
	}
	if !bytes.Equal(c.ReportData, rd[:]) || c.Measurement[0] != 0x5e {
		t.Errorf("claims report data %x measurement %x", c.ReportData, c.Measurement)
	}
	// Every report entry is removed.
	left, err := os.ReadDir(filepath.Join(root, configFSPath))
	if err != nil || len(left) != 0 {
		t.Errorf("report entries left behind: %v (%v)", left, err)
	}
}

func TestConfigFSTDX(t *testing.T) {
	ctx := context.Background()
	td := simtee.TDX{MRTD: [48]byte{0x7d}}
	root, kernel := fakeTSM(t, ProviderTDX, func(in []byte) ([]byte, []byte) {
		var rd [64]byte
		copy(rd[:], in)
		ev, err := td.Attest(context.Background(), rd)
		if err != nil {
			t.Error(err)
			return nil, nil
		}
		return ev.Data, nil
	})
	a, err := NewConfigFS(ctx, filepath.Join(root, configFSPath), kernel)
	if err != nil {
		t.Fatal(err)
	}
	if a.TEE() != attest.TDX {
		t.Fatalf("TEE %q", a.TEE())
	}
	rd := nonce("tdx configfs nonce")
	ev, err := a.Attest(ctx, rd)
	if err != nil {
		t.Fatal(err)
	}
	c, err := registry(t).Verify(ctx, ev, verifyOpts())
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	if ev.Format != attest.FormatTDXQuote || !bytes.Equal(c.ReportData, rd[:]) || c.Measurement[0] != 0x7d {
		t.Errorf("format %q report data %x measurement %x", ev.Format, c.ReportData, c.Measurement)
	}
}

func TestConfigFSRefusals(t *testing.T) {
	ctx := context.Background()
	t.Run("unknown provider", func(t *testing.T) {
		root, kernel := fakeTSM(t, "arm_cca_guest", snpKernel(t))
		_, err := NewConfigFS(ctx, filepath.Join(root, configFSPath), kernel)
		if err == nil || !strings.Contains(err.Error(), `provider "arm_cca_guest"`) {
			t.Fatalf("NewConfigFS = %v", err)
		}
	})
	t.Run("another writer races the report", func(t *testing.T) {
		root, kernel := fakeTSM(t, ProviderSEV, snpKernel(t))
		a, err := NewConfigFS(ctx, filepath.Join(root, configFSPath), kernel)
		if err != nil {
			t.Fatal(err)
		}
		kernel.meddle = func(entry string) {
			if err := kernel.DirClient.WriteFile(entry+"/generation", []byte("7\n")); err != nil {
				t.Error(err)
			}
		}
		_, err = a.Attest(ctx, nonce("x"))
		if err == nil || !strings.Contains(err.Error(), "generation") {
			t.Fatalf("Attest with a racing writer = %v, want a generation error", err)
		}
	})
	t.Run("malformed outblob", func(t *testing.T) {
		root, kernel := fakeTSM(t, ProviderSEV, func([]byte) ([]byte, []byte) { return []byte("not a report"), nil })
		a, err := NewConfigFS(ctx, filepath.Join(root, configFSPath), kernel)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := a.Attest(ctx, nonce("x")); !errors.Is(err, attest.ErrMalformed) {
			t.Fatalf("Attest = %v, want ErrMalformed", err)
		}
	})
	t.Run("no configfs", func(t *testing.T) {
		_, err := Open(ctx, KindConfigFSTSM, Config{Root: t.TempDir()})
		if err == nil || !strings.Contains(err.Error(), "configfs-tsm") {
			t.Fatalf("Open = %v", err)
		}
	})
	t.Run("paths outside configfs", func(t *testing.T) {
		d := DirClient(t.TempDir())
		if _, err := d.ReadFile("/etc/passwd"); err == nil {
			t.Fatal("DirClient read a path outside /sys/kernel/config/tsm")
		}
		if _, err := d.ReadFile(configfsi.TsmPrefix + "/../../../../etc/passwd"); err == nil {
			t.Fatal("DirClient followed .. out of /sys/kernel/config/tsm")
		}
	})
}
