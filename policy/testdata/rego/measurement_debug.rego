# Permits a workload whose launch measurement is one the manifest accepts
# and whose TEE is not debuggable; says why otherwise.
package trustbound

default allow := false

allow if {
	input.claims.measurement in input.reference.measurements
	not input.claims.debug
	input.claims.tee == input.workload.tee
}

deny contains "the TEE is debuggable (its memory is readable by the host)" if {
	input.claims.debug
}

deny contains msg if {
	not input.claims.measurement in input.reference.measurements
	msg := sprintf("measurement %s is not one of the %d accepted", [input.claims.measurement, count(input.reference.measurements)])
}
