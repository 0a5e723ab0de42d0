package dcap

// Status is an Intel TCB status, as TCB info and enclave identities spell it.
type Status string

// The TCB statuses of TCB info v3 levels. QE identity and TDX module
// levels use UpToDate, OutOfDate and Revoked only.
const (
	UpToDate                          Status = "UpToDate"
	SWHardeningNeeded                 Status = "SWHardeningNeeded"
	ConfigurationNeeded               Status = "ConfigurationNeeded"
	ConfigurationAndSWHardeningNeeded Status = "ConfigurationAndSWHardeningNeeded"
	OutOfDate                         Status = "OutOfDate"
	OutOfDateConfigurationNeeded      Status = "OutOfDateConfigurationNeeded"
	Revoked                           Status = "Revoked"
)

// The outcomes of Intel's TD relaunch check (TD report 1.5 bodies only,
// see Result.Status): never the status of a level, only of an evaluation.
// The TD was launched under a TDX module that is out of date, the platform
// now runs one that is current (a TD-preserving update): relaunching the
// TD would make it UpToDate (or ConfigurationNeeded).
const (
	TDRelaunchAdvised                    Status = "TDRelaunchAdvised"
	TDRelaunchAdvisedConfigurationNeeded Status = "TDRelaunchAdvisedConfigurationNeeded"
)

// platformStatuses are the statuses a TCB info level may carry.
var platformStatuses = []Status{UpToDate, SWHardeningNeeded, ConfigurationNeeded,
	ConfigurationAndSWHardeningNeeded, OutOfDate, OutOfDateConfigurationNeeded, Revoked}

// enclaveStatuses are the statuses a QE identity or TDX module level may carry.
var enclaveStatuses = []Status{UpToDate, OutOfDate, Revoked}

// Converge combines a platform TCB level status with the status of a
// component evaluated beside it (the QE's own TCB level, or the TDX
// module's), as Intel's quote verification library does: a component
// OutOfDate makes UpToDate and SWHardeningNeeded OutOfDate, and the two
// Configuration… statuses OutOfDateConfigurationNeeded; a component Revoked
// makes the result Revoked; otherwise the platform status stands.
func Converge(platform, component Status) Status {
	switch component {
	case OutOfDate:
		switch platform {
		case UpToDate, SWHardeningNeeded:
			return OutOfDate
		case ConfigurationNeeded, ConfigurationAndSWHardeningNeeded:
			return OutOfDateConfigurationNeeded
		}
	case Revoked:
		return Revoked
	}
	return platform
}
