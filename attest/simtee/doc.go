// Package simtee simulates TEEs for runs without TEE hardware: it mints
// evidence in the real wire formats (an AMD SEV-SNP report, an Intel SGX DCAP
// quote v3, an Intel TDX quote v4) signed through simulated vendor chains
// whose private keys are public knowledge, and the simulated Intel
// collateral to evaluate the Intel quotes' TCB, so the real verifiers run
// their real code paths and only the trusted root differs. Evidence from here is always labelled simulated
// and is only accepted where the manifest sets allowSimulated.
package simtee
