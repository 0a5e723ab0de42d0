// Package collateral fetches, caches and bundles vendor collateral (AMD VCEK/VLEK certificates, certificate chains and CRLs; Intel DCAP TCB info, QE identities and CRLs with their issuer chains, from Intel PCS v4 or a PCCS) so that verification works fast, under vendor rate limits, and offline; it fails closed and never decides trust itself.
//
// # What is fetched
//
// Only https URLs of a vendor collateral service are accepted, and of those
// only the kinds this package knows (deny by default): AMD KDS
// (kdsintf.amd.com) VCEK, VLEK, cert_chain and crl URLs, in exactly the form
// go-sev-guest's kds package builds them (kds.VCEKCertURL, kds.VLEKCertURL,
// kds.ProductCertChainURL, kds.CrlLinkByKey), and the Intel URLs below, in
// exactly the form given. Anything else is refused with ErrRefused. Every
// body is bounded to 1 MiB and must parse as what its URL names (a DER
// certificate, a DER CRL, a PEM ASK/ARK pair, a TCB info of the URL's kind
// and FMSPC, …) before it is cached or served; a VCEK must carry the hwID
// and TCB its URL names. This is not verification: signatures and chains
// are the verifier's job.
//
// Requests to each vendor host go through a token bucket (Options.Rate,
// Options.Burst); CRLs and certificate chains have a bucket of their own on
// each host, so that a flood of requests for made-up VCEKs or FMSPCs (an
// unsigned report can name any chip) cannot starve revocation checks. A
// request whose token would come later than Options.MaxRetryWait, or than
// its caller's deadline, fails at once with ErrUnavailable without taking
// it, and a caller that gives up while waiting gives its token back. A 404
// (or 410) is remembered for 10 minutes (at most 4,096 URLs, in memory
// only: never in the cache directory or a bundle) and answered
// ErrNotFound without asking again. Concurrent requests for one URL are
// coalesced into one, HTTP 429/503 are retried at most twice honouring
// Retry-After up to Options.MaxRetryWait, and redirects are followed only
// within one host. Rate limits, Retry-After and remembered 404s run on the
// monotonic wall clock, never on Options.Now.
//
// # Intel PCS v4 and PCCS
//
// Fetcher.Collateral makes a Fetcher a dcap.Source. For a kind (sgx, tdx),
// an FMSPC and a PCK CA (processor, platform) it gets four entries:
//
//	https://api.trustedservices.intel.com/sgx/certification/v4/pckcrl?ca={processor|platform}&encoding=der   header SGX-PCK-CRL-Issuer-Chain
//	https://certificates.trustedservices.intel.com/IntelSGXRootCA.der                                        (no header)
//	https://api.trustedservices.intel.com/{sgx|tdx}/certification/v4/tcb?fmspc={FMSPC, upper-case hex}       header TCB-Info-Issuer-Chain (v3: SGX-TCB-Info-Issuer-Chain)
//	https://api.trustedservices.intel.com/{sgx|tdx}/certification/v4/qe/identity                             header SGX-Enclave-Identity-Issuer-Chain
//
// The paths, query parameters and header names are those of Intel's PCS v4
// API documentation (api.portal.trustedservices.intel.com; also transcribed
// in github.com/matter-labs/teepot crates/intel-dcap-api/specs/API spec
// V4.md) and of the clients github.com/Phala-Network/dcap-qvl
// src/collateral.rs and Intel's own PCCS
// (SGXDataCenterAttestationPrimitives QuoteGeneration/pccs); the root CA
// CRL URL is the CRL distribution point of the Intel SGX Root CA
// certificate itself. A header value is URL-encoded PEM; the entry keeps
// it URL-decoded, and a fetched answer without it is refused. A TCB info
// must be {"tcbInfo":{…},"signature":"<hex>"} with the URL's "id" (SGX,
// TDX) and "fmspc"; a QE identity {"enclaveIdentity":{…},"signature":…}
// with "id" QE (sgx) or TD_QE (tdx); a PCK CRL issued by the URL's CA
// ("Intel SGX PCK Processor CA", "… Platform CA"); the root CA CRL by
// "Intel SGX Root CA".
//
// With Options.PCCS (e.g. https://pccs.example:8081/sgx/certification/v4/)
// every PCS path above is asked of the PCCS instead (its base URL, less
// /{sgx,tdx}/certification/v4, then the same path and query), and the root
// CA CRL of its …/sgx/certification/v4/rootcacrl, which Intel's PCCS
// answers as hex text of the DER (decoded here). Entries stay filed under
// the PCS URLs, so caches and bundles do not depend on where they came
// from; Get also accepts the PCCS's URLs for them, and the PCCS host is
// the only one added. The PCCS host has its own rate limit bucket.
//
// # Azure-hosted cache (THIM) as a VCEK mirror
//
// When the KDS is unavailable (throttling, 5xx, network) for a VCEK URL, the
// certificate is asked from Azure's cache instead:
//
//	https://global.acccache.azure.net/SevSnpVM/certificates/{chip id, hex}/{reported TCB, hex}?api-version=2020-10-15-preview
//
// which answers a JSON object with "vcekCert" (PEM), "certificateChain" (PEM
// ASK then ARK), "tcbm" and "cacheControl". These facts are taken from
// Microsoft's own clients: github.com/microsoft/CCF
// include/ccf/pal/attestation_sev_snp_endorsements.h (host, path, api-version
// and the ACIReportEndorsements JSON fields) and
// github.com/microsoft/confidential-sidecar-containers
// pkg/attest/platform_cert_fetcher.go (the "AzCache" fetcher, which writes the
// TCB with strconv.FormatUint(tcb, 16), i.e. without zero padding) with its
// sample response pkg/attest/test_data/uvm_host_amd_certificate.json. The
// mirrored certificate is served, and cached, as the DER body of the KDS URL,
// only if its hwID and TCB extensions are those the KDS URL names.
//
// # Cache
//
// With Options.Dir, each entry is one file <hex SHA-256 of the URL>.json in
// that directory (0700; files 0600, written to a temporary file and renamed):
//
//	{"version":1,"url":…,"fetchedAt":…,"expiresAt":…,"sha256":<hex of body>,"body":<base64>}
//	{"version":2, … ,"headers":{"TCB-Info-Issuer-Chain":"-----BEGIN CERTIFICATE-----\n…"}}
//
// Version 2 adds the headers an entry keeps (the Intel issuer chain); an
// entry without headers is still written as version 1, and both are read.
// An entry is fresh until its expiry, which is always recomputed from the
// body and headers: a CRL's NextUpdate, a certificate's NotAfter, the
// earliest NotAfter of a PEM chain, a TCB info's or QE identity's
// nextUpdate (only that field is read), otherwise 24 hours after it was
// fetched; and no later than the first certificate of its issuer chain
// expires. Fresh entries are served without network. A stale entry is
// refetched; if that fails, Get (and Collateral) return no body but a
// *StaleError (which is ErrUnavailable): stale collateral is never served.
// A vendor copy that was already stale when fetched is not asked for again
// within a minute of its fetch time. A cache file that does not decode,
// does not match its name, its hash or its URL's kind is ignored (and
// logged) and refetched.
//
// Freshness is judged at Options.Now, which must be the current time, not
// a verification time. A fetch time later than Now (in a cache file, a
// bundle, or filed by a run whose Now was ahead) is not believed: the
// entry counts as fetched at Now, holds back no refetch, yields to any
// entry with a believable fetch time, and is stale if only its fetch time
// would make it fresh.
//
// Fetcher.Invalidate(url) drops an entry from memory and the cache
// directory: a verifier that rejects a body (a signature that does not
// verify) calls it, through the optional Invalidator interface of its
// Getter, so that the next Get asks the vendor again. For Intel collateral
// the SGX and TDX verifiers do the same through dcap.Invalidator:
// Fetcher.InvalidateCollateral(kind, fmspc, ca) drops the four pieces
// Collateral returned for a platform when TCB evaluation rejects them as
// not genuine (dcap.RejectedError; not when they are only stale).
//
// # Offline bundles
//
// Fetcher.Export writes every entry (fresh or not) as one JSON document, and
// Fetcher.Import or Options.Bundles read it back:
//
//	{"version":1,"format":"trustbound-collateral","entries":[{"url":…,"body":<base64>,"fetchedAt":<RFC 3339>}, …]}
//	{"version":2,"format":"trustbound-collateral","entries":[{"url":…,"body":…,"fetchedAt":…,"headers":{name:value}}, …]}
//
// Version 2 adds an optional "headers" map per entry (the URL-decoded
// issuer chain of Intel collateral); a bundle with no headers is still
// written as version 1, so older readers take AMD-only bundles. Decoding
// is strict: at most 64 MiB and 10,000 entries, no unknown fields, no
// trailing data, no duplicate URLs, every URL one that Get accepts, every
// body valid for it and the headers exactly those its kind keeps. An
// imported entry replaces a cached one only if it was fetched later (fetch
// times capped at now, as above): never because its body claims to expire
// later, which a forged CRL may claim.
//
// Import and Options.Bundles (so trustbound verify --collateral) also take
// the collateral JSON of github.com/Phala-Network/dcap-qvl (its
// QuoteCollateralV3 as in its sample/*_collateral.json: pck_crl_issuer_chain,
// root_ca_crl, pck_crl, tcb_info_issuer_chain, tcb_info, tcb_info_signature,
// qe_identity_issuer_chain, qe_identity, qe_identity_signature; chains PEM
// strings, CRLs and signatures hex strings or byte arrays, tcb_info and
// qe_identity the raw signed JSON text). Its four entries are filed under
// the URLs PCS would have served them from: kind and FMSPC from the
// tcb_info "id" and "fmspc", the PCK CA from the PCK CRL's issuer; the TCB
// info body rebuilt as PCS serves it, {"tcbInfo":<tcb_info>,"signature":
// "<lower-case hex>"}, and {"enclaveIdentity":<qe_identity>,…} likewise;
// CRLs DER; chains as the headers named above. Each counts as fetched when
// it was issued (issueDate, thisUpdate).
//
// Options.Bundles may also name a directory of raw collateral files, as AMD
// serves them, matched to their URLs as follows (files that match nothing are
// skipped and logged):
//
//   - a dcap-qvl collateral JSON file gives its four Intel entries;
//   - a file at {vcek,vlek}/v1/{product line}/{crl,cert_chain} under the
//     directory (below any directories, such as kdsintf.amd.com/ in a
//     `wget -x` copy) is the body of that KDS URL;
//   - a certificate with VCEK extensions (DER or PEM) is the VCEK of its hwID
//     and TCB, at kds.VCEKCertURL(product line of its productName, hwID, TCB);
//   - a PEM ASK/ASVK + ARK pair is the cert_chain of the product line its first
//     certificate names (CN SEV-{line} for VCEK, SEV-VLEK-{line} for VLEK);
//   - a CRL anywhere else is refused (New fails): AMD's ARK issues both the
//     VCEK and the VLEK CRL of its line, so only the KDS path can say which
//     it is.
//
// A single file in Options.Bundles (trustbound verify --collateral FILE)
// is read as a bundle or dcap-qvl collateral JSON if it is JSON, else as
// one raw collateral file by the same rules (a VCEK, a cert_chain, or a
// CRL only under its KDS path); one that matches nothing is refused.
// Raw files count as fetched when they were last modified.
//
// Certificates and CRLs are stored DER, as the KDS serves them. Every CRL
// (AMD or Intel) is parsed as the verifiers parse it: exactly one DER
// value, or exactly one PEM "X509 CRL" block without headers and nothing
// around it; a CRL with trailing bytes is never cached.
//
// # Limitations
//
//   - Intel: only the PCS v4 API, its default (standard) update channel
//     (no update=early, no tcbEvaluationDataNumber) and TCB info v3 (v2 has
//     no "id" and is refused on import); QVE/QAE identities and PCK
//     certificates are not fetched. With a PCCS the root CA CRL comes from
//     the PCCS only (no fallback to certificates.trustedservices.intel.com).
//     A dcap-qvl file's pck_certificate_chain (newer releases) is accepted
//     and not kept: it is one quote's evidence, not collateral. Raw Intel
//     files in a bundle directory are not matched (their issuer chains are
//     not in them): use dcap-qvl JSON or a bundle.
//   - The Azure mirror TCB path segment follows Microsoft's clients (hex
//     without zero padding); whether Azure also answers a zero-padded form is
//     unconfirmed. It is used for Milan/Genoa-style TCB layouts only, as
//     go-sev-guest v0.15.0's kds package composes them.
//   - The in-memory cache is not bounded: it holds one entry per collateral URL
//     whose body validated (genuine chips × TCB versions), which stays small;
//     remembered 404s are bounded (4,096 URLs).
//   - A rate limit wait is bounded by the deadline of the first of the
//     concurrent callers for a URL, not the latest.
//   - CRLs and certificate chains have their own bucket, so a host may see
//     up to twice Options.Rate when both are busy.
package collateral
