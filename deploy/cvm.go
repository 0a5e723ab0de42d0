package deploy

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/trustbound/trustbound/manifest"
)

// Paths inside a confidential VM.
const (
	cvmBinary    = "/usr/local/bin/trustbound"
	cvmCA        = "/etc/trustbound/coordinator-ca.crt"
	cvmAgentUnit = "trustbound-agent.service"
	// run-trustbound.mount is the unit name systemd requires for a mount
	// at /run/trustbound.
	cvmMountUnit = "run-trustbound.mount"
)

// MaxCASize bounds the coordinator CA file.
const MaxCASize = 64 << 10

// checkCAPEM accepts one or more PEM CERTIFICATE blocks, each a parseable
// X.509 CA certificate, and nothing else.
func checkCAPEM(b []byte) error {
	if len(b) == 0 {
		return errors.New("deploy: no coordinator CA: pass the PEM file of the coordinator's CA (from its data directory)")
	}
	if len(b) > MaxCASize {
		return fmt.Errorf("deploy: coordinator CA: %d bytes, the limit is %d", len(b), MaxCASize)
	}
	rest := b
	n := 0
	for {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil {
			break
		}
		n++
		if blk.Type != "CERTIFICATE" {
			return fmt.Errorf("deploy: coordinator CA: PEM block %d is %q, want CERTIFICATE", n, blk.Type)
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return fmt.Errorf("deploy: coordinator CA: certificate %d: %w", n, err)
		}
		if !c.IsCA {
			return fmt.Errorf("deploy: coordinator CA: certificate %d (%s) is not a CA", n, c.Subject)
		}
	}
	if n == 0 || len(bytes.TrimSpace(rest)) != 0 {
		return errors.New("deploy: coordinator CA: want PEM CERTIFICATE blocks and nothing else")
	}
	return nil
}

// agentArgs is the agent's command line in every target but SGX. The
// agent refuses to run unless the CA file's SHA-256 is --ca-sha256: the
// file comes from the host (a ConfigMap, user data), the command line is
// pinned (by the Kata policy; in a VM only by a measured image).
func agentArgs(binary, ca string, w *manifest.Workload, o Options) []string {
	sum := sha256.Sum256(o.CAPEM)
	return []string{binary, "agent", "--coordinator", o.Coordinator, "--ca", ca, "--ca-sha256", hex.EncodeToString(sum[:]), "--workload", w.Name, "--out", AgentDir}
}

var (
	unitName = regexp.MustCompile(`^[A-Za-z0-9:_.@-]{1,200}\.service$`)
	sha256Re = regexp.MustCompile(`^[0-9a-f]{64}$`)
)

// cloudConfig is the subset of cloud-init's #cloud-config schema written
// here.
type cloudConfig struct {
	WriteFiles []cloudFile `yaml:"write_files"`
	RunCmd     [][]string  `yaml:"runcmd"`
}

type cloudFile struct {
	Path        string `yaml:"path"`
	Owner       string `yaml:"owner"`
	Permissions string `yaml:"permissions"`
	Content     string `yaml:"content"`
}

// userData is the #cloud-config for a confidential VM.
func userData(w *manifest.Workload, o Options) ([]byte, error) {
	app := o.AppUnit
	if app == "" {
		app = w.Name + ".service"
	}
	if !unitName.MatchString(app) {
		return nil, fmt.Errorf("deploy: application unit %q: want a systemd service name such as %s.service", app, w.Name)
	}
	if (o.BinaryURL == "") != (o.BinarySHA256 == "") {
		return nil, errors.New("deploy: give both the binary's URL and its SHA-256, or neither")
	}
	if o.BinaryURL != "" {
		u, err := url.Parse(o.BinaryURL)
		if err != nil || u.Scheme != "https" || u.Host == "" || strings.ContainsAny(o.BinaryURL, " \t\r\n\"'\\`$") {
			return nil, fmt.Errorf("deploy: binary URL %q: want an https URL without quotes or spaces", o.BinaryURL)
		}
		if !sha256Re.MatchString(o.BinarySHA256) {
			return nil, fmt.Errorf("deploy: binary SHA-256 %q: want 64 lower-case hex digits", o.BinarySHA256)
		}
	}

	agentUnit := fmt.Sprintf(`[Unit]
Description=trustbound agent: attest %[1]s and receive its identity and secrets
Documentation=https://github.com/trustbound/trustbound
Wants=network-online.target
After=network-online.target
Requires=%[2]s
After=%[2]s
Before=%[3]s

[Service]
Type=oneshot
RemainAfterExit=yes
UMask=0077
ExecStart=%[4]s
Restart=on-failure
RestartSec=5s
NoNewPrivileges=yes
ProtectSystem=strict
ReadWritePaths=%[5]s
PrivateTmp=yes

[Install]
WantedBy=multi-user.target
`, w.Name, cvmMountUnit, app, strings.Join(agentArgs(cvmBinary, cvmCA, w, o), " "), AgentDir)

	mountUnit := fmt.Sprintf(`[Unit]
Description=trustbound: memory-only directory for %s's identity and secrets

[Mount]
What=tmpfs
Where=%s
Type=tmpfs
Options=mode=0700,uid=0,gid=0,nosuid,nodev,noexec,size=16m
`, w.Name, AgentDir)

	dropIn := fmt.Sprintf(`# trustbound: %[1]s starts only after its agent attested and wrote
# %[2]s, and stops if the agent fails.
[Unit]
Requires=%[3]s
After=%[3]s
`, app, AgentDir, cvmAgentUnit)

	cc := cloudConfig{
		WriteFiles: []cloudFile{
			{Path: cvmCA, Owner: "root:root", Permissions: "0644", Content: string(o.CAPEM)},
			{Path: "/etc/systemd/system/" + cvmMountUnit, Owner: "root:root", Permissions: "0644", Content: mountUnit},
			{Path: "/etc/systemd/system/" + cvmAgentUnit, Owner: "root:root", Permissions: "0644", Content: agentUnit},
			{Path: "/etc/systemd/system/" + app + ".d/10-trustbound.conf", Owner: "root:root", Permissions: "0644", Content: dropIn},
		},
	}
	if o.BinaryURL != "" {
		tmp := cvmBinary + ".download"
		cc.RunCmd = append(cc.RunCmd,
			[]string{"curl", "--proto", "=https", "--tlsv1.2", "-fsSL", "-o", tmp, o.BinaryURL},
			[]string{"sh", "-c", fmt.Sprintf("echo '%s  %s' | sha256sum -c - && chmod 0755 %s && mv %s %s", o.BinarySHA256, tmp, tmp, tmp, cvmBinary)},
		)
	}
	cc.RunCmd = append(cc.RunCmd,
		[]string{"systemctl", "daemon-reload"},
		[]string{"systemctl", "enable", cvmAgentUnit},
		[]string{"systemctl", "restart", "--no-block", app},
	)
	body, err := yaml.Marshal(&cc)
	if err != nil {
		return nil, fmt.Errorf("deploy: cloud-config: %w", err)
	}
	var b bytes.Buffer
	b.WriteString("#cloud-config\n")
	fmt.Fprintf(&b, "# trustbound deploy: %s (%s on %s)\n", w.Name, w.Model, w.TEE)
	b.WriteString("#\n")
	fmt.Fprintf(&b, "# %s runs `trustbound agent` once at boot, before\n# %s: it attests the VM to the coordinator and writes the\n", cvmAgentUnit, app)
	fmt.Fprintf(&b, "# workload's key, certificate and secrets to %s (tmpfs, mode\n# 0700, never on disk). %s\n", AgentDir, app)
	b.WriteString("# requires the agent (drop-in 10-trustbound.conf): no attestation, no start;\n")
	b.WriteString("# runcmd restarts it so that this holds on the first boot too. The files\n")
	fmt.Fprintf(&b, "# are root's (0600): a non-root %s reads them through systemd\n# credentials (LoadCredential=) or must run as root.\n", app)
	b.WriteString("#\n")
	b.WriteString("# User data is handed to the VM by the host and is NOT part of the launch\n")
	b.WriteString("# measurement: the host can change every line of it, --ca-sha256 included.\n")
	b.WriteString("# The coordinator's CA below is the agent's only trust anchor for the\n")
	b.WriteString("# coordinator; the agent checks it against --ca-sha256, which binds it only\n")
	b.WriteString("# when the command line is measured. Bake the binary, the CA and these units\n")
	b.WriteString("# into a measured image (pinned in the manifest) for production.\n")
	if o.BinaryURL == "" {
		fmt.Fprintf(&b, "# The image must provide %s.\n", cvmBinary)
	} else {
		fmt.Fprintf(&b, "# runcmd downloads %s and installs it only if its SHA-256 matches.\n", cvmBinary)
	}
	b.Write(body)
	return b.Bytes(), nil
}

func genCVM(w *manifest.Workload, o Options) (*Result, error) {
	ud, err := userData(w, o)
	if err != nil {
		return nil, err
	}
	return &Result{
		Files: []File{{Name: "user-data.yaml", Data: ud}},
		Notes: []string{"user data is not measured: the host can replace the coordinator CA together with --ca-sha256; use a measured image with the agent, its units and the CA baked in for production"},
	}, nil
}
