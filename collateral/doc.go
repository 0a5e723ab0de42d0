// Package collateral fetches, caches and bundles vendor collateral (AMD VCEK/VLEK certificates, certificate chains and CRLs; later Intel PCS) so that verification works fast, under vendor rate limits, and offline; it fails closed and never decides trust itself.
//
// # What is fetched
//
// Only https URLs of a vendor collateral service are accepted, and of those
// only the kinds this package knows (deny by default): AMD KDS
// (kdsintf.amd.com) VCEK, VLEK, cert_chain and crl URLs, in exactly the form
// go-sev-guest's kds package builds them (kds.VCEKCertURL, kds.VLEKCertURL,
// kds.ProductCertChainURL, kds.CrlLinkByKey). Anything else is refused with
// ErrRefused. Every body is bounded to 1 MiB and must parse as what its URL
// names (a DER certificate, a DER CRL, a PEM ASK/ARK pair) before it is
// cached or served; a VCEK must carry the hwID and TCB its URL names. This
// is not verification: signatures and chains are the verifier's job.
//
// Requests to each vendor host go through a token bucket (Options.Rate,
// Options.Burst), concurrent requests for one URL are coalesced into one,
// HTTP 429/503 are retried at most twice honouring Retry-After up to
// Options.MaxRetryWait, and redirects are followed only within one host.
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
//
// An entry is fresh until its expiry, which is always recomputed from the
// body: a CRL's NextUpdate, a certificate's NotAfter, the earliest NotAfter of
// a PEM chain, otherwise 24 hours after it was fetched. Fresh entries are
// served without network. A stale entry is refetched; if that fails, Get
// returns no body but a *StaleError (which is ErrUnavailable) carrying the
// stale body, so that only a caller whose operator explicitly allows stale
// collateral can use it. A cache file that does not decode, does not match its
// name, its hash or its URL's kind is ignored (and logged) and refetched.
//
// # Offline bundles
//
// Fetcher.Export writes every entry (fresh or not) as one JSON document, and
// Fetcher.Import or Options.Bundles read it back:
//
//	{"version":1,"format":"trustbound-collateral","entries":[{"url":…,"body":<base64>,"fetchedAt":<RFC 3339>}, …]}
//
// Decoding is strict: at most 64 MiB and 10,000 entries, no unknown fields,
// no trailing data, no duplicate URLs, every URL one that Get accepts and
// every body valid for it. An imported entry replaces a cached one only if it
// expires later (or as late, and was fetched later).
//
// Options.Bundles may also name a directory of raw collateral files, as AMD
// serves them, matched to their URLs as follows (files that match nothing are
// skipped and logged):
//
//   - a file at [kdsintf.amd.com/]{vcek,vlek}/v1/{product line}/{crl,cert_chain}
//     under the directory is the body of that KDS URL (e.g. a `wget -x` copy);
//   - a certificate with VCEK extensions (DER or PEM) is the VCEK of its hwID
//     and TCB, at kds.VCEKCertURL(product line of its productName, hwID, TCB);
//   - a PEM ASK/ASVK + ARK pair is the cert_chain of the product line its first
//     certificate names (CN SEV-{line} for VCEK, SEV-VLEK-{line} for VLEK);
//   - a CRL (DER or PEM) issued by ARK-{line} is the VCEK crl of that line,
//     or the VLEK crl if its file name contains "vlek": AMD's ARK issues both,
//     so a VLEK CRL must be named so or placed at vlek/v1/{line}/crl.
//
// Certificates and CRLs are stored DER, as the KDS serves them.
//
// # Limitations
//
//   - Intel PCS is not implemented. Its collateral carries issuer chains in
//     response headers, which entries (and bundle version 2) will then keep;
//     api.trustedservices.intel.com joins the vendor table with its URL kinds.
//   - The Azure mirror TCB path segment follows Microsoft's clients (hex
//     without zero padding); whether Azure also answers a zero-padded form is
//     unconfirmed. It is used for Milan/Genoa-style TCB layouts only, as
//     go-sev-guest v0.15.0's kds package composes them.
//   - The in-memory cache is not bounded: it holds one entry per collateral URL
//     seen (genuine chips × TCB versions), which stays small; 404s are not
//     cached.
package collateral
