package deploy

import (
	"bytes"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"text/template"

	corev1 "k8s.io/api/core/v1"

	"github.com/trustbound/trustbound/attest"
)

// PolicyOptions are the choices a Kata agent policy makes beyond the pod.
type PolicyOptions struct {
	// Workload names the manifest workload, for the policy's header.
	Workload string
	// AllowExec allows ExecProcessRequest (kubectl exec, exec probes and
	// hooks) into every container: a debug escape hatch, stated in the
	// policy in so many words.
	AllowExec bool
	// AllowLogs allows ReadStreamRequest: the host reads the containers'
	// stdout and stderr (kubectl logs).
	AllowLogs bool
}

// policyData is the data half of a generated policy: what each container
// of the pod may be. It is written as JSON (a Rego object) with sorted
// lists, so the same pod always gives the same bytes.
type policyData struct {
	Containers []containerRule `json:"containers"`
	// RuntimeEnv are prefixes of environment variables that the runtime,
	// not the pod spec, sets.
	RuntimeEnv []string `json:"runtime_env_prefixes"`
	// RuntimeMounts are the mounts every container gets from the runtime.
	RuntimeMounts []string `json:"runtime_mounts"`
}

type containerRule struct {
	Name  string `json:"name"`
	Image string `json:"image"`
	// Args is the whole command line: command, then args.
	Args []string `json:"args"`
	// Env are NAME=value pairs, sorted.
	Env []string `json:"env"`
	// Mounts are the pod spec's volume mounts, sorted by path.
	Mounts []mountRule `json:"mounts"`
	// UID is the user the process must run as; -1 when the spec does not
	// say (the image decides).
	UID int64 `json:"uid"`
}

type mountRule struct {
	Path     string `json:"path"`
	ReadOnly bool   `json:"readonly"`
}

var (
	runtimeEnv = []string{
		// HOSTNAME, PATH and TERM are set by the runtime from the image and
		// the pod name. KUBERNETES_* is the API server's address, always
		// injected by the kubelet (service links are off); host-controlled,
		// so the workload must not trust it. Sorted.
		"HOSTNAME=", "KUBERNETES_PORT", "KUBERNETES_SERVICE_", "PATH=", "TERM=",
	}
	runtimeMounts = []string{
		"/dev", "/dev/mqueue", "/dev/pts", "/dev/shm", "/dev/termination-log",
		"/etc/hostname", "/etc/hosts", "/etc/resolv.conf",
		"/proc", "/sys", "/sys/fs/cgroup",
	}
)

// PodPolicyError lists what in a pod spec a policy cannot pin.
type PodPolicyError struct {
	Problems []string
}

func (e *PodPolicyError) Error() string {
	return "the pod cannot be pinned by an agent policy:\n  " + strings.Join(e.Problems, "\n  ")
}

// PolicyFor generates the Kata agent policy (Rego) that allows exactly the
// containers of spec — each one's image, command line, environment and
// mounts, as written — and denies everything else the host could ask the
// Kata agent for. It refuses, listing every reason, a spec whose behaviour
// the policy cannot pin: containers without an explicit command (the
// image's entrypoint is not known without pulling it), environment from
// the API server (valueFrom, envFrom), exec probes and hooks unless exec
// is allowed, host namespaces, and volumes other than emptyDir and
// configMap.
func PolicyFor(spec *corev1.PodSpec, o PolicyOptions) ([]byte, error) {
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	if spec.HostNetwork || spec.HostPID || spec.HostIPC {
		bad("hostNetwork, hostPID and hostIPC put the pod outside its VM; remove them")
	}
	if len(spec.EphemeralContainers) > 0 {
		bad("ephemeralContainers: debug containers are not part of the pinned pod")
	}
	volumes := map[string]bool{}
	for _, v := range spec.Volumes {
		switch {
		case v.EmptyDir != nil, v.ConfigMap != nil:
			volumes[v.Name] = true
		case v.Secret != nil:
			bad("volume %s: Kubernetes secrets come from the API server, outside the boundary; declare the secret in the manifest and read it from %s", v.Name, AgentDir)
		default:
			bad("volume %s: only emptyDir and configMap volumes are supported (the host controls other storage)", v.Name)
		}
	}
	data := policyData{RuntimeEnv: slices.Clone(runtimeEnv), RuntimeMounts: slices.Clone(runtimeMounts)}
	podUID := int64(-1)
	if sc := spec.SecurityContext; sc != nil && sc.RunAsUser != nil {
		podUID = *sc.RunAsUser
	}
	seen := map[string]bool{}
	all := append(slices.Clone(spec.InitContainers), spec.Containers...)
	if len(spec.Containers) == 0 {
		bad("the pod has no containers")
	}
	for _, c := range all {
		where := "container " + c.Name
		if c.Name == "" {
			bad("a container has no name")
			continue
		}
		if seen[c.Name] {
			bad("%s: the name is used twice", where)
		}
		seen[c.Name] = true
		if c.Image == "" {
			bad("%s: no image", where)
		}
		switch {
		case len(c.Command) == 0:
			bad("%s: no command: the policy pins the exact command line and trustbound does not pull images to learn their entrypoint; write command: [...]", where)
		case !strings.HasPrefix(c.Command[0], "/"):
			bad("%s: command %q is not an absolute path: it would be looked up in PATH, which the host sets", where, c.Command[0])
		}
		r := containerRule{Name: c.Name, Image: c.Image, Args: append(slices.Clone(c.Command), c.Args...), Env: []string{}, Mounts: []mountRule{}, UID: podUID}
		if c.SecurityContext != nil && c.SecurityContext.RunAsUser != nil {
			r.UID = *c.SecurityContext.RunAsUser
		}
		if len(c.EnvFrom) > 0 {
			bad("%s: envFrom takes values from the API server, outside the boundary; write each value out", where)
		}
		names := map[string]bool{}
		for _, e := range c.Env {
			if e.ValueFrom != nil {
				bad("%s: env %s: valueFrom takes the value from the API server, outside the boundary; write the value out", where, e.Name)
				continue
			}
			if names[e.Name] {
				bad("%s: env %s is set twice", where, e.Name)
			}
			names[e.Name] = true
			r.Env = append(r.Env, e.Name+"="+e.Value)
		}
		slices.Sort(r.Env)
		paths := map[string]bool{}
		for _, m := range c.VolumeMounts {
			if !volumes[m.Name] && !slices.ContainsFunc(spec.Volumes, func(v corev1.Volume) bool { return v.Name == m.Name }) {
				bad("%s: mount %s: no volume %q", where, m.MountPath, m.Name)
			}
			if paths[m.MountPath] {
				bad("%s: two mounts at %s", where, m.MountPath)
			}
			paths[m.MountPath] = true
			r.Mounts = append(r.Mounts, mountRule{Path: m.MountPath, ReadOnly: m.ReadOnly})
		}
		slices.SortFunc(r.Mounts, func(a, b mountRule) int { return strings.Compare(a.Path, b.Path) })
		if !o.AllowExec {
			for kind, p := range map[string]*corev1.Probe{"liveness": c.LivenessProbe, "readiness": c.ReadinessProbe, "startup": c.StartupProbe} {
				if p != nil && p.Exec != nil {
					bad("%s: the %s probe runs a command (ExecProcessRequest), which the policy denies; use httpGet, tcpSocket or grpc, or allow exec", where, kind)
				}
			}
			if l := c.Lifecycle; l != nil && (l.PostStart != nil && l.PostStart.Exec != nil || l.PreStop != nil && l.PreStop.Exec != nil) {
				bad("%s: a lifecycle hook runs a command (ExecProcessRequest), which the policy denies; allow exec or drop it", where)
			}
		}
		if c.TTY {
			bad("%s: tty: a terminal is refused by the policy", where)
		}
		data.Containers = append(data.Containers, r)
	}
	if len(problems) > 0 {
		slices.Sort(problems)
		return nil, &PodPolicyError{Problems: problems}
	}
	slices.SortFunc(data.Containers, func(a, b containerRule) int { return strings.Compare(a.Name, b.Name) })
	js, err := json.MarshalIndent(data, "", "\t")
	if err != nil {
		return nil, fmt.Errorf("deploy: policy data: %w", err)
	}
	var b bytes.Buffer
	err = policyTemplate.Execute(&b, struct {
		PolicyOptions
		Data string
	}{o, string(js)})
	if err != nil {
		return nil, fmt.Errorf("deploy: policy: %w", err)
	}
	return b.Bytes(), nil
}

// HostDataOf is the hash of policy that the TEE carries and the manifest
// pins as hostData: SHA-256 in SNP HOST_DATA, SHA-384 in TDX MRCONFIGID
// (which is 48 bytes).
func HostDataOf(tee attest.TEE, policy []byte) (attest.Hex, error) {
	switch tee {
	case attest.SEVSNP:
		h := sha256.Sum256(policy)
		return h[:], nil
	case attest.TDX:
		h := sha512.Sum384(policy)
		return h[:], nil
	}
	return nil, errors.New("deploy: an agent policy is pinned on sev-snp (HOST_DATA) or tdx (MRCONFIGID), not on " + string(tee))
}

var policyTemplate = template.Must(template.New("policy").Parse(`# Kata agent policy of trustbound workload "{{.Workload}}", generated by
# ` + "`trustbound deploy --target kata`" + `. Edit the pod, not this file: any change
# to these bytes changes the pod's hostData.
#
# The Kata agent inside the pod VM asks this policy before it serves each
# request from the host. Its hash is the pod's SNP HOST_DATA (SHA-256) or TDX
# MRCONFIGID (SHA-384), pinned in the manifest as the workload's hostData: a
# host that runs the pod with any other policy gets it refused by the
# coordinator.
package agent_policy

import rego.v1

# Deny by default. Requests not named in this file are refused too.
default CreateContainerRequest := false
default CopyFileRequest := false
default SetPolicyRequest := false
default UpdateContainerRequest := false
default WriteStreamRequest := false
{{if .AllowExec}}
# !!! EXEC ALLOWED (trustbound deploy --allow-exec) !!!
# Whoever may run kubectl exec on this pod (the cluster admin) runs any command
# inside its trust boundary and reads every secret released to it. For debugging
# only; this line is part of the pinned policy, so the manifest says so too.
default ExecProcessRequest := true
{{else}}
# Exec is denied: nobody can run commands in the pod (kubectl exec, exec probes
# and hooks). ` + "`trustbound deploy --allow-exec`" + ` replaces this line with
# "default ExecProcessRequest := true" - a different policy, so a different
# hostData that the manifest must pin explicitly.
default ExecProcessRequest := false
{{end}}{{if .AllowLogs}}
# Logs allowed (--allow-logs): the host reads the containers' stdout and stderr.
default ReadStreamRequest := true
{{else}}
# Logs stay in the pod: the host cannot read stdout and stderr (kubectl logs).
default ReadStreamRequest := false
{{end}}
# Lifecycle requests that reveal nothing inside the pod.
default CreateSandboxRequest := true
default DestroySandboxRequest := true
default StartContainerRequest := true
default RemoveContainerRequest := true
default WaitProcessRequest := true
default SignalProcessRequest := true
default StatsContainerRequest := true
default GuestDetailsRequest := true
default GetOOMEventRequest := true
default OnlineCPUMemRequest := true
default UpdateInterfaceRequest := true
default UpdateRoutesRequest := true
default ListInterfacesRequest := true
default ListRoutesRequest := true
default AddARPNeighborsRequest := true
default CloseStdinRequest := true
default TtyWinResizeRequest := true

# The sandbox's pause container.
CreateContainerRequest if {
	input.OCI.Annotations["io.kubernetes.cri.container-type"] == "sandbox"
	input.OCI.Process.Args == ["/pause"]
}

# Each container of the pod exactly as declared: image, command line,
# environment, mounts and user; no terminal.
CreateContainerRequest if {
	input.OCI.Annotations["io.kubernetes.cri.container-type"] == "container"
	some c in policy_data.containers
	input.OCI.Annotations["io.kubernetes.cri.container-name"] == c.name
	input.OCI.Annotations["io.kubernetes.cri.image-name"] == c.image
	input.OCI.Process.Args == c.args
	not input.OCI.Process.Terminal
	allowed_user(c)
	every e in input.OCI.Process.Env {
		allowed_env(c, e)
	}
	every m in input.OCI.Mounts {
		allowed_mount(c, m)
	}
	every want in c.mounts {
		some m in input.OCI.Mounts
		m.destination == want.path
	}
}

allowed_user(c) if c.uid < 0

allowed_user(c) if input.OCI.Process.User.UID == c.uid

allowed_env(c, e) if e in c.env

allowed_env(_, e) if {
	some p in policy_data.runtime_env_prefixes
	startswith(e, p)
}

allowed_mount(c, m) if {
	some want in c.mounts
	m.destination == want.path
	not want.readonly
}

allowed_mount(c, m) if {
	some want in c.mounts
	m.destination == want.path
	want.readonly
	"ro" in m.options
}

allowed_mount(_, m) if m.destination in policy_data.runtime_mounts

policy_data := {{.Data}}
`))
