// Package tee gives the agent the TEE it runs in: attest.Attesters over the
// Linux guest interfaces (configfs-tsm, /dev/sev-guest, /dev/tdx_guest and
// the Azure confidential-VM vTPM) and the detection of which one a machine
// has; it produces evidence and never verifies it.
package tee

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/google/go-configfs-tsm/configfs/configfsi"

	"github.com/trustbound/trustbound/attest"
)

// Kind names a TEE guest interface.
type Kind string

// The interfaces an agent can attest through.
const (
	// KindAuto detects the interface (see Detect).
	KindAuto Kind = "auto"
	// KindConfigFSTSM is the Linux configfs-tsm report interface
	// (/sys/kernel/config/tsm/report), for SEV-SNP and TDX guests.
	KindConfigFSTSM Kind = "configfs-tsm"
	// KindSEVGuest is the Linux SEV guest device, /dev/sev-guest.
	KindSEVGuest Kind = "sev-guest"
	// KindTDXGuest is the Linux TDX guest device, /dev/tdx_guest, through
	// its quote ioctl. Upstream Linux has none (the device gives only
	// TDREPORTs; quotes go through configfs-tsm): there, use
	// KindConfigFSTSM.
	KindTDXGuest Kind = "tdx-guest"
	// KindAzureVTPM is the vTPM of an Azure confidential VM, /dev/tpmrm0, whose
	// paravisor keeps the HCL report at NV index 0x01400001.
	KindAzureVTPM Kind = "azure-vtpm"
	// KindSimulated is a simulated TEE (attest/simtee); Open does not make it:
	// the caller builds it from what it is to measure.
	KindSimulated Kind = "simulated"
)

// Kinds lists every Kind in the order of the --tee flag's help.
var Kinds = []Kind{KindAuto, KindConfigFSTSM, KindSEVGuest, KindTDXGuest, KindAzureVTPM, KindSimulated}

// ParseKind returns the Kind named s.
func ParseKind(s string) (Kind, error) {
	for _, k := range Kinds {
		if string(k) == s {
			return k, nil
		}
	}
	names := make([]string, len(Kinds))
	for i, k := range Kinds {
		names[i] = string(k)
	}
	return "", fmt.Errorf("unknown TEE interface %q (want one of %s)", s, strings.Join(names, ", "))
}

// The interfaces' paths, relative to the filesystem root.
const (
	configFSPath  = "sys/kernel/config/tsm/report"
	sevGuestPath  = "dev/sev-guest"
	tdxGuestPath  = "dev/tdx_guest"
	tpmDevicePath = "dev/tpmrm0"
)

// Config says where the interfaces are. The zero value is the real machine.
type Config struct {
	// Root is the filesystem root the interfaces' paths are under; empty
	// means "/". Tests point it at a fake tree.
	Root string
	// OpenTPM opens the TPM at path (Root joined with dev/tpmrm0) for the
	// Azure vTPM; nil opens the Linux device. Tests connect to swtpm.
	OpenTPM func(path string) (TPM, error)
	// Azure holds the Azure vTPM attester's settings other than its TPM.
	Azure AzureConfig
	// ConfigFS is how the configfs-tsm report directory is used; nil means
	// its files (DirClient). Tests play the kernel.
	ConfigFS configfsi.Client
}

func (c Config) path(rel string) string {
	root := c.Root
	if root == "" {
		root = "/"
	}
	return filepath.Join(root, rel)
}

func (c Config) openTPM() func() (TPM, error) {
	p := c.path(tpmDevicePath)
	open := c.OpenTPM
	if open == nil {
		open = OpenTPMDevice
	}
	return func() (TPM, error) { return open(p) }
}

// ErrNoTEE is returned by Detect (and Open with Auto) when the machine has
// none of the interfaces.
var ErrNoTEE = errors.New("no TEE guest interface found")

// Open returns the attester of interface k; Auto detects it first. It
// refuses Simulated: simulated TEEs are built by the caller.
func Open(ctx context.Context, k Kind, cfg Config) (attest.Attester, error) {
	if k == KindAuto {
		d, err := Detect(ctx, cfg)
		if err != nil {
			return nil, err
		}
		k = d
	}
	switch k {
	case KindConfigFSTSM:
		return NewConfigFS(ctx, cfg.path(configFSPath), cfg.ConfigFS)
	case KindSEVGuest:
		return NewSEVDevice(cfg.path(sevGuestPath))
	case KindTDXGuest:
		return NewTDXDevice(cfg.path(tdxGuestPath))
	case KindAzureVTPM:
		return NewAzureVTPM(ctx, cfg.openTPM(), cfg.Azure)
	case KindSimulated:
		return nil, errors.New("tee: a simulated TEE is not opened here: build it with attest/simtee (trustbound agent --simulate)")
	}
	return nil, fmt.Errorf("tee: unknown TEE interface %q", k)
}
