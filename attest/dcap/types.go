package dcap

import "time"

// TCBInfo is Intel's TCB information for one platform family (FMSPC), TCB
// info version 3, for SGX (ID "SGX") or TDX (ID "TDX"). ParseTCBInfo reads
// it from the body Intel serves; the signature is checked by Evaluate.
type TCBInfo struct {
	ID                      string // "SGX" or "TDX"
	Version                 int    // 3
	IssueDate, NextUpdate   time.Time
	FMSPC                   [6]byte
	PCEID                   [2]byte
	TCBType                 int // 0: the 16 SGX components are the CPUSVN bytes
	TCBEvaluationDataNumber uint32
	// TDXModule is the TDX module's signer and attributes (TDX only);
	// TDXModuleIdentities the per-major-version module identities
	// ("TDX_01", "TDX_03", …), when Intel lists them.
	TDXModule           *TDXModule
	TDXModuleIdentities []TDXModuleIdentity
	// TCBLevels are in Intel's order, newest first; matching takes the
	// first level the platform meets.
	TCBLevels []TCBLevel

	// Signed is the exact bytes of the "tcbInfo" JSON value in the served
	// body, which Signature (r||s, ECDSA P-256 with SHA-256, by the TCB
	// signing certificate) covers.
	Signed    []byte
	Signature [64]byte
}

// TCBLevel is one entry of TCBInfo.TCBLevels.
type TCBLevel struct {
	// SGXComponents are sgxtcbcomponents[0..15].svn.
	SGXComponents [16]uint8
	PCESVN        uint16
	// TDXComponents are tdxtcbcomponents[0..15].svn (TDX only; HasTDX).
	TDXComponents [16]uint8
	HasTDX        bool
	TCBDate       time.Time
	Status        Status
	AdvisoryIDs   []string
}

// TDXModule is the tdxModule object of TDX TCB info.
type TDXModule struct {
	MRSigner       [48]byte
	Attributes     [8]byte
	AttributesMask [8]byte
}

// TDXModuleIdentity is one entry of tdxModuleIdentities.
type TDXModuleIdentity struct {
	ID string // "TDX_" and the major version as two hex digits
	TDXModule
	TCBLevels []EnclaveTCBLevel
}

// EnclaveTCBLevel is a TCB level of a QE identity or a TDX module identity.
type EnclaveTCBLevel struct {
	ISVSVN      uint16
	TCBDate     time.Time
	Status      Status // UpToDate, OutOfDate or Revoked
	AdvisoryIDs []string
}

// QEIdentity is Intel's identity of its quoting enclave (ID "QE", for SGX)
// or TD quoting enclave (ID "TD_QE", for TDX), enclave identity version 2.
type QEIdentity struct {
	ID                      string // "QE" or "TD_QE"
	Version                 int    // 2
	IssueDate, NextUpdate   time.Time
	TCBEvaluationDataNumber uint32
	// MiscSelect and Attributes are the bytes as they stand in an SGX
	// report (MISCSELECT little-endian), compared under their masks.
	MiscSelect, MiscSelectMask [4]byte
	Attributes, AttributesMask [16]byte
	MRSigner                   [32]byte
	ISVProdID                  uint16
	TCBLevels                  []EnclaveTCBLevel

	// Signed is the exact bytes of the "enclaveIdentity" JSON value, which
	// Signature (r||s) covers.
	Signed    []byte
	Signature [64]byte
}

// QEReport is what TCB evaluation needs of the quoting enclave's report
// (the SGX report body that the PCK key signs in a quote).
type QEReport struct {
	MRSigner   [32]byte
	ISVProdID  uint16
	ISVSVN     uint16
	MiscSelect uint32   // as in the report, little-endian on the wire
	Attributes [16]byte // FLAGS then XFRM, little-endian, as in the report
}

// TDXTCB is what TCB evaluation needs of a TD report (TDX only).
type TDXTCB struct {
	// TEETCBSVN is TEE_TCB_SVN: [0] the TDX module's SVN, [1] its major
	// version, [2..15] further TDX components.
	TEETCBSVN      [16]byte
	MRSignerSEAM   [48]byte
	SEAMAttributes [8]byte
	// TEETCBSVN2 is TEE_TCB_SVN2 of a TD report 1.5 body (quote v5, body
	// type 3): the TDX module the platform runs now, which differs from
	// TEE_TCB_SVN (the one the TD was launched under) after a
	// TD-preserving update. Nil for TD report 1.0 bodies. It is used only
	// by Intel's TD relaunch check (Result.Status); the TCB level is
	// matched on TEETCBSVN, as Intel's QVL does.
	TEETCBSVN2 *[16]byte
}
