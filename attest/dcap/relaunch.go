package dcap

import (
	"bytes"
	"fmt"

	"github.com/trustbound/trustbound/attest"
)

// relaunch is Intel's TD relaunch check, which its quote verification
// library applies to TD report 1.5 bodies only (checkForRelaunch in
// Verifiers/Checks/TDRelaunchCheck.cpp, called from checkTcbLevel after the
// TDX level and module statuses converge and before the QE's status does).
// svn2 is TEE_TCB_SVN2; sgx the status of the platform's SGX TCB level
// (Match.SGXLevel); tdx the TDX level's status converged with module, the
// status of the TD's TDX module identity level ("" for module version 0);
// qe the QE's TCB level status.
//
// A relaunch is advised when the QE is neither OutOfDate nor Revoked, the
// SGX level is UpToDate, SWHardeningNeeded, ConfigurationNeeded or
// ConfigurationAndSWHardeningNeeded, tdx is OutOfDate or
// OutOfDateConfigurationNeeded, the module the TD launched under is
// OutOfDate, and the module the platform runs now (TEE_TCB_SVN2) is at the
// latest level: for module version 0 its SVN (svn2[0]) and svn2[2] at least
// the latest TCB level's TDX components 0 and 2; otherwise its SVN at least
// the latest level of its own module identity and svn2[2] at least the
// latest TCB level's TDX component 2. The result is then
// TDRelaunchAdvisedConfigurationNeeded if sgx or tdx is a Configuration…
// status, else TDRelaunchAdvised; otherwise tdx stands. A module version
// in svn2 without an identity in the TCB info wraps attest.ErrSignature
// (Intel: TDX module mismatch).
func (t *TCBInfo) relaunch(svn2 [16]byte, sgx, tdx, module, qe Status) (Status, error) {
	switch {
	case qe == OutOfDate || qe == Revoked:
		return tdx, nil
	case sgx != UpToDate && sgx != SWHardeningNeeded && sgx != ConfigurationNeeded && sgx != ConfigurationAndSWHardeningNeeded:
		return tdx, nil
	case tdx != OutOfDate && tdx != OutOfDateConfigurationNeeded:
		return tdx, nil
	case module != OutOfDate:
		return tdx, nil
	}
	latest := t.latestLevel()
	current := svn2[2] >= latest.TDXComponents[2]
	if version := svn2[1]; version == 0 {
		current = current && svn2[0] >= latest.TDXComponents[0]
	} else {
		id := t.moduleIdentity(version)
		if id == nil {
			return "", fmt.Errorf("%w: TEE_TCB_SVN2 names TDX module major version %d, which has no identity %s in the TCB info for FMSPC %x: the TDX module the platform runs is not one Intel lists",
				attest.ErrSignature, version, moduleID(version), t.FMSPC)
		}
		var top uint16
		for _, l := range id.TCBLevels {
			top = max(top, l.ISVSVN)
		}
		current = current && uint16(svn2[0]) >= top
	}
	switch {
	case !current:
		return tdx, nil
	case configurationNeeded(sgx) || configurationNeeded(tdx):
		return TDRelaunchAdvisedConfigurationNeeded, nil
	default:
		return TDRelaunchAdvised, nil
	}
}

// configurationNeeded is Intel's isConfigurationNeeded.
func configurationNeeded(s Status) bool {
	switch s {
	case ConfigurationNeeded, OutOfDateConfigurationNeeded, ConfigurationAndSWHardeningNeeded, TDRelaunchAdvisedConfigurationNeeded:
		return true
	}
	return false
}

// latestLevel is the highest TCB level in the order Intel's QVL keeps
// levels in (TcbLevel::operator>): by SGX components, compared as a byte
// string, then by PCESVN, and for TDX levels of equal PCESVN by TDX
// components; the first of equal levels. Intel publishes levels in that
// order, so it is the first level of a genuine TCB info.
func (t *TCBInfo) latestLevel() TCBLevel {
	top := t.TCBLevels[0] // ParseTCBInfo refuses TCB info without levels
	for _, l := range t.TCBLevels[1:] {
		if higherLevel(l, top) {
			top = l
		}
	}
	return top
}

// higherLevel reports whether a sorts before b in Intel's order.
func higherLevel(a, b TCBLevel) bool {
	if c := bytes.Compare(a.SGXComponents[:], b.SGXComponents[:]); c != 0 {
		return c > 0
	}
	if a.HasTDX && a.PCESVN == b.PCESVN {
		return bytes.Compare(a.TDXComponents[:], b.TDXComponents[:]) > 0
	}
	return a.PCESVN > b.PCESVN
}
