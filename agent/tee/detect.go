package tee

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
)

// Detect returns the TEE interface the machine (cfg.Root) has, probing in
// this order and taking the first that is there:
//
//  1. configfs-tsm: the directory sys/kernel/config/tsm/report, when a
//     provider (sev_guest or tdx_guest) is registered with it: the
//     directory exists as soon as the tsm module is loaded, and a report
//     entry without a provider answers nothing, so the next candidates
//     are tried;
//  2. sev-guest: the device dev/sev-guest;
//  3. tdx-guest: the device dev/tdx_guest. On upstream Linux the TDX guest
//     device has no quote ioctl (only TDREPORT; quotes go through
//     configfs-tsm), so there this candidate fails at Attest: load the
//     tdx_guest module with configfs mounted instead;
//  4. azure-vtpm: the device dev/tpmrm0, when the TPM has NV index
//     0x01400001 (the HCL report; a TPM without it is no Azure vTPM).
//
// When none is, the error wraps ErrNoTEE and lists what was probed and why
// each was passed over.
func Detect(ctx context.Context, cfg Config) (Kind, error) {
	var probed []string
	if ok, why := isDir(cfg.path(configFSPath)); !ok {
		probed = append(probed, fmt.Sprintf("%s: %s", cfg.path(configFSPath), why))
	} else if _, err := NewConfigFS(ctx, cfg.path(configFSPath), cfg.ConfigFS); err != nil {
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		probed = append(probed, fmt.Sprintf("%s: present, but no provider trustbound attests with is registered (%v)", cfg.path(configFSPath), err))
	} else {
		return KindConfigFSTSM, nil
	}
	for _, d := range []struct {
		k   Kind
		rel string
	}{{KindSEVGuest, sevGuestPath}, {KindTDXGuest, tdxGuestPath}} {
		if ok, why := exists(cfg.path(d.rel)); ok {
			return d.k, nil
		} else {
			probed = append(probed, fmt.Sprintf("%s: %s", cfg.path(d.rel), why))
		}
	}
	tpmPath := cfg.path(tpmDevicePath)
	if ok, why := exists(tpmPath); !ok {
		probed = append(probed, fmt.Sprintf("%s: %s", tpmPath, why))
	} else if err := ctx.Err(); err != nil {
		return "", err
	} else {
		has, err := hasHCLReport(cfg.openTPM())
		switch {
		case err != nil:
			probed = append(probed, fmt.Sprintf("%s: %v", tpmPath, err))
		case has:
			return KindAzureVTPM, nil
		default:
			probed = append(probed, fmt.Sprintf("%s: a TPM without NV index %#08x (no Azure confidential-VM HCL report)", tpmPath, uint32(nvHCLReport)))
		}
	}
	return "", fmt.Errorf("%w: probed %s; run on a confidential VM, choose one with --tee, or pass --simulate snp|sgx for a SIMULATED TEE",
		ErrNoTEE, strings.Join(probed, "; "))
}

func isDir(p string) (bool, string) {
	fi, err := os.Stat(p)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return false, "absent"
	case err != nil:
		return false, err.Error()
	case !fi.IsDir():
		return false, "not a directory"
	}
	return true, ""
}

func exists(p string) (bool, string) {
	_, err := os.Stat(p)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return false, "absent"
	case err != nil:
		return false, err.Error()
	}
	return true, ""
}
