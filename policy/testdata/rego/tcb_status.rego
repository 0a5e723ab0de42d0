# Refuses platforms with open advisories unless the workload accepts them,
# and only accepts an up-to-date TCB.
package trustbound

import rego.v1

default allow := false

accepted_tcb := {"UpToDate"}

allow if {
	input.claims.tcb.status in accepted_tcb
	count(deny) == 0
}

deny contains sprintf("advisory %s is open", [a]) if {
	some a in input.claims.tcb.advisories
	not a in {x | some x in input.reference.acceptedAdvisories}
}
