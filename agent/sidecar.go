package agent

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/trustbound/trustbound/api"
	"github.com/trustbound/trustbound/attest"
	"github.com/trustbound/trustbound/keybroker"
	"github.com/trustbound/trustbound/token"
)

// The local HTTP API of Azure's confidential-containers key-release
// sidecar (microsoft/confidential-sidecar-containers, cmd/skr), backed by
// trustbound, so that applications written for that sidecar run
// unchanged:
//
//	GET  /status       → 200 {"message": "Status OK"}
//	POST /attest/raw   {"runtime_data": base64} → {"report": hex}
//	POST /attest/maa   {"maa_endpoint", "runtime_data"} → {"token": JWT}
//	POST /key/release  {"maa_endpoint", "akv_endpoint", "kid", "access_token"?}
//	                   → {"key": "<the JWK, as a JSON string>"}
//
// Refusals are {"error": "<message>"}: 400 for a request that does not
// decode, 403 when attestation or release fails, as the sidecar answers.
// As in the sidecar, runtime_data is standard base64, the report data is
// SHA-256(runtime_data) followed by 32 zero bytes, members the sidecar
// ignores are ignored, and the released key is returned as the JSON text
// of a JWK inside a string.
//
// What trustbound decides:
//   - The configured coordinator is both the attestation service and the
//     key vault. maa_endpoint and akv_endpoint are required (as in the
//     sidecar) and must name it (host[:port], with or without https://);
//     any other endpoint is refused rather than silently replaced, so an
//     application never receives a key from an authority it did not ask.
//   - /attest/maa posts to the coordinator's Azure surface (POST
//     /attest/SevSnpVm, or AzureGuest, SgxEnclave, TdxVm by the TEE's
//     evidence format). runtime_data goes as dataType JSON when it is a
//     JSON object the coordinator accepts as x-ms-runtime, else as Binary
//     (the token then carries only its hash in the report data).
//   - /key/release takes its token from the coordinator's native attest
//     (the Azure surface's tokens carry no workload, and the release
//     surface grants keys per workload): the runtime data binds the
//     session's identity keys and a fresh RSA-2048 key, kid
//     TpmEphemeralEncryptionKey with key_ops ["encrypt"], as the sidecar
//     binds its wrapping key. The release asks for RSA_AES_KEY_WRAP_256;
//     its result is verified against the coordinator's /certs before the
//     key is unwrapped. kid is "name" or "name/version".
//   - access_token, when given, is the coordinator's key-release bearer;
//     otherwise the sidecar's configured bearer (the counterpart of the
//     sidecar's managed identity) is used.
//   - The API is served on loopback only (ListenSidecar), and requests
//     whose Host is not a loopback name are refused (DNS rebinding).
//   - Requests carrying an Origin header are refused (403): browsers send
//     it on every cross-origin POST, so a web page the machine's browser
//     opens cannot use the API; the applications the API is for do not
//     send it. (The sidecar ignores Content-Type, so requiring
//     application/json, the other defence, would break its clients.)
//   - At most MaxInFlight POSTs are answered at once; the others get 503
//     with Retry-After: 1.

// sidecarMaxBody bounds a request body.
const sidecarMaxBody = 1 << 20

// sidecarWrapKeyID is the kid of the RSA wrapping key in the runtime data,
// the name Azure's tokens give it.
const sidecarWrapKeyID = "TpmEphemeralEncryptionKey"

// sidecarEnc is the release's wrapping: Key Vault's default.
const sidecarEnc = "RSA_AES_KEY_WRAP_256"

// Sidecar serves the key-release sidecar's API for one attested workload.
type Sidecar struct {
	// Client reaches the coordinator; its base URL is the only endpoint
	// requests may name.
	Client *Client
	// TEE produces the evidence of every request.
	TEE attest.Attester
	// Workload is the workload name key releases attest as.
	Workload string
	// Identity holds the TEE-held keys bound into key releases' runtime
	// data (the agent's session identity).
	Identity *Identity
	// Bearer is the coordinator's key-release access token, used when a
	// request carries no access_token. Empty: such requests are refused.
	Bearer []byte
	// Logger receives one line per refusal (default: discard). Messages
	// never carry secrets.
	Logger *slog.Logger
	// MaxInFlight bounds the POST requests being answered at once (each
	// asks the TEE for a report and may call the coordinator); more are
	// refused with 503 and Retry-After. Zero means 4.
	MaxInFlight int
}

// defaultSidecarInFlight is MaxInFlight's default.
const defaultSidecarInFlight = 4

// ListenSidecar listens on addr, which must be a loopback address
// (127.0.0.0/8, ::1 or localhost, with a port): the sidecar's API hands
// out keys and evidence to whoever can reach it.
func ListenSidecar(addr string) (net.Listener, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("sidecar address %q: %w", addr, err)
	}
	if !loopbackName(host) {
		return nil, fmt.Errorf("sidecar address %q is not loopback: the key-release API is served on 127.0.0.1, ::1 or localhost only", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	if a, ok := ln.Addr().(*net.TCPAddr); !ok || !a.IP.IsLoopback() {
		ln.Close()
		return nil, fmt.Errorf("sidecar address %q resolved to %v, which is not loopback", addr, ln.Addr())
	}
	return ln, nil
}

// loopbackName reports whether host is localhost or a loopback IP.
func loopbackName(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// loopbackHost reports whether a Host header (host, [v6] or host:port)
// names a loopback host.
func loopbackHost(h string) bool {
	if host, _, err := net.SplitHostPort(h); err == nil {
		h = host
	}
	return loopbackName(strings.TrimSuffix(strings.TrimPrefix(h, "["), "]"))
}

// Serve answers the API on ln until ctx is done. Requests run under ctx
// (they are cancelled with it), and Serve returns only once the requests
// in progress have ended or been given up after a grace period.
func (s *Sidecar) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10,
		BaseContext: func(net.Listener) context.Context { return ctx }}
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		select {
		case <-ctx.Done():
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if srv.Shutdown(sctx) != nil {
				_ = srv.Close()
			}
		case <-done:
		}
	}()
	err := srv.Serve(ln)
	close(done)
	<-stopped
	if errors.Is(err, http.ErrServerClosed) {
		return ctx.Err()
	}
	return err
}

// Handler is the sidecar's API.
func (s *Sidecar) Handler() http.Handler {
	routes := map[string]http.HandlerFunc{
		"GET /status":       s.handleStatus,
		"POST /attest/raw":  s.handleRaw,
		"POST /attest/maa":  s.handleMAA,
		"POST /key/release": s.handleRelease,
	}
	n := s.MaxInFlight
	if n <= 0 {
		n = defaultSidecarInFlight
	}
	slots := make(chan struct{}, n)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !loopbackHost(r.Host) {
			s.fail(w, r, http.StatusForbidden, fmt.Errorf("host %q is not a loopback name", r.Host))
			return
		}
		if _, ok := r.Header["Origin"]; ok {
			s.fail(w, r, http.StatusForbidden, errors.New("requests from a web page (with an Origin header) are refused"))
			return
		}
		h, ok := routes[r.Method+" "+r.URL.Path]
		if !ok {
			s.fail(w, r, http.StatusNotFound, fmt.Errorf("no %s %s: the API is GET /status, POST /attest/raw, POST /attest/maa, POST /key/release", r.Method, r.URL.Path))
			return
		}
		if r.Method == http.MethodPost {
			select {
			case slots <- struct{}{}:
				defer func() { <-slots }()
			default:
				w.Header().Set("Retry-After", "1")
				s.fail(w, r, http.StatusServiceUnavailable, fmt.Errorf("busy: %d requests are being answered; retry", n))
				return
			}
		}
		h(w, r)
	})
}

func (s *Sidecar) log() *slog.Logger {
	if s.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Logger
}

// fail writes the sidecar's error body.
func (s *Sidecar) fail(w http.ResponseWriter, r *http.Request, status int, err error) {
	s.log().Warn("sidecar request refused", "method", r.Method, "path", r.URL.Path, "status", status, "err", err)
	writeSidecarJSON(w, status, map[string]string{"error": err.Error()})
}

func writeSidecarJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (s *Sidecar) ready() bool {
	return s.Client != nil && s.TEE != nil && s.Identity != nil && s.Workload != ""
}

func (s *Sidecar) handleStatus(w http.ResponseWriter, r *http.Request) {
	msg := "Status OK"
	if !s.ready() {
		msg = "Status NOT OK"
	}
	writeSidecarJSON(w, http.StatusOK, map[string]string{"message": msg})
}

// sidecarRequest is the union of the API's request bodies.
type sidecarRequest struct {
	MAAEndpoint string `json:"maa_endpoint"`
	AKVEndpoint string `json:"akv_endpoint"`
	KID         string `json:"kid"`
	AccessToken string `json:"access_token"`
	RuntimeData string `json:"runtime_data"`
}

// parseSidecarRequest decodes one JSON object (members it does not name
// are ignored, as the sidecar ignores them) and checks that the required
// members are non-empty.
func parseSidecarRequest(body []byte, required ...string) (*sidecarRequest, error) {
	var req sidecarRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&req); err != nil {
		return nil, fmt.Errorf("invalid request format: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("invalid request format: data after the JSON object")
	}
	var missing []string
	for _, name := range required {
		v := map[string]string{"maa_endpoint": req.MAAEndpoint, "akv_endpoint": req.AKVEndpoint, "kid": req.KID, "runtime_data": req.RuntimeData}[name]
		if v == "" {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("invalid request format: %s required", strings.Join(missing, ", "))
	}
	return &req, nil
}

// read reads a bounded request body and decodes it with the required
// members, answering the refusal itself.
func (s *Sidecar) read(w http.ResponseWriter, r *http.Request, required ...string) (*sidecarRequest, bool) {
	if !s.ready() {
		s.fail(w, r, http.StatusForbidden, errors.New("the sidecar is not ready: no attested workload"))
		return nil, false
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, sidecarMaxBody))
	if err != nil {
		s.fail(w, r, http.StatusBadRequest, fmt.Errorf("invalid request format: the body is unreadable or over %d bytes", sidecarMaxBody))
		return nil, false
	}
	req, err := parseSidecarRequest(body, required...)
	if err != nil {
		s.fail(w, r, http.StatusBadRequest, err)
		return nil, false
	}
	return req, true
}

// runtimeData decodes runtime_data (standard base64, as the sidecar).
func (s *Sidecar) runtimeData(w http.ResponseWriter, r *http.Request, req *sidecarRequest) ([]byte, bool) {
	rd, err := base64.StdEncoding.DecodeString(req.RuntimeData)
	if err != nil {
		s.fail(w, r, http.StatusBadRequest, fmt.Errorf("decoding base64-encoded runtime data of request failed: %w", err))
		return nil, false
	}
	return rd, true
}

// checkEndpoint refuses an endpoint that does not name the coordinator.
func (s *Sidecar) checkEndpoint(member, endpoint string) error {
	base, err := url.Parse(s.Client.BaseURL())
	if err != nil {
		return fmt.Errorf("coordinator URL: %w", err)
	}
	raw := endpoint
	if !strings.Contains(raw, "://") {
		raw = "https://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "https" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
		return fmt.Errorf("%s %q is not host[:port] or an https URL of a host", member, endpoint)
	}
	if hostPort(u) != hostPort(base) {
		return fmt.Errorf("%s %q is not this sidecar's coordinator (%s): trustbound attests and releases keys only through it", member, endpoint, base.Host)
	}
	return nil
}

// hostPort is u's lower-case host with its port, 443 when none is given.
func hostPort(u *url.URL) string {
	port := u.Port()
	if port == "" {
		port = "443"
	}
	return net.JoinHostPort(strings.ToLower(u.Hostname()), port)
}

// rawEvidenceFormats are the formats whose evidence is a raw hardware
// report with report data SHA-256(runtime_data) || zeros.
var rawEvidenceFormats = map[attest.Format]bool{
	attest.FormatSNPReport:  true,
	attest.FormatSGXQuoteV3: true,
	attest.FormatTDXQuote:   true,
}

func (s *Sidecar) handleRaw(w http.ResponseWriter, r *http.Request) {
	req, ok := s.read(w, r, "runtime_data")
	if !ok {
		return
	}
	rd, ok := s.runtimeData(w, r, req)
	if !ok {
		return
	}
	ev, err := s.TEE.Attest(r.Context(), attest.ReportDataFor(rd))
	if err != nil {
		s.fail(w, r, http.StatusForbidden, fmt.Errorf("fetching the attestation report failed: %w", err))
		return
	}
	if !rawEvidenceFormats[ev.Format] {
		s.fail(w, r, http.StatusForbidden, fmt.Errorf("this TEE's evidence is %s, not a raw hardware report whose report data is the hash of runtime_data", ev.Format))
		return
	}
	writeSidecarJSON(w, http.StatusOK, map[string]string{"report": hex.EncodeToString(ev.Data)})
}

func (s *Sidecar) handleMAA(w http.ResponseWriter, r *http.Request) {
	req, ok := s.read(w, r, "maa_endpoint", "runtime_data")
	if !ok {
		return
	}
	if err := s.checkEndpoint("maa_endpoint", req.MAAEndpoint); err != nil {
		s.fail(w, r, http.StatusForbidden, err)
		return
	}
	rd, ok := s.runtimeData(w, r, req)
	if !ok {
		return
	}
	tok, err := s.maaToken(r.Context(), rd)
	if err != nil {
		s.fail(w, r, http.StatusForbidden, fmt.Errorf("attestation failed: %w", err))
		return
	}
	writeSidecarJSON(w, http.StatusOK, map[string]string{"token": tok})
}

// maaToken attests runtime at the coordinator's Azure surface.
func (s *Sidecar) maaToken(ctx context.Context, runtime []byte) (string, error) {
	ev, err := s.TEE.Attest(ctx, attest.ReportDataFor(runtime))
	if err != nil {
		return "", fmt.Errorf("evidence from the %s TEE: %w", s.TEE.TEE(), err)
	}
	kind, body, err := maaRequestFor(ev, runtime)
	if err != nil {
		return "", err
	}
	var out struct {
		Token string `json:"token"`
	}
	if err := s.coordinatorPost(ctx, "/attest/"+kind+"?api-version=2020-10-01", nil, body, &out); err != nil {
		return "", err
	}
	if out.Token == "" {
		return "", errors.New("empty token string in the coordinator's response")
	}
	return out.Token, nil
}

// maaRequestFor is the Azure attest request of ev and its attestation
// type. runtime goes as JSON when the coordinator takes it as x-ms-runtime.
func maaRequestFor(ev *attest.Evidence, runtime []byte) (string, map[string]any, error) {
	b64 := base64.RawURLEncoding.EncodeToString
	dataType := "Binary"
	if _, err := token.ParseRuntime(runtime); err == nil {
		dataType = "JSON"
	}
	req := map[string]any{"runtimeData": map[string]string{"data": b64(runtime), "dataType": dataType}}
	switch ev.Format {
	case attest.FormatSNPReport:
		var chain []byte
		for _, der := range ev.Certs {
			chain = append(chain, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
		}
		report, err := json.Marshal(map[string]string{"SnpReport": b64(ev.Data), "VcekCertChain": b64(chain)})
		if err != nil {
			return "", nil, err
		}
		req["report"] = b64(report)
		return "SevSnpVm", req, nil
	case attest.FormatAzureSNPVTPM, attest.FormatAzureTDXVTPM:
		req["evidence"] = b64(ev.Data)
		return "AzureGuest", req, nil
	case attest.FormatSGXQuoteV3:
		req["quote"] = b64(ev.Data)
		return "SgxEnclave", req, nil
	case attest.FormatTDXQuote:
		req["quote"] = b64(ev.Data)
		return "TdxVm", req, nil
	}
	return "", nil, fmt.Errorf("no Azure attestation type takes %s evidence", ev.Format)
}

// coordinatorPost posts in as JSON to path and decodes a 2xx answer into
// out; a refusal becomes an error with the coordinator's code and message
// (Azure's and Key Vault's {"error": {"code", "message"}}).
func (s *Sidecar) coordinatorPost(ctx context.Context, path string, hdr http.Header, in, out any) error {
	b, err := json.Marshal(in)
	if err != nil {
		return err
	}
	return s.Client.doWith(ctx, http.MethodPost, path, b, hdr, out, azureError)
}

// azureError decodes Azure's and Key Vault's {"error": {"code", "message"}}.
func azureError(status int, body []byte) error {
	var e struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	if json.Unmarshal(body, &e) != nil || e.Error.Code == "" {
		return nil
	}
	return fmt.Errorf("the coordinator refused (HTTP %d %s): %s", status, e.Error.Code, e.Error.Message)
}

// sidecarKID is a key name with an optional version.
var sidecarKID = regexp.MustCompile(`^([A-Za-z0-9_-][A-Za-z0-9._-]{0,126})(/[A-Za-z0-9]{1,64})?$`)

func (s *Sidecar) handleRelease(w http.ResponseWriter, r *http.Request) {
	req, ok := s.read(w, r, "maa_endpoint", "akv_endpoint", "kid")
	if !ok {
		return
	}
	for _, e := range [][2]string{{"maa_endpoint", req.MAAEndpoint}, {"akv_endpoint", req.AKVEndpoint}} {
		if err := s.checkEndpoint(e[0], e[1]); err != nil {
			s.fail(w, r, http.StatusForbidden, err)
			return
		}
	}
	if !sidecarKID.MatchString(req.KID) {
		s.fail(w, r, http.StatusBadRequest, fmt.Errorf("invalid request format: kid %q is not a key name, optionally /version", req.KID))
		return
	}
	bearer := []byte(req.AccessToken)
	if len(bearer) == 0 {
		bearer = s.Bearer
	}
	if len(bearer) == 0 {
		s.fail(w, r, http.StatusForbidden, errors.New("no access token: pass access_token, or start the agent with --key-release-bearer-file"))
		return
	}
	jwk, err := s.release(r.Context(), req.KID, string(bearer))
	if err != nil {
		s.fail(w, r, http.StatusForbidden, fmt.Errorf("releasing the key %s failed: %w", req.KID, err))
		return
	}
	defer clear(jwk)
	writeSidecarKey(w, jwk)
}

// writeSidecarKey answers {"key": "<jwk as a JSON string>"}, as the sidecar
// does, from a body it builds and zeroes itself, so that no copy of the key
// is left in a string or an encoder's buffer.
func writeSidecarKey(w http.ResponseWriter, jwk []byte) {
	const hexDigits = "0123456789abcdef"
	body := make([]byte, 0, len(jwk)+len(jwk)/4+16)
	defer func() { clear(body) }()
	body = append(body, `{"key":"`...)
	for _, c := range jwk {
		switch {
		case c == '"' || c == '\\':
			body = append(body, '\\', c)
		case c < 0x20:
			body = append(body, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		default:
			body = append(body, c)
		}
	}
	body = append(body, "\"}\n"...)
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}

// zeroKey overwrites the private scalars of an RSA or ECDSA key this
// package holds. Go keeps further internal copies (precomputed values)
// that it cannot reach; those are left to the garbage collector.
func zeroKey(k any) {
	switch k := k.(type) {
	case *rsa.PrivateKey:
		if k.D != nil {
			clear(k.D.Bits())
		}
		for _, p := range k.Primes {
			clear(p.Bits())
		}
	case *ecdsa.PrivateKey:
		if k.D != nil {
			clear(k.D.Bits())
		}
	}
}

// release runs the secure key release of kid and returns the key as JWK
// JSON.
func (s *Sidecar) release(ctx context.Context, kid, bearer string) ([]byte, error) {
	wrapKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	defer zeroKey(wrapKey)
	pub, err := api.NewJWK(sidecarWrapKeyID, "enc", &wrapKey.PublicKey)
	if err != nil {
		return nil, err
	}
	pub.KeyOps = []string{"encrypt"}
	ev, err := s.Identity.evidence(ctx, s.Client, s.TEE, s.Workload, []api.JWK{pub})
	if err != nil {
		return nil, fmt.Errorf("attestation failed: %w", err)
	}
	ar, err := s.Client.Attest(ctx, ev)
	if err != nil {
		return nil, fmt.Errorf("attestation failed: %w", err)
	}
	var out struct {
		Value string `json:"value"`
	}
	hdr := http.Header{"Authorization": {"Bearer " + bearer}}
	if err := s.coordinatorPost(ctx, "/keys/"+kid+"/release?api-version=7.4", hdr,
		map[string]string{"target": ar.Token, "enc": sidecarEnc}, &out); err != nil {
		return nil, err
	}
	return s.openRelease(ctx, out.Value, kid, wrapKey)
}

// releaseResult is the part of Key Vault's release result the sidecar
// reads.
type releaseResult struct {
	Request struct {
		Enc string `json:"enc"`
		KID string `json:"kid"`
	} `json:"request"`
	Response struct {
		Key struct {
			Key struct {
				KID    string `json:"kid"`
				Kty    string `json:"kty"`
				KeyHSM string `json:"key_hsm"`
			} `json:"key"`
		} `json:"key"`
	} `json:"response"`
}

// releasedKey reports whether a Key Vault key identifier
// (".../keys/<name>/<version>") is of key name and, when version is not
// empty, of that version.
func releasedKey(kid, name, version string) bool {
	i := strings.LastIndex(kid, "/keys/")
	if i < 0 {
		return false
	}
	n, v, ok := strings.Cut(kid[i+len("/keys/"):], "/")
	return ok && n == name && v != "" && !strings.Contains(v, "/") && (version == "" || v == version)
}

// releaseHashes are the OAEP hashes of Key Vault's RSA-AES wrappings.
var releaseHashes = map[string]crypto.Hash{
	"CKM_RSA_AES_KEY_WRAP": crypto.SHA1,
	"RSA_AES_KEY_WRAP_256": crypto.SHA256,
	"RSA_AES_KEY_WRAP_384": crypto.SHA384,
}

// openRelease verifies the release result value against the
// coordinator's published token keys, checks that it is the key kid asked
// for ("name" or "name/version"), wrapped as asked (sidecarEnc), unwraps
// the key with wrapKey and returns it as JWK JSON: "oct" for a symmetric
// key, the private JWK of a key pair.
func (s *Sidecar) openRelease(ctx context.Context, value, kid string, wrapKey *rsa.PrivateKey) ([]byte, error) {
	keys, err := s.tokenKeys(ctx)
	if err != nil {
		return nil, err
	}
	payload, err := verifyRelease(value, keys)
	if err != nil {
		return nil, err
	}
	return openReleasePayload(payload, kid, wrapKey)
}

// tokenKeys fetches the coordinator's JWK Set (GET /certs).
func (s *Sidecar) tokenKeys(ctx context.Context) (*jose.JSONWebKeySet, error) {
	var set jose.JSONWebKeySet
	if err := s.Client.doWith(ctx, http.MethodGet, api.PathCerts, nil, nil, &set, nil); err != nil {
		return nil, err
	}
	return &set, nil
}

// verifyRelease checks the RS256 signature of a release result by a key
// of set and returns its payload.
func verifyRelease(value string, set *jose.JSONWebKeySet) ([]byte, error) {
	jws, err := jose.ParseSigned(value, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		return nil, fmt.Errorf("release result: %w", err)
	}
	if len(jws.Signatures) != 1 {
		return nil, errors.New("release result: not exactly one signature")
	}
	kid := jws.Signatures[0].Header.KeyID
	keys := set.Key(kid)
	if len(keys) != 1 {
		return nil, fmt.Errorf("release result: signed by key %q, which the coordinator does not publish", kid)
	}
	payload, err := jws.Verify(keys[0].Key)
	if err != nil {
		return nil, fmt.Errorf("release result: signature: %w", err)
	}
	return payload, nil
}

// openReleasePayload reads a verified release payload for kid ("name" or
// "name/version") and unwraps its key with wrapKey into JWK JSON. The
// result must be of that key (and version, when one was asked) and
// wrapped with sidecarEnc, in its request and in its key_hsm header.
func openReleasePayload(payload []byte, kid string, wrapKey *rsa.PrivateKey) ([]byte, error) {
	var res releaseResult
	if err := json.Unmarshal(payload, &res); err != nil {
		return nil, fmt.Errorf("release result: %w", err)
	}
	name, version, _ := strings.Cut(kid, "/")
	if k := res.Response.Key.Key.KID; !releasedKey(k, name, version) {
		return nil, fmt.Errorf("release result: response.key.key.kid %q is not key %q", k, kid)
	}
	if k := res.Request.KID; k != res.Response.Key.Key.KID {
		return nil, fmt.Errorf("release result: request.kid %q is not the released key %q", k, res.Response.Key.Key.KID)
	}
	if res.Request.Enc != sidecarEnc {
		return nil, fmt.Errorf("release result: request.enc %q, but %s was asked", res.Request.Enc, sidecarEnc)
	}
	hsmJSON, err := base64.RawURLEncoding.DecodeString(res.Response.Key.Key.KeyHSM)
	if err != nil {
		return nil, fmt.Errorf("release result: key_hsm: %w", err)
	}
	var hsm struct {
		Header struct {
			Kid string `json:"kid"`
			Enc string `json:"enc"`
		} `json:"header"`
		Ciphertext string `json:"ciphertext"`
	}
	if err := json.Unmarshal(hsmJSON, &hsm); err != nil {
		return nil, fmt.Errorf("release result: key_hsm: %w", err)
	}
	if hsm.Header.Enc != sidecarEnc || hsm.Header.Kid != sidecarWrapKeyID {
		return nil, fmt.Errorf("release result: key_hsm header (kid %q, enc %q) does not match the request (kid %q, enc %q)",
			hsm.Header.Kid, hsm.Header.Enc, sidecarWrapKeyID, sidecarEnc)
	}
	hash, ok := releaseHashes[hsm.Header.Enc]
	if !ok {
		return nil, fmt.Errorf("release result: enc %q is not an RSA-AES key wrap", hsm.Header.Enc)
	}
	ct, err := base64.RawURLEncoding.DecodeString(hsm.Ciphertext)
	if err != nil {
		return nil, fmt.Errorf("release result: ciphertext: %w", err)
	}
	raw, err := keybroker.UnwrapRSAAES(wrapKey, hash, ct)
	if err != nil {
		return nil, fmt.Errorf("aes key unwrap failed: %w", err)
	}
	defer clear(raw)
	var jwk jose.JSONWebKey
	switch kty := res.Response.Key.Key.Kty; kty {
	case "oct", "oct-HSM":
		jwk.Key = raw
	case "RSA", "RSA-HSM", "EC", "EC-HSM":
		k, err := x509.ParsePKCS8PrivateKey(raw)
		if err != nil {
			return nil, fmt.Errorf("released %s key: %w", kty, err)
		}
		defer zeroKey(k)
		jwk.Key = k
	default:
		return nil, fmt.Errorf("released key type %q not supported", kty)
	}
	return jwk.MarshalJSON()
}
