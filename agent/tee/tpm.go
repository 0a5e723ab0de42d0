package tee

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"
)

// TPM is a connection to a TPM.
type TPM = transport.TPMCloser

// The vTPM handles of an Azure confidential VM.
const (
	// nvHCLReport holds the HCL report.
	nvHCLReport tpm2.TPMHandle = 0x01400001
	// nvUserData holds the 64 bytes of user data the paravisor copies into
	// the next HCL report's runtime claims.
	nvUserData tpm2.TPMHandle = 0x01400002
	// akHandle is the persistent attestation key.
	akHandle tpm2.TPMHandle = 0x81000003
)

// Bounds on what a TPM returns.
const (
	// maxTPMResponse is the largest response accepted (TPM2 responses are
	// at most a few KB; the reference implementation's buffer is 4 KB).
	maxTPMResponse = 64 << 10
	// maxNVIndexSize bounds the NV indices read: the HCL report index is
	// 2600 bytes.
	maxNVIndexSize = 8 << 10
	// defaultNVBufferMax is the chunk size used when the TPM does not say
	// its TPM_PT_NV_BUFFER_MAX; every TPM 2.0 supports 512.
	defaultNVBufferMax = 512
	tpmHeaderSize      = 10
)

// TCPTPM is a TPM reached over TCP that speaks the raw TPM 2.0 command
// stream, as swtpm's server socket does (a command, then its response;
// no simulator framing). swtpm must run with --flags
// not-need-init,startup-clear, since nothing powers it on or starts it up.
type TCPTPM struct {
	mu   sync.Mutex
	conn net.Conn
}

var _ TPM = (*TCPTPM)(nil)

// tcpTPMTimeout bounds one command over TCP, key generation included.
const tcpTPMTimeout = time.Minute

// DialTCPTPM connects to a raw TPM command port at addr (host:port).
func DialTCPTPM(addr string) (*TCPTPM, error) {
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return nil, fmt.Errorf("TPM at %s: %w", addr, err)
	}
	return &TCPTPM{conn: c}, nil
}

// Send sends one command and returns its response.
func (t *TCPTPM) Send(cmd []byte) ([]byte, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	// A TPM that does not answer (swtpm serves one connection at a time)
	// fails the command instead of hanging the agent.
	if err := t.conn.SetDeadline(time.Now().Add(tcpTPMTimeout)); err != nil {
		return nil, fmt.Errorf("TPM: %w", err)
	}
	if _, err := t.conn.Write(cmd); err != nil {
		return nil, fmt.Errorf("TPM: sending a command: %w", err)
	}
	return ReadResponse(t.conn)
}

// Close closes the connection.
func (t *TCPTPM) Close() error { return t.conn.Close() }

// ReadResponse reads one TPM 2.0 response from r: the 10-byte header (tag,
// size, response code), then the rest of the size it gives, which must be
// at least the header and at most 64 KB.
func ReadResponse(r io.Reader) ([]byte, error) {
	hdr := make([]byte, tpmHeaderSize)
	if _, err := io.ReadFull(r, hdr); err != nil {
		return nil, fmt.Errorf("TPM: reading a response header: %w", err)
	}
	tag := binary.BigEndian.Uint16(hdr)
	if tag != uint16(tpm2.TPMSTNoSessions) && tag != uint16(tpm2.TPMSTSessions) && tag != 0x00c4 { // 0x00c4: TPM 1.2 RSP_COMMAND, for errors
		return nil, fmt.Errorf("TPM: response tag %#04x is not a TPM 2.0 response tag", tag)
	}
	size := binary.BigEndian.Uint32(hdr[2:])
	if size < tpmHeaderSize || size > maxTPMResponse {
		return nil, fmt.Errorf("TPM: response size %d is not within %d to %d", size, tpmHeaderSize, maxTPMResponse)
	}
	resp := make([]byte, size)
	copy(resp, hdr)
	if _, err := io.ReadFull(r, resp[tpmHeaderSize:]); err != nil {
		return nil, fmt.Errorf("TPM: reading a %d-byte response: %w", size, err)
	}
	return resp, nil
}

// nvPublic returns the public area of NV index h and its name; found is
// false when the TPM has no such index.
func nvPublic(t transport.TPM, h tpm2.TPMHandle) (pub *tpm2.TPMSNVPublic, name tpm2.TPM2BName, found bool, err error) {
	rsp, err := tpm2.NVReadPublic{NVIndex: h}.Execute(t)
	if err != nil {
		if errors.Is(err, tpm2.TPMRCHandle) {
			return nil, name, false, nil
		}
		return nil, name, false, fmt.Errorf("reading the public area of NV index %#08x: %w", uint32(h), err)
	}
	pub, err = rsp.NVPublic.Contents()
	if err != nil {
		return nil, name, false, fmt.Errorf("NV index %#08x: %w", uint32(h), err)
	}
	if pub.NVIndex != h {
		return nil, name, false, fmt.Errorf("the TPM answered for NV index %#08x with the public area of %#08x", uint32(h), uint32(pub.NVIndex))
	}
	return pub, rsp.NVName, true, nil
}

// hasHCLReport reports whether the TPM open returns has the HCL report NV
// index.
func hasHCLReport(open func() (TPM, error)) (bool, error) {
	t, err := open()
	if err != nil {
		return false, err
	}
	defer t.Close()
	_, _, found, err := nvPublic(t, nvHCLReport)
	return found, err
}

// nvAuth returns the authorization to read (or write) an index with public
// area pub and name: the owner hierarchy when the index allows it, else
// the index's own (empty) authorization value.
func nvAuth(pub *tpm2.TPMSNVPublic, name tpm2.TPM2BName, write bool) (tpm2.AuthHandle, error) {
	owner, auth := pub.Attributes.OwnerRead, pub.Attributes.AuthRead
	if write {
		owner, auth = pub.Attributes.OwnerWrite, pub.Attributes.AuthWrite
	}
	switch {
	case owner:
		return tpm2.AuthHandle{Handle: tpm2.TPMRHOwner, Auth: tpm2.PasswordAuth(nil)}, nil
	case auth:
		return tpm2.AuthHandle{Handle: pub.NVIndex, Name: name, Auth: tpm2.PasswordAuth(nil)}, nil
	}
	op := "read"
	if write {
		op = "written"
	}
	return tpm2.AuthHandle{}, fmt.Errorf("NV index %#08x can be %s neither with the owner's nor with its own authorization", uint32(pub.NVIndex), op)
}

// nvBufferMax returns the TPM's TPM_PT_NV_BUFFER_MAX, or 512 when it does
// not say.
func nvBufferMax(t transport.TPM) int {
	rsp, err := tpm2.GetCapability{Capability: tpm2.TPMCapTPMProperties, Property: uint32(tpm2.TPMPTNVBufferMax), PropertyCount: 1}.Execute(t)
	if err != nil {
		return defaultNVBufferMax
	}
	props, err := rsp.CapabilityData.Data.TPMProperties()
	if err != nil {
		return defaultNVBufferMax
	}
	for _, p := range props.TPMProperty {
		if p.Property == tpm2.TPMPTNVBufferMax && p.Value >= 64 && p.Value <= maxTPMResponse {
			return int(p.Value)
		}
	}
	return defaultNVBufferMax
}

// nvReadAll reads NV index h whole: its size from its public area, then
// chunks of at most the TPM's NV buffer size.
func nvReadAll(t transport.TPM, h tpm2.TPMHandle) ([]byte, error) {
	pub, name, found, err := nvPublic(t, h)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, fmt.Errorf("the TPM has no NV index %#08x", uint32(h))
	}
	size := int(pub.DataSize)
	if size == 0 || size > maxNVIndexSize {
		return nil, fmt.Errorf("NV index %#08x is %d bytes, want 1 to %d", uint32(h), size, maxNVIndexSize)
	}
	auth, err := nvAuth(pub, name, false)
	if err != nil {
		return nil, err
	}
	chunk := nvBufferMax(t)
	out := make([]byte, 0, size)
	for len(out) < size {
		n := min(chunk, size-len(out))
		rsp, err := tpm2.NVRead{
			AuthHandle: auth,
			NVIndex:    tpm2.NamedHandle{Handle: h, Name: name},
			Size:       uint16(n),
			Offset:     uint16(len(out)),
		}.Execute(t)
		if err != nil {
			return nil, fmt.Errorf("reading NV index %#08x at offset %d: %w", uint32(h), len(out), err)
		}
		if len(rsp.Data.Buffer) != n {
			return nil, fmt.Errorf("reading NV index %#08x at offset %d: the TPM returned %d bytes, not %d", uint32(h), len(out), len(rsp.Data.Buffer), n)
		}
		out = append(out, rsp.Data.Buffer...)
	}
	return out, nil
}

// writeUserData writes the 64 bytes of data to NV index 0x01400002,
// defining it (owner read and write, as Azure's guest tools do) when the
// TPM does not have it, and redefining it when it has another size and
// the owner may (see ownerRedefinable).
func writeUserData(t transport.TPM, data [64]byte) error {
	pub, name, found, err := nvPublic(t, nvUserData)
	if err != nil {
		return err
	}
	if !found {
		if pub, name, err = defineUserData(t, len(data)); err != nil {
			return err
		}
	}
	if int(pub.DataSize) != len(data) {
		// Left by another tool at another size: Azure's guest tools
		// undefine and redefine it at 64 bytes. So does this, when the
		// owner may (an ordinary index the owner made and writes).
		if !ownerRedefinable(pub) {
			return fmt.Errorf("NV index %#08x is %d bytes, want %d for the user data, and it is not an owner-written ordinary index this agent may redefine", uint32(nvUserData), pub.DataSize, len(data))
		}
		if _, err := (tpm2.NVUndefineSpace{
			AuthHandle: tpm2.AuthHandle{Handle: tpm2.TPMRHOwner, Auth: tpm2.PasswordAuth(nil)},
			NVIndex:    tpm2.NamedHandle{Handle: nvUserData, Name: name},
		}).Execute(t); err != nil {
			return fmt.Errorf("undefining the %d-byte NV index %#08x to redefine it at %d bytes: %w", pub.DataSize, uint32(nvUserData), len(data), err)
		}
		if pub, name, err = defineUserData(t, len(data)); err != nil {
			return err
		}
	}
	auth, err := nvAuth(pub, name, true)
	if err != nil {
		return err
	}
	if _, err := (tpm2.NVWrite{
		AuthHandle: auth,
		NVIndex:    tpm2.NamedHandle{Handle: nvUserData, Name: name},
		Data:       tpm2.TPM2BMaxNVBuffer{Buffer: data[:]},
	}).Execute(t); err != nil {
		return fmt.Errorf("writing the user data to NV index %#08x: %w", uint32(nvUserData), err)
	}
	return nil
}

// defineUserData defines NV index 0x01400002 of size bytes, owner read
// and write, as Azure's guest tools do, and returns its public area.
func defineUserData(t transport.TPM, size int) (*tpm2.TPMSNVPublic, tpm2.TPM2BName, error) {
	def := tpm2.TPMSNVPublic{
		NVIndex:    nvUserData,
		NameAlg:    tpm2.TPMAlgSHA256,
		Attributes: tpm2.TPMANV{OwnerWrite: true, OwnerRead: true, AuthRead: true, NoDA: true, NT: tpm2.TPMNTOrdinary},
		DataSize:   uint16(size),
	}
	if _, err := (tpm2.NVDefineSpace{
		AuthHandle: tpm2.AuthHandle{Handle: tpm2.TPMRHOwner, Auth: tpm2.PasswordAuth(nil)},
		PublicInfo: tpm2.New2B(def),
	}).Execute(t); err != nil {
		return nil, tpm2.TPM2BName{}, fmt.Errorf("defining NV index %#08x for the user data: %w", uint32(nvUserData), err)
	}
	pub, name, found, err := nvPublic(t, nvUserData)
	if err != nil || !found {
		return nil, name, fmt.Errorf("NV index %#08x is not there after defining it: %v", uint32(nvUserData), err)
	}
	return pub, name, nil
}

// ownerRedefinable reports whether the owner may undefine an NV index and
// this agent should: an ordinary index of the owner hierarchy (not made
// by the platform, no policy-only deletion, not locked) that the owner
// writes, as Azure's tools define the user-data index.
func ownerRedefinable(pub *tpm2.TPMSNVPublic) bool {
	a := pub.Attributes
	return a.NT == tpm2.TPMNTOrdinary && a.OwnerWrite && !a.PlatformCreate && !a.PolicyDelete && !a.WriteLocked && !a.ReadLocked
}
