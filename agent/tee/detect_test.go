package tee

import (
	"context"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-tpm/tpm2"
)

// fakeTPM answers every command with one canned response.
type fakeTPM struct{ rsp []byte }

func (f fakeTPM) Send([]byte) ([]byte, error) { return f.rsp, nil }
func (fakeTPM) Close() error                  { return nil }

// rspCode is a response of only a header with code rc.
func rspCode(rc uint32) []byte {
	b := make([]byte, 10)
	binary.BigEndian.PutUint16(b, uint16(tpm2.TPMSTNoSessions))
	binary.BigEndian.PutUint32(b[2:], 10)
	binary.BigEndian.PutUint32(b[6:], rc)
	return b
}

// nvReadPublicOK is a successful NV_ReadPublic response for the HCL index.
func nvReadPublicOK() []byte {
	params := append(tpm2.Marshal(tpm2.New2B(tpm2.TPMSNVPublic{NVIndex: nvHCLReport, NameAlg: tpm2.TPMAlgSHA256,
		Attributes: tpm2.TPMANV{OwnerRead: true, OwnerWrite: true}, DataSize: 2600})),
		tpm2.Marshal(tpm2.TPM2BName{Buffer: []byte{0, 0x0b, 1, 2}})...)
	b := rspCode(0)
	b = append(b, params...)
	binary.BigEndian.PutUint32(b[2:], uint32(len(b)))
	return b
}

func TestDetect(t *testing.T) {
	hasHCL := func(string) (TPM, error) { return fakeTPM{nvReadPublicOK()}, nil }
	noHCL := func(string) (TPM, error) { return fakeTPM{rspCode(uint32(tpm2.TPMRCHandle) | 0x100)}, nil }
	for _, tc := range []struct {
		name  string
		files []string // "dir/" makes a directory
		tpm   func(string) (TPM, error)
		// provider, when set, is the configfs-tsm provider the (fake)
		// kernel has registered.
		provider string
		want     Kind
		// wantErr are parts of the error when nothing is found.
		wantErr []string
	}{
		{name: "configfs-tsm first", files: []string{configFSPath + "/", sevGuestPath, tdxGuestPath, tpmDevicePath}, tpm: hasHCL, provider: ProviderSEV, want: KindConfigFSTSM},
		{name: "configfs-tsm with tdx_guest", files: []string{configFSPath + "/"}, provider: ProviderTDX, want: KindConfigFSTSM},
		// The directory without a provider (the tsm module alone): the
		// next candidates are tried.
		{name: "configfs-tsm without a provider, then sev-guest", files: []string{configFSPath + "/", sevGuestPath, tpmDevicePath}, tpm: hasHCL, want: KindSEVGuest},
		{name: "configfs-tsm without a provider, then tdx_guest", files: []string{configFSPath + "/", tdxGuestPath}, want: KindTDXGuest},
		{name: "configfs-tsm without a provider, then the vTPM", files: []string{configFSPath + "/", tpmDevicePath}, tpm: hasHCL, want: KindAzureVTPM},
		{name: "configfs-tsm with an unknown provider, then sev-guest", files: []string{configFSPath + "/", sevGuestPath}, provider: "arm_cca_guest", want: KindSEVGuest},
		{name: "configfs-tsm without a provider and nothing else", files: []string{configFSPath + "/"},
			wantErr: []string{"tsm/report: present, but no provider", "dev/sev-guest: absent", "dev/tpmrm0: absent"}},
		{name: "sev-guest", files: []string{sevGuestPath, tpmDevicePath}, tpm: hasHCL, want: KindSEVGuest},
		{name: "tdx_guest", files: []string{tdxGuestPath}, want: KindTDXGuest},
		{name: "azure vtpm", files: []string{tpmDevicePath}, tpm: hasHCL, want: KindAzureVTPM},
		{name: "configfs-tsm as a file is passed over", files: []string{configFSPath, sevGuestPath}, want: KindSEVGuest},
		{name: "a TPM without the HCL report", files: []string{tpmDevicePath}, tpm: noHCL,
			wantErr: []string{"tsm/report: absent", "dev/sev-guest: absent", "dev/tdx_guest: absent", "without NV index 0x01400001", "--simulate"}},
		{name: "a TPM that cannot be opened", files: []string{tpmDevicePath}, tpm: func(string) (TPM, error) { return nil, errors.New("permission denied") },
			wantErr: []string{"dev/tpmrm0: permission denied"}},
		{name: "nothing", wantErr: []string{"tsm/report: absent", "dev/sev-guest: absent", "dev/tdx_guest: absent", "dev/tpmrm0: absent", "--tee"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			for _, f := range tc.files {
				p := filepath.Join(root, f)
				if strings.HasSuffix(f, "/") {
					if err := os.MkdirAll(p, 0o700); err != nil {
						t.Fatal(err)
					}
					continue
				}
				if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, nil, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			cfg := Config{Root: root, OpenTPM: tc.tpm}
			if tc.provider != "" {
				cfg.ConfigFS = &fakeKernel{DirClient: DirClient(filepath.Join(root, "sys/kernel/config/tsm")), t: t, provider: tc.provider}
			}
			got, err := Detect(context.Background(), cfg)
			if tc.wantErr != nil {
				if !errors.Is(err, ErrNoTEE) {
					t.Fatalf("Detect = %q, %v; want ErrNoTEE", got, err)
				}
				for _, w := range tc.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not say %q", err, w)
					}
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("Detect = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func TestParseKind(t *testing.T) {
	for _, k := range Kinds {
		if got, err := ParseKind(string(k)); err != nil || got != k {
			t.Errorf("ParseKind(%q) = %q, %v", k, got, err)
		}
	}
	if _, err := ParseKind("sgx"); err == nil || !strings.Contains(err.Error(), "auto, configfs-tsm, sev-guest, tdx-guest, azure-vtpm, simulated") {
		t.Errorf("ParseKind(sgx) = %v", err)
	}
}

func TestOpenDevices(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	for _, k := range []Kind{KindSEVGuest, KindTDXGuest} {
		_, err := Open(ctx, k, Config{Root: root})
		if !errors.Is(err, os.ErrNotExist) {
			t.Errorf("Open(%s) without the device = %v, want not-exist", k, err)
		}
	}
	if _, err := Open(ctx, KindAuto, Config{Root: root}); !errors.Is(err, ErrNoTEE) {
		t.Errorf("Open(auto) on an empty machine = %v, want ErrNoTEE", err)
	}
	if _, err := Open(ctx, KindSimulated, Config{Root: root}); err == nil {
		t.Error("Open(simulated) made a TEE")
	}
	// A device file that is no device: the attester is made (the path is
	// there) but attesting fails and says where.
	for _, p := range []string{sevGuestPath, tdxGuestPath} {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, k := range []Kind{KindSEVGuest, KindTDXGuest} {
		a, err := Open(ctx, k, Config{Root: root})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := a.Attest(ctx, [64]byte{}); err == nil || !strings.Contains(err.Error(), root) {
			t.Errorf("Attest(%s) on a plain file = %v, want an error naming the path", k, err)
		}
	}
}
