//go:build !linux

package tee

import (
	"errors"
	"runtime"
)

var errNotLinux = errors.New("TEE guest devices are Linux interfaces, not available on " + runtime.GOOS)

func sevExtendedReport(string, [64]byte) ([]byte, []byte, error) { return nil, nil, errNotLinux }

func tdxQuote(string, [64]byte) ([]byte, error) { return nil, errNotLinux }

// OpenTPMDevice opens the Linux TPM device at path; on other systems it
// fails.
func OpenTPMDevice(string) (TPM, error) { return nil, errNotLinux }
