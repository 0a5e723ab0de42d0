//go:build linux

package tee

import (
	sevclient "github.com/google/go-sev-guest/client"
	tdxclient "github.com/google/go-tdx-guest/client"
	"github.com/google/go-tpm/tpm2/transport/linuxtpm"
)

func sevExtendedReport(path string, reportData [64]byte) (report, certs []byte, err error) {
	d := &sevclient.LinuxDevice{}
	if err := d.Open(path); err != nil {
		return nil, nil, err
	}
	defer d.Close()
	return sevclient.GetRawExtendedReport(d, reportData)
}

func tdxQuote(path string, reportData [64]byte) ([]byte, error) {
	d := &tdxclient.LinuxDevice{}
	if err := d.Open(path); err != nil {
		return nil, err
	}
	defer d.Close()
	return tdxclient.GetRawQuote(d, reportData)
}

// OpenTPMDevice opens the Linux TPM device at path (the resource manager,
// /dev/tpmrm0).
func OpenTPMDevice(path string) (TPM, error) {
	return linuxtpm.Open(path)
}
