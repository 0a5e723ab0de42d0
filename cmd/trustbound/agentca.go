package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	"github.com/trustbound/trustbound/agent"
)

// agentClient is cf.client() for `trustbound agent`: with want (the hex of
// --ca-sha256) set, the agent trusts the --ca file only if the SHA-256 of
// its bytes is want. The file comes from the host (a ConfigMap, cloud-init
// user data); the command line carrying want is what the TEE pins (the
// Kata policy, a measured image). The digest of a CA certificate is
// public, so a plain comparison is enough.
func agentClient(cf *coordinatorFlags, want string) (*agent.Client, error) {
	if want == "" {
		return cf.client()
	}
	wantSum, err := hex.DecodeString(want)
	if err != nil || len(wantSum) != sha256.Size {
		return nil, usageErr("--ca-sha256 must be the SHA-256 of the --ca file, 64 hex digits")
	}
	caPEM, err := cf.readCA()
	if err != nil {
		return nil, err
	}
	got := sha256.Sum256(caPEM)
	if !bytes.Equal(got[:], wantSum) {
		return nil, fmt.Errorf("--ca %s: its SHA-256 is %x, but --ca-sha256 is %x: refusing to trust this CA (it is not the coordinator CA the deployment pinned)", cf.caFile, got, wantSum)
	}
	return clientWithCA(cf.url, caPEM)
}
