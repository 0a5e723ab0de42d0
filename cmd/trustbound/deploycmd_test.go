package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/trustbound/trustbound/manifest"
)

// deployTestdata is package deploy's test data; its golden files are what
// `trustbound deploy` must write for the same inputs.
var deployTestdata = filepath.Join("..", "..", "deploy", "testdata")

func copyManifest(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(deployTestdata, "manifest.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "manifest.yaml")
	if err := os.WriteFile(p, b, 0o640); err != nil {
		t.Fatal(err)
	}
	return p
}

func sameAsGolden(t *testing.T, got, golden string) {
	t.Helper()
	a, err := os.ReadFile(got)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(deployTestdata, "golden", golden))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Errorf("%s differs from golden %s", got, golden)
	}
}

func TestDeployKataPinsTheManifest(t *testing.T) {
	mpath := copyManifest(t)
	before, _ := os.ReadFile(mpath)
	out := t.TempDir()
	args := []string{"deploy", "--manifest", mpath, "--workload", "web", "--target", "kata",
		"--coordinator", "https://coordinator.trustbound.test:8443", "--ca", filepath.Join(deployTestdata, "coordinator-ca.crt"),
		"--pod", filepath.Join(deployTestdata, "pod-web.yaml"), "--agent-image", testAgentImage, "--out", out}
	code, stdout, stderr := runCmd(t, args...)
	if code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	sameAsGolden(t, filepath.Join(out, "kubernetes.yaml"), "kata-web-pod/kubernetes.yaml")
	sameAsGolden(t, filepath.Join(out, "policy.rego"), "kata-web-pod/policy.rego")
	sameAsGolden(t, filepath.Join(out, "initdata.toml"), "kata-web-pod/initdata.toml")
	doc, _ := os.ReadFile(filepath.Join(out, "initdata.toml"))
	hd := manifestHostData(t, doc)
	if !strings.Contains(stdout, "pod hostData of web: "+hd+"\n") ||
		!strings.Contains(stdout, "the manifest pins 0b6cc0d470443e4214367dbfe7a67cdb0f5728e6640247ca985bff897413ed2f; set hostData: \""+hd+"\" for web") {
		t.Errorf("stdout:\n%s", stdout)
	}
	if !strings.Contains(stderr, "note: image ghcr.io/example/metrics:v2 is not pinned by digest") {
		t.Errorf("no note about the unpinned image:\n%s", stderr)
	}
	if after, _ := os.ReadFile(mpath); !bytes.Equal(before, after) {
		t.Fatal("the manifest changed without --write-manifest")
	}

	// --write-manifest pins it in place, changing nothing else.
	code, stdout, stderr = runCmd(t, append(args, "--write-manifest")...)
	if code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	after, _ := os.ReadFile(mpath)
	want := bytes.Replace(before, []byte("0b6cc0d470443e4214367dbfe7a67cdb0f5728e6640247ca985bff897413ed2f"), []byte(hd), 1)
	if !bytes.Equal(after, want) {
		t.Errorf("pinned manifest:\n%s", after)
	}
	if info, _ := os.Stat(mpath); info.Mode().Perm() != 0o640 {
		t.Errorf("manifest mode %v, want 0640 kept", info.Mode().Perm())
	}
	if !strings.Contains(stdout, "pinned it in "+mpath) {
		t.Errorf("stdout:\n%s", stdout)
	}
	code, stdout, _ = runCmd(t, args...)
	if code != exitOK || !strings.Contains(stdout, "the manifest already pins it\n") {
		t.Errorf("rerun: exit %d\n%s", code, stdout)
	}

	// --allow-exec says so, and its policy is another hostData.
	code, stdout, stderr = runCmd(t, append(args, "--allow-exec")...)
	if code != exitOK || !strings.Contains(stderr, "note: EXEC IS ALLOWED") || strings.Contains(stdout, "already pins it") {
		t.Errorf("--allow-exec: exit %d\n%s\n%s", code, stdout, stderr)
	}
}

// testAgentImage is a fixed example of an agent image pinned by digest,
// as in package deploy's golden files.
var testAgentImage = "ghcr.io/trustbound/trustbound@sha256:" + strings.Repeat("cd", 32)

// manifestHostData is the lower-case hex SHA-256 of the init-data
// document doc: SNP hostData of an upstream Kata pod.
func manifestHostData(t *testing.T, doc []byte) string {
	t.Helper()
	if len(doc) == 0 {
		t.Fatal("empty init-data")
	}
	h := sha256.Sum256(doc)
	return hex.EncodeToString(h[:])
}

func TestDeployTDXPodPinsSHA384(t *testing.T) {
	mpath := copyManifest(t)
	out := t.TempDir()
	code, stdout, stderr := runCmd(t, "deploy", "--manifest", mpath, "--workload", "api-td", "--target", "kata",
		"--coordinator", "https://coordinator.trustbound.test:8443", "--ca", filepath.Join(deployTestdata, "coordinator-ca.crt"),
		"--image", "ghcr.io/example/api:v1", "--namespace", "api", "--agent-image", testAgentImage, "--out", out, "--write-manifest")
	if code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	sameAsGolden(t, filepath.Join(out, "kubernetes.yaml"), "kata-api-td/kubernetes.yaml")
	sameAsGolden(t, filepath.Join(out, "initdata.toml"), "kata-api-td/initdata.toml")
	doc, _ := os.ReadFile(filepath.Join(out, "initdata.toml"))
	if !strings.Contains(string(doc), "algorithm = \"sha384\"\n") {
		t.Errorf("TDX init-data is not hashed with SHA-384:\n%s", doc)
	}
	if !strings.Contains(stdout, "pinned it in "+mpath) {
		t.Errorf("stdout:\n%s", stdout)
	}
	m, _, err := manifest.Load(mpath)
	if err != nil {
		t.Fatalf("the pinned manifest does not load: %v", err)
	}
	if w, _ := m.Workload("api-td"); len(w.Reference.HostData) != 48 {
		t.Errorf("TDX hostData is %d bytes, want 48 (SHA-384 of the init-data, MRCONFIGID)", len(w.Reference.HostData))
	}
}

func TestDeployCVMAndSGX(t *testing.T) {
	mpath := copyManifest(t)
	ca := filepath.Join(deployTestdata, "coordinator-ca.crt")
	out := t.TempDir()
	code, stdout, stderr := runCmd(t, "deploy", "--manifest", mpath, "--workload", "ledger-vm", "--target", "cvm",
		"--coordinator", "https://coordinator.trustbound.test:8443", "--ca", ca, "--out", out,
		"--binary-url", "https://downloads.trustbound.test/trustbound-linux-amd64", "--binary-sha256", strings.Repeat("ab", 32))
	if code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	sameAsGolden(t, filepath.Join(out, "user-data.yaml"), "cvm-ledger-vm/user-data.yaml")
	if strings.Contains(stdout, "hostData") {
		t.Errorf("a CVM printed a hostData:\n%s", stdout)
	}
	out = t.TempDir()
	code, stdout, stderr = runCmd(t, "deploy", "--manifest", mpath, "--workload", "signer", "--target", "sgx-container",
		"--coordinator", "https://coordinator.trustbound.test:8443", "--ca", ca, "--out", out, "--epc", "128Mi")
	if code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	sameAsGolden(t, filepath.Join(out, "kubernetes.yaml"), "sgx-signer/kubernetes.yaml")
}

func TestDeployRefuses(t *testing.T) {
	mpath := copyManifest(t)
	ca := filepath.Join(deployTestdata, "coordinator-ca.crt")
	base := []string{"deploy", "--manifest", mpath, "--coordinator", "https://c.test", "--ca", ca, "--out", t.TempDir()}
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--workload", "web"}, exitUsage, "--target is required"},
		{[]string{"--workload", "ledger-vm", "--target", "cvm", "--write-manifest"}, exitUsage, "--write-manifest is for --target kata"},
		{[]string{"--workload", "web", "--target", "kata", "--kind", "job"}, exitUsage, "--kind must be deployment or pod"},
		{[]string{"--workload", "web", "--target", "kata"}, exitRefused, "no agent image: give --agent-image REPO@sha256:DIGEST"},
		{[]string{"--workload", "web", "--target", "kata", "--agent-image", "ghcr.io/trustbound/trustbound:v1"}, exitRefused, "is not pinned by digest"},
		{[]string{"--workload", "api-td", "--target", "kata", "--agent-image", testAgentImage, "--runtime-class", "kata-cc-isolation"}, exitRefused, "runtime class kata-cc-isolation is not supported yet: AKS's host-pulled dm-verity layers are not modelled"},
		{[]string{"--workload", "web", "--target", "kata", "--agent-image", testAgentImage, "--runtime-class", "kata-cc-isolation"}, exitRefused, "use an upstream CoCo runtime class (kata-qemu-snp for"},
		{[]string{"--workload", "ledger-vm", "--target", "kata"}, exitRefused, "target does not fit the workload"},
		{[]string{"--workload", "web", "--target", "kata", "--agent-image", testAgentImage, "--pod", mpath}, exitRefused, "pod spec"},
	} {
		code, _, stderr := runCmd(t, append(base, tc.args...)...)
		if code != tc.code || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit %d saying %q", tc.args, code, stderr, tc.code, tc.want)
		}
	}
}
