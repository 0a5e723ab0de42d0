package deploy_test

import (
	"bytes"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/trustbound/trustbound/attest"
	"github.com/trustbound/trustbound/deploy"
	"github.com/trustbound/trustbound/initdata"
	"github.com/trustbound/trustbound/manifest"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/golden")

const testCoordinator = "https://coordinator.trustbound.test:8443"

// testAgentImage is a fixed example of an agent image pinned by digest.
var testAgentImage = "ghcr.io/trustbound/trustbound@sha256:" + strings.Repeat("cd", 32)

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func testManifest(t testing.TB) *manifest.Manifest {
	t.Helper()
	m, err := manifest.Parse(readTestdata(t, "manifest.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// goldenCase is one `trustbound deploy` run.
type goldenCase struct {
	name string
	opts deploy.Options
}

func goldenCases(t testing.TB) []goldenCase {
	ca := readTestdata(t, "coordinator-ca.crt")
	pod := readTestdata(t, "pod-web.yaml")
	base := func(target deploy.Target, workload string) deploy.Options {
		return deploy.Options{Target: target, Workload: workload, Coordinator: testCoordinator, CAPEM: ca}
	}
	withBinary := base(deploy.CVM, "ledger-vm")
	withBinary.BinaryURL = "https://downloads.trustbound.test/trustbound-linux-amd64"
	withBinary.BinarySHA256 = strings.Repeat("ab", 32)
	tdVM := base(deploy.CVM, "batch-td")
	tdVM.AppUnit = "batch.service"
	azTDX := base(deploy.AzureCVM, "batch-td")
	azTDX.DiskEncryption = "DiskWithVMGuestState"
	kata := func(workload string) deploy.Options {
		o := base(deploy.Kata, workload)
		o.AgentImage = testAgentImage
		return o
	}
	webPod := kata("web")
	webPod.Pod = pod
	webExec := webPod
	webExec.AllowExec = true
	webExec.AsPod = true
	apiTD := kata("api-td")
	apiTD.Image = "ghcr.io/example/api:v1"
	apiTD.Namespace = "api"
	sgx := base(deploy.SGXContainer, "signer")
	sgx.EPC = "128Mi"
	return []goldenCase{
		{"cvm-ledger-vm", withBinary},
		{"cvm-batch-td", tdVM},
		{"azure-cvm-ledger-vm", base(deploy.AzureCVM, "ledger-vm")},
		{"azure-cvm-batch-td", azTDX},
		{"kata-web-default", kata("web")},
		{"kata-web-pod", webPod},
		{"kata-web-allow-exec", webExec},
		{"kata-api-td", apiTD},
		{"sgx-signer", sgx},
	}
}

// TestGolden compares every target's artifacts with testdata/golden;
// -update rewrites them.
func TestGolden(t *testing.T) {
	m := testManifest(t)
	for _, tc := range goldenCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			res, err := deploy.Generate(m, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			dir := filepath.Join("testdata", "golden", tc.name)
			if *update {
				if err := os.RemoveAll(dir); err != nil {
					t.Fatal(err)
				}
				if err := os.MkdirAll(dir, 0o755); err != nil {
					t.Fatal(err)
				}
				for _, f := range res.Files {
					if err := os.WriteFile(filepath.Join(dir, f.Name), f.Data, 0o644); err != nil {
						t.Fatal(err)
					}
				}
			}
			entries, err := os.ReadDir(dir)
			if err != nil {
				t.Fatalf("%v (run go test -update to create the golden files)", err)
			}
			var have []string
			for _, e := range entries {
				have = append(have, e.Name())
			}
			var want []string
			for _, f := range res.Files {
				want = append(want, f.Name)
				golden, err := os.ReadFile(filepath.Join(dir, f.Name))
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(golden, f.Data) {
					t.Errorf("%s differs from %s (go test -update, then review the diff):\n%s", f.Name, dir, firstDiff(golden, f.Data))
				}
			}
			slices.Sort(want)
			if !slices.Equal(have, want) {
				t.Errorf("golden files %v, generated %v", have, want)
			}
		})
	}
}

func firstDiff(a, b []byte) string {
	al, bl := strings.Split(string(a), "\n"), strings.Split(string(b), "\n")
	for i := 0; i < max(len(al), len(bl)); i++ {
		var x, y string
		if i < len(al) {
			x = al[i]
		}
		if i < len(bl) {
			y = bl[i]
		}
		if x != y {
			return "line " + strconv.Itoa(i+1) + ":\n  golden:    " + x + "\n  generated: " + y
		}
	}
	return "(same lines)"
}

// docs splits a multi-document YAML file and decodes each document
// strictly into its upstream Kubernetes type.
type k8sObjects struct {
	configMaps  []corev1.ConfigMap
	deployments []appsv1.Deployment
	pods        []corev1.Pod
}

func decodeStrict(t *testing.T, data []byte) k8sObjects {
	t.Helper()
	var out k8sObjects
	for i, doc := range strings.Split(string(data), "\n---\n") {
		var head struct {
			Kind string `json:"kind"`
		}
		if err := yaml.Unmarshal([]byte(doc), &head); err != nil {
			t.Fatalf("document %d: %v", i, err)
		}
		var err error
		switch head.Kind {
		case "ConfigMap":
			var v corev1.ConfigMap
			err = yaml.UnmarshalStrict([]byte(doc), &v)
			out.configMaps = append(out.configMaps, v)
		case "Deployment":
			var v appsv1.Deployment
			err = yaml.UnmarshalStrict([]byte(doc), &v)
			out.deployments = append(out.deployments, v)
		case "Pod":
			var v corev1.Pod
			err = yaml.UnmarshalStrict([]byte(doc), &v)
			out.pods = append(out.pods, v)
		default:
			t.Fatalf("document %d: unexpected kind %q", i, head.Kind)
		}
		if err != nil {
			t.Fatalf("document %d (%s) does not decode strictly: %v", i, head.Kind, err)
		}
	}
	return out
}

func podOf(t *testing.T, objs k8sObjects) (corev1.PodSpec, map[string]string) {
	t.Helper()
	switch {
	case len(objs.deployments) == 1 && len(objs.pods) == 0:
		d := objs.deployments[0]
		if !equalMaps(d.Spec.Selector.MatchLabels, d.Spec.Template.Labels) {
			t.Errorf("selector %v does not match the template's labels %v", d.Spec.Selector.MatchLabels, d.Spec.Template.Labels)
		}
		return d.Spec.Template.Spec, d.Spec.Template.Annotations
	case len(objs.pods) == 1 && len(objs.deployments) == 0:
		return objs.pods[0].Spec, objs.pods[0].Annotations
	}
	t.Fatalf("want one Deployment or one Pod, got %d and %d", len(objs.deployments), len(objs.pods))
	return corev1.PodSpec{}, nil
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func fileOf(t *testing.T, res *deploy.Result, name string) []byte {
	t.Helper()
	for _, f := range res.Files {
		if f.Name == name {
			return f.Data
		}
	}
	t.Fatalf("no %s generated", name)
	return nil
}

// TestKataObjects checks the kata pods through upstream types: runtime
// class, the agent init container, the memory-backed shared directory and
// the policy annotation, whose hash is the result's hostData.
func TestKataObjects(t *testing.T) {
	m := testManifest(t)
	for _, tc := range goldenCases(t) {
		if tc.opts.Target != deploy.Kata {
			continue
		}
		t.Run(tc.name, func(t *testing.T) {
			res, err := deploy.Generate(m, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			objs := decodeStrict(t, fileOf(t, res, "kubernetes.yaml"))
			if len(objs.configMaps) != 1 || !strings.Contains(objs.configMaps[0].Data["coordinator-ca.crt"], "BEGIN CERTIFICATE") {
				t.Errorf("the coordinator CA ConfigMap is missing: %+v", objs.configMaps)
			}
			spec, ann := podOf(t, objs)
			w, _ := m.Workload(tc.opts.Workload)
			wantRC := map[attest.TEE]string{attest.SEVSNP: "kata-qemu-snp", attest.TDX: "kata-qemu-tdx"}[w.TEE]
			if tc.opts.RuntimeClass != "" {
				wantRC = tc.opts.RuntimeClass
			}
			if spec.RuntimeClassName == nil || *spec.RuntimeClassName != wantRC {
				t.Errorf("runtimeClassName %v, want %s", spec.RuntimeClassName, wantRC)
			}
			if len(spec.InitContainers) == 0 || spec.InitContainers[0].Name != "trustbound-agent" {
				t.Fatalf("the first init container is not the agent: %+v", spec.InitContainers)
			}
			agent := spec.InitContainers[0]
			if agent.Image != testAgentImage {
				t.Errorf("agent image %s, want %s", agent.Image, testAgentImage)
			}
			caSum := sha256.Sum256(tc.opts.CAPEM)
			if got := objs.configMaps[0].Data["coordinator-ca.crt"]; got != string(tc.opts.CAPEM) {
				t.Error("the CA ConfigMap does not hold the CA's bytes as given")
			}
			argv := append(slices.Clone(agent.Command), agent.Args...)
			wantArgv := []string{"/usr/local/bin/trustbound", "agent", "--coordinator", testCoordinator, "--ca", "/etc/trustbound/coordinator-ca.crt",
				"--ca-sha256", hex.EncodeToString(caSum[:]), "--workload", w.Name, "--out", "/run/trustbound"}
			if !slices.Equal(argv, wantArgv) {
				t.Errorf("agent argv %q, want %q", argv, wantArgv)
			}
			// The policy pins the agent's command line, --ca-sha256 included.
			if !strings.Contains(string(res.Policy), "\"--ca-sha256\",\n\t\t\t\t\""+hex.EncodeToString(caSum[:])+"\"") {
				t.Error("the policy does not pin --ca-sha256")
			}
			var shared *corev1.Volume
			for i, v := range spec.Volumes {
				if v.Name == "trustbound" {
					shared = &spec.Volumes[i]
				}
			}
			if shared == nil || shared.EmptyDir == nil || shared.EmptyDir.Medium != corev1.StorageMediumMemory {
				t.Fatalf("no memory-backed emptyDir for the agent's output: %+v", shared)
			}
			for _, c := range spec.Containers {
				if !slices.ContainsFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool {
					return m.Name == "trustbound" && m.MountPath == "/run/trustbound" && m.ReadOnly
				}) {
					t.Errorf("container %s does not mount /run/trustbound read-only", c.Name)
				}
			}
			if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
				t.Error("the service account token is mounted")
			}
			policy := res.Policy
			if !bytes.Equal(policy, fileOf(t, res, "policy.rego")) {
				t.Fatal("policy.rego is not the generated policy")
			}
			// The init-data document (gzip, base64) holds the
			// policy; its digest, sized to the TEE field, is hostData.
			doc, err := initdata.FromAnnotation(ann[initdata.AnnotationKey])
			if err != nil || !bytes.Equal(doc, res.InitData) || !bytes.Equal(doc, fileOf(t, res, "initdata.toml")) {
				t.Fatalf("annotation %s does not carry initdata.toml (%v)", initdata.AnnotationKey, err)
			}
			if _, ok := ann["io.katacontainers.config.agent.policy"]; ok {
				t.Error("the pod carries the policy in an annotation besides the init-data")
			}
			wantDoc := "version = \"0.1.0\"\nalgorithm = \"sha256\"\n\n[data]\n\"policy.rego\" = '''\n" + string(policy) + "'''\n"
			var sum []byte
			if w.TEE == attest.SEVSNP {
				h := sha256.Sum256(doc)
				sum = h[:]
			} else {
				wantDoc = strings.Replace(wantDoc, "sha256", "sha384", 1)
				h := sha512.Sum384(doc)
				sum = h[:]
			}
			if string(doc) != wantDoc {
				t.Errorf("initdata.toml:\n%s", doc)
			}
			if !bytes.Equal(sum, res.HostData) {
				t.Errorf("hostData %s is not the digest of the init-data (%x)", res.HostData, sum)
			}
			if hasExec := strings.Contains(string(policy), "\ndefault ExecProcessRequest := true\n"); hasExec != tc.opts.AllowExec {
				t.Errorf("policy allows exec: %v, --allow-exec: %v", hasExec, tc.opts.AllowExec)
			}
		})
	}
}

// TestKataRefusesAKS: kata-cc-isolation (AKS) pulls images on the host
// and hands the guest dm-verity tar layers, which the policy does not
// model; deploy refuses it, saying what to use instead, rather than
// generate a pod that no policy check would let start.
func TestKataRefusesAKS(t *testing.T) {
	o := goldenCases(t)[5].opts // kata-web-pod
	o.RuntimeClass = deploy.AKSRuntimeClass
	res, err := deploy.Generate(testManifest(t), o)
	want := "deploy: runtime class kata-cc-isolation is not supported yet: AKS's host-pulled dm-verity layers are not modelled by the agent policy (it would deny every container); use an upstream CoCo runtime class (kata-qemu-snp for "
	if err == nil || !strings.HasPrefix(err.Error(), want) || res != nil {
		t.Fatalf("Generate with %s: %v, %v; want the refusal %q", deploy.AKSRuntimeClass, res, err, want)
	}
	// The pod spec's own runtimeClassName is refused the same way.
	o.RuntimeClass = ""
	o.Pod = bytes.Replace(o.Pod, []byte("    spec:\n"), []byte("    spec:\n      runtimeClassName: kata-cc-isolation\n"), 1)
	if _, err := deploy.Generate(testManifest(t), o); err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("a pod spec naming %s: %v; want the refusal", deploy.AKSRuntimeClass, err)
	}
}

func TestSGXObjects(t *testing.T) {
	m := testManifest(t)
	for _, tc := range goldenCases(t) {
		if tc.opts.Target != deploy.SGXContainer {
			continue
		}
		res, err := deploy.Generate(m, tc.opts)
		if err != nil {
			t.Fatal(err)
		}
		if res.Policy != nil || res.HostData != nil {
			t.Error("an SGX container got an agent policy")
		}
		spec, _ := podOf(t, decodeStrict(t, fileOf(t, res, "kubernetes.yaml")))
		if len(spec.InitContainers) != 0 || spec.RuntimeClassName != nil {
			t.Errorf("SGX pod has init containers %v or runtime class %v: the agent runs inside the enclave", spec.InitContainers, spec.RuntimeClassName)
		}
		var aesmd bool
		for _, v := range spec.Volumes {
			aesmd = aesmd || v.HostPath != nil && v.HostPath.Path == "/var/run/aesmd"
		}
		if !aesmd {
			t.Error("no /var/run/aesmd hostPath volume")
		}
		for _, c := range spec.Containers {
			req, lim := c.Resources.Requests[deploy.EPCResource], c.Resources.Limits[deploy.EPCResource]
			if req.String() != tc.opts.EPC || lim.String() != tc.opts.EPC {
				t.Errorf("container %s: EPC request %s limit %s, want %s", c.Name, req.String(), lim.String(), tc.opts.EPC)
			}
			if q := c.Resources.Requests[deploy.EnclaveResource]; q.String() != "1" {
				t.Errorf("container %s: requests %s of %s, want 1", c.Name, q.String(), deploy.EnclaveResource)
			}
			if _, ok := c.Resources.Requests["sgx.intel.com/provision"]; ok {
				t.Errorf("container %s requests sgx.intel.com/provision, which out-of-process quoting does not need", c.Name)
			}
			if !slices.Contains(c.Env, corev1.EnvVar{Name: "SGX_AESM_ADDR", Value: "1"}) {
				t.Errorf("container %s: no SGX_AESM_ADDR=1", c.Name)
			}
			if !slices.ContainsFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool { return m.MountPath == "/var/run/aesmd" }) {
				t.Errorf("container %s does not mount /var/run/aesmd", c.Name)
			}
		}
	}
}

func TestCVMUserData(t *testing.T) {
	m := testManifest(t)
	res, err := deploy.Generate(m, goldenCases(t)[0].opts)
	if err != nil {
		t.Fatal(err)
	}
	ud := fileOf(t, res, "user-data.yaml")
	if !bytes.HasPrefix(ud, []byte("#cloud-config\n")) {
		t.Fatal("user data does not start with #cloud-config")
	}
	var cc struct {
		WriteFiles []struct {
			Path, Owner, Permissions, Content string
		} `json:"write_files"`
		RunCmd [][]string `json:"runcmd"`
	}
	if err := yaml.UnmarshalStrict(ud, &cc); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{}
	for _, f := range cc.WriteFiles {
		files[f.Path] = f.Content
	}
	unit := files["/etc/systemd/system/trustbound-agent.service"]
	sum := sha256.Sum256(goldenCases(t)[0].opts.CAPEM)
	caSum := hex.EncodeToString(sum[:])
	if files["/etc/trustbound/coordinator-ca.crt"] != string(goldenCases(t)[0].opts.CAPEM) {
		t.Error("the CA file's content is not the CA's bytes, whose SHA-256 is --ca-sha256")
	}
	if !slices.ContainsFunc(res.Notes, func(n string) bool { return strings.HasPrefix(n, "user data is not measured") }) {
		t.Errorf("no note that user data is not measured: %q", res.Notes)
	}
	for _, want := range []string{
		"Type=oneshot", "Before=ledger-vm.service", "Requires=run-trustbound.mount",
		"ExecStart=/usr/local/bin/trustbound agent --coordinator " + testCoordinator + " --ca /etc/trustbound/coordinator-ca.crt --ca-sha256 " + caSum + " --workload ledger-vm --out /run/trustbound",
	} {
		if !strings.Contains(unit, want+"\n") {
			t.Errorf("agent unit lacks %q:\n%s", want, unit)
		}
	}
	if mount := files["/etc/systemd/system/run-trustbound.mount"]; !strings.Contains(mount, "Type=tmpfs\n") || !strings.Contains(mount, "Options=mode=0700,") {
		t.Errorf("no tmpfs 0700 at /run/trustbound:\n%s", mount)
	}
	dropIn := files["/etc/systemd/system/ledger-vm.service.d/10-trustbound.conf"]
	if !strings.Contains(dropIn, "Requires=trustbound-agent.service\n") || !strings.Contains(dropIn, "After=trustbound-agent.service\n") {
		t.Errorf("the application does not require the agent:\n%s", dropIn)
	}
	if !strings.Contains(files["/etc/trustbound/coordinator-ca.crt"], "BEGIN CERTIFICATE") {
		t.Error("no coordinator CA")
	}
	if len(cc.RunCmd) < 2 || !slices.Contains(cc.RunCmd[1], "echo '"+strings.Repeat("ab", 32)+"  /usr/local/bin/trustbound.download' | sha256sum -c - && chmod 0755 /usr/local/bin/trustbound.download && mv /usr/local/bin/trustbound.download /usr/local/bin/trustbound") {
		t.Errorf("the downloaded binary is not checked before install: %q", cc.RunCmd)
	}
}

func TestAzureTemplate(t *testing.T) {
	m := testManifest(t)
	for _, tc := range []struct {
		workload, size, enc string
		given               string
	}{
		{"ledger-vm", "Standard_DC2as_v5", "VMGuestStateOnly", "VMGuestStateOnly"},
		{"batch-td", "Standard_DC2es_v5", "DiskWithVMGuestState", "DiskWithVMGuestState"},
		{"ledger-vm", "Standard_DC2as_v5", "DiskWithVMGuestState", ""}, // the default encrypts the OS disk
	} {
		o := deploy.Options{Target: deploy.AzureCVM, Workload: tc.workload, Coordinator: testCoordinator, CAPEM: readTestdata(t, "coordinator-ca.crt"), DiskEncryption: tc.given}
		res, err := deploy.Generate(m, o)
		if err != nil {
			t.Fatal(err)
		}
		var tmpl struct {
			Parameters map[string]struct {
				DefaultValue any `json:"defaultValue"`
			} `json:"parameters"`
			Resources []struct {
				Type       string `json:"type"`
				Properties struct {
					SecurityProfile struct {
						SecurityType string `json:"securityType"`
						UEFISettings struct {
							SecureBootEnabled bool `json:"secureBootEnabled"`
							VTPMEnabled       bool `json:"vTpmEnabled"`
						} `json:"uefiSettings"`
					} `json:"securityProfile"`
					StorageProfile struct {
						OSDisk struct {
							ManagedDisk struct {
								SecurityProfile struct {
									SecurityEncryptionType string `json:"securityEncryptionType"`
								} `json:"securityProfile"`
							} `json:"managedDisk"`
						} `json:"osDisk"`
					} `json:"storageProfile"`
					OSProfile struct {
						CustomData string `json:"customData"`
					} `json:"osProfile"`
				} `json:"properties"`
			} `json:"resources"`
		}
		if err := yaml.Unmarshal(fileOf(t, res, "azuredeploy.json"), &tmpl); err != nil {
			t.Fatal(err)
		}
		if len(tmpl.Resources) != 1 || tmpl.Resources[0].Type != "Microsoft.Compute/virtualMachines" {
			t.Fatalf("resources: %+v", tmpl.Resources)
		}
		p := tmpl.Resources[0].Properties
		if p.SecurityProfile.SecurityType != "ConfidentialVM" || !p.SecurityProfile.UEFISettings.SecureBootEnabled || !p.SecurityProfile.UEFISettings.VTPMEnabled {
			t.Errorf("security profile %+v", p.SecurityProfile)
		}
		if got := p.StorageProfile.OSDisk.ManagedDisk.SecurityProfile.SecurityEncryptionType; got != tc.enc {
			t.Errorf("securityEncryptionType %q, want %q", got, tc.enc)
		}
		if got := tmpl.Parameters["vmSize"].DefaultValue; got != tc.size {
			t.Errorf("%s: vmSize %v, want %s", tc.workload, got, tc.size)
		}
		ud, err := base64.StdEncoding.DecodeString(p.OSProfile.CustomData)
		if err != nil || !bytes.Equal(ud, fileOf(t, res, "user-data.yaml")) {
			t.Errorf("customData is not the user data, base64 (%v)", err)
		}
	}
	// A TDX size for an SNP workload is refused.
	o := deploy.Options{Target: deploy.AzureCVM, Workload: "ledger-vm", Coordinator: testCoordinator, CAPEM: readTestdata(t, "coordinator-ca.crt"), VMSize: "Standard_DC4es_v5"}
	if _, err := deploy.Generate(m, o); err == nil || !strings.Contains(err.Error(), "not an Azure confidential VM size on sev-snp") {
		t.Errorf("TDX size on SNP: %v", err)
	}
}

func TestTargetMustFitWorkload(t *testing.T) {
	m := testManifest(t)
	ca := readTestdata(t, "coordinator-ca.crt")
	for _, tc := range []struct {
		target   deploy.Target
		workload string
	}{
		{deploy.Kata, "ledger-vm"}, {deploy.CVM, "web"}, {deploy.AzureCVM, "signer"}, {deploy.SGXContainer, "web"}, {deploy.Kata, "signer"},
	} {
		_, err := deploy.Generate(m, deploy.Options{Target: tc.target, Workload: tc.workload, Coordinator: testCoordinator, CAPEM: ca})
		if !errors.Is(err, deploy.ErrTarget) {
			t.Errorf("%s for %s: %v, want ErrTarget", tc.target, tc.workload, err)
		}
	}
	for _, o := range []deploy.Options{
		{Target: "vm", Workload: "web", Coordinator: testCoordinator, CAPEM: ca},
		{Target: deploy.Kata, Workload: "nope", Coordinator: testCoordinator, CAPEM: ca},
		{Target: deploy.Kata, Workload: "web", Coordinator: "http://plain.test", CAPEM: ca},
		{Target: deploy.Kata, Workload: "web", Coordinator: testCoordinator, CAPEM: []byte("not pem")},
		{Target: deploy.Kata, Workload: "web", Coordinator: testCoordinator, CAPEM: ca, RuntimeClass: "runc"},
	} {
		if _, err := deploy.Generate(m, o); err == nil {
			t.Errorf("%+v: no error", o)
		}
	}
}

// TestPolicyDeterministic: the same pod written in another order gives
// the same policy bytes.
func TestPolicyDeterministic(t *testing.T) {
	in, err := deploy.ParsePod(readTestdata(t, "pod-web.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	a, err := deploy.PolicyFor(&in.Spec, deploy.PolicyOptions{Workload: "web"})
	if err != nil {
		t.Fatal(err)
	}
	s := in.Spec.DeepCopy()
	slices.Reverse(s.Containers)
	for i := range s.Containers {
		slices.Reverse(s.Containers[i].Env)
	}
	b, err := deploy.PolicyFor(s, deploy.PolicyOptions{Workload: "web"})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Error("reordering the pod's containers and env changes the policy")
	}
	if !bytes.Contains(a, []byte(`"env": [
				"CACHE_DIR=/cache",
				"LOG_LEVEL=info"
			]`)) {
		t.Errorf("env is not sorted:\n%s", a)
	}
}

func TestPolicyRefusesWhatItCannotPin(t *testing.T) {
	pod := []byte(`apiVersion: v1
kind: Pod
metadata: {name: bad}
spec:
  containers:
    - name: a
      image: example/a
    - name: b
      image: example/b
      command: [b]
    - name: c
      image: example/c
      command: [/c]
      env:
        - name: TOKEN
          valueFrom: {secretKeyRef: {name: s, key: k}}
      livenessProbe:
        exec: {command: [/bin/true]}
      securityContext: {privileged: true}
  shareProcessNamespace: true
  securityContext: {fsGroup: 2000}
  volumes:
    - name: s
      secret: {secretName: s}
    - name: settings
      configMap: {name: settings}
`)
	in, err := deploy.ParsePod(pod)
	if err != nil {
		t.Fatal(err)
	}
	_, err = deploy.PolicyFor(&in.Spec, deploy.PolicyOptions{})
	var pe *deploy.PodPolicyError
	if !errors.As(err, &pe) {
		t.Fatalf("got %v, want a PodPolicyError", err)
	}
	for _, want := range []string{
		"container a: no command",
		`container b: command "b" is not an absolute path`,
		"container c: env TOKEN: valueFrom",
		"container c: the liveness probe runs a command",
		"volume s: Kubernetes secrets come from the API server",
		"volume settings: configMap contents come from the API server and are not pinned",
		"container c: privileged",
		"shareProcessNamespace",
		"fsGroup: the runtime would have the agent chown the pod's volumes",
	} {
		if !slices.ContainsFunc(pe.Problems, func(p string) bool { return strings.HasPrefix(p, want) }) {
			t.Errorf("problems %q lack %q", pe.Problems, want)
		}
	}
	if len(pe.Problems) != 9 {
		t.Errorf("%d problems, want 9: %q", len(pe.Problems), pe.Problems)
	}
	// With exec allowed, the exec probe is fine.
	_, err = deploy.PolicyFor(&in.Spec, deploy.PolicyOptions{AllowExec: true})
	if !errors.As(err, &pe) || len(pe.Problems) != 8 {
		t.Errorf("with exec allowed: %v", err)
	}
}

func TestParsePodStrict(t *testing.T) {
	for name, doc := range map[string]string{
		"unknown field": "apiVersion: v1\nkind: Pod\nspec:\n  containerz: []\n",
		"service":       "apiVersion: v1\nkind: Service\n",
		"no kind":       "spec: {}\n",
		"wrong version": "apiVersion: apps/v1beta1\nkind: Deployment\n",
		"duplicate":     "apiVersion: v1\nkind: Pod\nspec:\n  hostNetwork: true\n  hostNetwork: false\n",
	} {
		if _, err := deploy.ParsePod([]byte(doc)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	in, err := deploy.ParsePod(readTestdata(t, "pod-web.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if in.Kind != "Deployment" || in.Meta.Name != "web" || in.Meta.Namespace != "shop" || *in.Replicas != 2 || len(in.Spec.Containers) != 2 {
		t.Errorf("parsed %+v", in)
	}
}

func FuzzParsePod(f *testing.F) {
	f.Add(readTestdata(f, "pod-web.yaml"))
	f.Add([]byte("apiVersion: v1\nkind: Pod\nspec:\n  containers: [{name: a, image: b, command: [/a]}]\n"))
	f.Add([]byte(`{"apiVersion":"v1","kind":"Pod"}`))
	f.Add([]byte("kind: Deployment\napiVersion: apps/v1\nspec: {template: {spec: {containers: null}}}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		in, err := deploy.ParsePod(data)
		if err != nil {
			return
		}
		if in.Kind != "Pod" && in.Kind != "Deployment" {
			t.Fatalf("kind %q accepted", in.Kind)
		}
		// Whatever parses either yields a policy or a reason, never a panic.
		p, err := deploy.PolicyFor(&in.Spec, deploy.PolicyOptions{Workload: "w"})
		if err == nil && !bytes.Contains(p, []byte("default ExecProcessRequest := false")) {
			t.Fatal("a generated policy allows exec")
		}
	})
}
