# An Azure-style rule over the Azure claim names: an SEV-SNP VM whose
# guest SVN is at least 2, attested before the end of 2030 (input.now).
package trustbound

allow if {
	input.azure["x-ms-attestation-type"] == "sevsnpvm"
	input.azure["x-ms-sevsnpvm-guestsvn"] >= 2
	not input.azure["x-ms-sevsnpvm-is-debuggable"]
	time.parse_rfc3339_ns(input.now) < time.parse_rfc3339_ns("2031-01-01T00:00:00Z")
}
