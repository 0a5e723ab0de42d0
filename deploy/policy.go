package deploy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"text/template"

	corev1 "k8s.io/api/core/v1"
)

// PolicyOptions are the choices a Kata agent policy makes beyond the pod.
type PolicyOptions struct {
	// Workload names the manifest workload, for the policy's header.
	Workload string
	// PodName is the name of the Pod, or of the Deployment whose pods
	// these are (Deployment true): it bounds the HOSTNAME the runtime
	// sets. Empty: any DNS label.
	PodName    string
	Deployment bool
	// CAConfigMap is the one configMap volume the policy allows: the
	// trustbound CA, volume "trustbound-ca" from ConfigMap CAConfigMap,
	// whose content the agent checks against --ca-sha256. Empty: no
	// configMap volume is allowed.
	CAConfigMap string
	// AllowExec allows ExecProcessRequest (kubectl exec, exec probes and
	// hooks) into every container: a debug escape hatch, stated in the
	// policy in so many words.
	AllowExec bool
	// AllowLogs allows ReadStreamRequest: the host reads the containers'
	// stdout and stderr (kubectl logs).
	AllowLogs bool
}

// policyData is the data half of a generated policy: what the sandbox
// and each container of the pod may be. It is written as JSON (a Rego
// object) with sorted lists, so the same pod always gives the same bytes.
// Regular expressions may name $(bundle-id) and $(sandbox-id), which the
// policy replaces by the request's (checked) identifiers.
type policyData struct {
	Sandbox    containerRule   `json:"sandbox"`
	Containers []containerRule `json:"containers"`
	// CAVolume is the volume name of the trustbound CA, whose files the
	// host may copy in (CopyFileRequest); empty if none. CAFiles is the
	// regular expression of its file names (the ConfigMap's keys).
	CAVolume string `json:"ca_volume"`
	CAFiles  string `json:"ca_files"`
	// MaskedPaths must all be masked in every container; ReadonlyPaths
	// must each be read-only or masked (containerd's defaults: more is
	// allowed, less is not).
	MaskedPaths   []string `json:"masked_paths"`
	ReadonlyPaths []string `json:"readonly_paths"`
}

type containerRule struct {
	Name string `json:"name"`
	// Images are the accepted image references (as written and
	// normalised); Digest, if the image is pinned by one, also accepts
	// the same digest from another repository (a mirror). Pause: the
	// sandbox, whose rootfs is the guest's built-in pause bundle (image
	// storage source "pause", metadata saying "sandbox"); no image is
	// accepted for it.
	Images []string `json:"images"`
	Digest string   `json:"digest"`
	Pause  bool     `json:"pause"`
	// Args is the whole command line: command, then args.
	Args []string `json:"args"`
	// Env are the declared NAME=value pairs, sorted, each required once;
	// EnvNames their names. EnvRuntime are regular expressions for the
	// variables the runtime adds (PATH unless declared, HOSTNAME, the API
	// server's address).
	Env        []string `json:"env"`
	EnvNames   []string `json:"env_names"`
	EnvRuntime []string `json:"env_runtime"`
	Cwd        string   `json:"cwd"`
	// UID and GID the process must run as; -1 when the spec does not say
	// (the image decides). NonRoot: runAsNonRoot, UID 0 refused.
	UID     int64 `json:"uid"`
	GID     int64 `json:"gid"`
	NonRoot bool  `json:"non_root"`
	// ExtraGIDs are the supplementary groups besides GID: the pod's
	// supplementalGroups, sorted.
	ExtraGIDs []int64 `json:"extra_gids"`
	// Hostname is the regular expression of the pod's hostname (the OCI
	// Hostname: the sandbox sets it, containers send it empty or equal).
	Hostname string `json:"hostname"`
	// ReadonlyRoot is readOnlyRootFilesystem; NoNewPrivileges is
	// allowPrivilegeEscalation: false.
	ReadonlyRoot    bool `json:"readonly_root"`
	NoNewPrivileges bool `json:"no_new_privileges"`
	// Caps is the bounding set, sorted: exactly (CapsExact) or at most.
	// Effective and permitted must be within it; ambient and inheritable
	// empty.
	Caps      []string `json:"caps"`
	CapsExact bool     `json:"caps_exact"`
	// Mounts are the allowed mounts; Required the destinations that must
	// be there (the pod's volume mounts).
	Mounts   []mountRule `json:"mounts"`
	Required []string    `json:"required_mounts"`
	// Storages are the allowed storages besides the image; there must be
	// one guest-pull image storage (the sandbox: 0 or 1, MaxOneImage).
	Storages    []storageRule `json:"storages"`
	MaxOneImage bool          `json:"max_one_image"`
}

// mountRule is one allowed OCI mount: its destination, type and source
// (a regular expression), and its options: each of Require must be
// there, and nothing outside Require and Allow.
type mountRule struct {
	Destination string   `json:"destination"`
	Type        string   `json:"type"`
	Source      string   `json:"source"`
	Require     []string `json:"require"`
	Allow       []string `json:"allow"`
}

// storageRule is one allowed agent storage besides the container image:
// driver and fstype exactly, source and mount point as regular
// expressions, each option matching one of Options (regular expressions)
// and each of Require there; no driver options, no fs_group.
type storageRule struct {
	Driver     string   `json:"driver"`
	FSType     string   `json:"fstype"`
	Source     string   `json:"source"`
	MountPoint string   `json:"mount_point"`
	Options    []string `json:"options"`
	Require    []string `json:"require"`
}

const (
	// sharedDir is where the Kata runtime shares (or, with shared_fs=none,
	// copies) per-container files into the guest.
	sharedDir = "/run/kata-containers/shared/containers/"
	// sfPrefix is a shared file of the container being created: the
	// bundle ID, 16 random characters, then the file's name.
	sfPrefix = "^" + sharedDir + "$(bundle-id)-[a-z0-9]{16}-"
	// defaultPath is the PATH containerd sets when the image sets none,
	// and the one images such as distroless set.
	defaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	pauseUID    = 65535
)

var (
	// defaultCaps is the capability set containerd gives a container that
	// asks for none (genpolicy's default_caps), sorted.
	defaultCaps = sortedCopy([]string{
		"CAP_AUDIT_WRITE", "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_MKNOD",
		"CAP_NET_BIND_SERVICE", "CAP_NET_RAW", "CAP_SETFCAP", "CAP_SETGID", "CAP_SETPCAP", "CAP_SETUID", "CAP_SYS_CHROOT",
	})
	// kernelMounts are the file systems every container gets from the
	// runtime's default spec, with the options containerd writes.
	kernelMounts = []mountRule{
		{"/dev", "tmpfs", "^tmpfs$", []string{"nosuid"}, []string{"mode=755", "size=65536k", "strictatime"}},
		{"/dev/mqueue", "mqueue", "^mqueue$", []string{"nodev", "noexec", "nosuid"}, []string{}},
		{"/dev/pts", "devpts", "^devpts$", []string{"noexec", "nosuid"}, []string{"gid=5", "mode=0620", "newinstance", "ptmxmode=0666"}},
		{"/proc", "proc", "^proc$", []string{"nodev", "noexec", "nosuid"}, []string{}},
		{"/sys", "sysfs", "^sysfs$", []string{"nodev", "noexec", "nosuid", "ro"}, []string{}},
		{"/sys/fs/cgroup", "cgroup", "^cgroup$", []string{"nodev", "noexec", "nosuid", "ro"}, []string{"relatime"}},
	}
	bindAllow = []string{"nodev", "noexec", "nosuid", "ro", "rprivate", "rw"}
	// runtimeBinds are the per-pod files the kubelet and the Kata runtime
	// bind into every container: shared (or copied) files of this
	// container's bundle, and the sandbox's /dev/shm.
	runtimeBinds = []mountRule{
		{"/dev/shm", "bind", "^/run/kata-containers/sandbox/shm$", []string{"rbind"}, []string{"rprivate"}},
		{"/dev/termination-log", "bind", sfPrefix + "termination-log$", []string{"rbind"}, bindAllow},
		{"/etc/hostname", "bind", sfPrefix + "hostname$", []string{"rbind"}, bindAllow},
		{"/etc/hosts", "bind", sfPrefix + "hosts$", []string{"rbind"}, bindAllow},
		{"/etc/resolv.conf", "bind", sfPrefix + "resolv\\.conf$", []string{"rbind"}, bindAllow},
	}
	// defaultMaskedPaths and defaultReadonlyPaths are what containerd's
	// default spec masks and makes read-only in every unprivileged
	// container, in the versions that Kata CoCo runs with (newer
	// containerd masks /proc/asound instead of making it read-only, and
	// masks more: allowed).
	defaultMaskedPaths = sortedCopy([]string{
		"/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/sched_debug",
		"/proc/scsi", "/proc/timer_list", "/proc/timer_stats", "/sys/firmware",
	})
	defaultReadonlyPaths = sortedCopy([]string{
		"/proc/asound", "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
	})
	// kubernetesEnv is the API server's address, which the kubelet always
	// injects (service links are off, so nothing else is): host-chosen
	// values, held to their shape.
	kubernetesEnv = func() []string {
		ip := `(([0-9]{1,3}\.){3}[0-9]{1,3}|[0-9a-fA-F:]{2,39})`
		url := `tcp://(([0-9]{1,3}\.){3}[0-9]{1,3}|\[[0-9a-fA-F:]{2,39}\]):[0-9]{1,5}`
		return []string{
			"^KUBERNETES_PORT=" + url + "$",
			"^KUBERNETES_PORT_[0-9]{1,5}_TCP=" + url + "$",
			"^KUBERNETES_PORT_[0-9]{1,5}_TCP_ADDR=" + ip + "$",
			"^KUBERNETES_PORT_[0-9]{1,5}_TCP_PORT=[0-9]{1,5}$",
			"^KUBERNETES_PORT_[0-9]{1,5}_TCP_PROTO=tcp$",
			"^KUBERNETES_SERVICE_HOST=" + ip + "$",
			"^KUBERNETES_SERVICE_PORT=[0-9]{1,5}$",
			"^KUBERNETES_SERVICE_PORT_HTTPS=[0-9]{1,5}$",
		}
	}()
	imageDigest = regexp.MustCompile(`@(sha256:[0-9a-f]{64})$`)
	volumeName  = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$`)
)

func sortedCopy(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return out
}

// PodPolicyError lists what in a pod spec a policy cannot pin.
type PodPolicyError struct {
	Problems []string
}

func (e *PodPolicyError) Error() string {
	return "the pod cannot be pinned by an agent policy:\n  " + strings.Join(e.Problems, "\n  ")
}

// normalizedImage is the reference as containerd names it: a bare Docker
// Hub name gets docker.io/library/ and a reference without tag or digest
// gets :latest.
func normalizedImage(img string) string {
	name := img
	if i := strings.IndexByte(name, '/'); i < 0 || !strings.ContainsAny(name[:i], ".:") && name[:i] != "localhost" {
		if i < 0 {
			name = "library/" + name
		}
		name = "docker.io/" + name
	}
	last := name[strings.LastIndexByte(name, '/')+1:]
	if !strings.ContainsAny(last, ":@") {
		name += ":latest"
	}
	return name
}

// capsOf is the bounding set containerd gives c: the default set, minus
// what it drops (ALL: everything), plus what it adds.
func capsOf(sc *corev1.SecurityContext) []string {
	caps := slices.Clone(defaultCaps)
	if sc == nil || sc.Capabilities == nil {
		return caps
	}
	name := func(c corev1.Capability) string {
		s := strings.ToUpper(string(c))
		if !strings.HasPrefix(s, "CAP_") {
			s = "CAP_" + s
		}
		return s
	}
	for _, d := range sc.Capabilities.Drop {
		if name(d) == "CAP_ALL" {
			caps = caps[:0]
			break
		}
		caps = slices.DeleteFunc(caps, func(c string) bool { return c == name(d) })
	}
	for _, a := range sc.Capabilities.Add {
		if !slices.Contains(caps, name(a)) {
			caps = append(caps, name(a))
		}
	}
	slices.Sort(caps)
	return caps
}

// hostnamePattern is the pod's hostname as a regular expression without
// anchors: its hostname, its name, or for a Deployment its name plus the
// two generated suffixes. The runtime sets it as the sandbox's OCI
// Hostname and as every container's HOSTNAME.
func hostnamePattern(spec *corev1.PodSpec, o PolicyOptions) string {
	switch {
	case spec.Hostname != "":
		return regexp.QuoteMeta(spec.Hostname)
	case o.PodName != "" && !o.Deployment && len(o.PodName) <= 63:
		return regexp.QuoteMeta(o.PodName)
	case o.PodName != "" && o.Deployment && len(o.PodName) <= 46:
		return regexp.QuoteMeta(o.PodName) + `-[a-z0-9]{1,10}-[a-z0-9]{5}`
	}
	return `[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?`
}

// PolicyFor generates the Kata agent policy (Rego) that allows exactly the
// sandbox and the containers of spec, and denies everything else the host
// could ask the Kata agent for. Each container is pinned as written: its
// image (pulled inside the guest, by digest if the reference has one), its
// command line, environment (both ways), working directory ("/" unless
// workingDir says), user and groups, capabilities, privilege escalation,
// root file system, mounts (destination, type, source and options),
// storages, its own namespaces, containerd's masked and read-only paths,
// the hostname; no OCI hooks, devices, device cgroup grants or seccomp
// profile from the host. The pause container is pinned too, and allowed
// once. CreateSandbox is pinned (no guest hooks, kernel modules, shared
// PID namespace or host storage) and CopyFile writes only the runtime's
// files and the CA's.
//
// It refuses, listing every reason, a spec whose behaviour the policy
// cannot pin: containers without an explicit command (the image's
// entrypoint is not known without pulling it), environment from the API
// server (valueFrom, envFrom), exec probes and hooks unless exec is
// allowed, host namespaces, privileged containers, shared process
// namespaces, fsGroup, and volumes other than emptyDir (configMap only for
// the trustbound CA; see PolicyOptions.CAConfigMap).
func PolicyFor(spec *corev1.PodSpec, o PolicyOptions) ([]byte, error) {
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	if spec.HostNetwork || spec.HostPID || spec.HostIPC {
		bad("hostNetwork, hostPID and hostIPC put the pod outside its VM; remove them")
	}
	if spec.ShareProcessNamespace != nil && *spec.ShareProcessNamespace {
		bad("shareProcessNamespace lets every container see and signal the others; the policy pins separate process namespaces")
	}
	if len(spec.EphemeralContainers) > 0 {
		bad("ephemeralContainers: debug containers are not part of the pinned pod")
	}
	// The mount and storage rules per volume name.
	type volRules struct {
		mounts   []mountRule // source, type, options; destination filled per mount
		storages []storageRule
	}
	volumes := map[string]volRules{}
	for _, v := range spec.Volumes {
		if !volumeName.MatchString(v.Name) {
			bad("volume %q: not a DNS label", v.Name)
			continue
		}
		switch {
		case v.EmptyDir != nil && v.EmptyDir.Medium == corev1.StorageMediumMemory:
			// A tmpfs the agent makes in the guest's memory. Its mode has
			// three octal digits: no setuid, setgid or sticky bit.
			dir := "^/run/kata-containers/sandbox/ephemeral/" + v.Name + "$"
			volumes[v.Name] = volRules{
				mounts:   []mountRule{{Type: "bind", Source: dir}},
				storages: []storageRule{{Driver: "ephemeral", FSType: "tmpfs", Source: "^tmpfs$", MountPoint: dir, Options: []string{"^mode=0?[0-7]{3}$", "^size=[0-9]{1,20}$"}, Require: []string{}}},
			}
		case v.EmptyDir != nil:
			// A directory the agent makes under the shared directory in
			// the guest, which is guest memory (encrypted by the TEE) only
			// with shared_fs=none, as the CoCo runtime classes configure:
			// with virtio-fs the host's file system would be mounted
			// there. The policy enforces it: CreateSandboxRequest refuses
			// every sandbox storage but /dev/shm's tmpfs, the kataShared
			// virtio-fs mount included.
			dir := "^" + sharedDir + "$(sandbox-id)/(rootfs/)?local/" + v.Name + "$"
			volumes[v.Name] = volRules{
				mounts:   []mountRule{{Type: "local", Source: dir}, {Type: "bind", Source: dir}},
				storages: []storageRule{{Driver: "local", FSType: "local", Source: "^local$", MountPoint: dir, Options: []string{"^mode=0777$"}, Require: []string{}}},
			}
		case v.ConfigMap != nil && o.CAConfigMap != "" && v.Name == caVolume && v.ConfigMap.Name == o.CAConfigMap:
			// The trustbound CA: copied in by the host (CopyFileRequest);
			// the agent checks its bytes against --ca-sha256.
			src := sfPrefix + regexp.QuoteMeta(caVolume) + "$"
			volumes[v.Name] = volRules{
				mounts:   []mountRule{{Type: "bind", Source: src}},
				storages: []storageRule{{Driver: "local", FSType: "bind", Source: src, MountPoint: src, Options: []string{"^rbind$", "^rprivate$", "^ro$"}, Require: []string{"ro"}}},
			}
		case v.ConfigMap != nil:
			bad("volume %s: configMap contents come from the API server and are not pinned by the policy; put the data in the image or declare it as a secret in the manifest (read from %s)", v.Name, AgentDir)
		case v.Secret != nil:
			bad("volume %s: Kubernetes secrets come from the API server, outside the boundary; declare the secret in the manifest and read it from %s", v.Name, AgentDir)
		default:
			bad("volume %s: only emptyDir volumes are supported (the host controls other storage)", v.Name)
		}
	}
	podUID, podGID := int64(-1), int64(-1)
	podNonRoot := false
	if sc := spec.SecurityContext; sc != nil {
		if sc.RunAsUser != nil {
			podUID = *sc.RunAsUser
		}
		if sc.RunAsGroup != nil {
			podGID = *sc.RunAsGroup
		}
		podNonRoot = sc.RunAsNonRoot != nil && *sc.RunAsNonRoot
		if sc.FSGroup != nil {
			bad("fsGroup: the runtime would have the agent chown the pod's volumes to a group it names (storage fs_group), which the policy pins to none; set runAsGroup and supplementalGroups instead")
		}
	}
	var extraGIDs []int64
	if sc := spec.SecurityContext; sc != nil {
		extraGIDs = slices.Clone(sc.SupplementalGroups)
		slices.Sort(extraGIDs)
		extraGIDs = slices.Compact(extraGIDs)
	}
	if extraGIDs == nil {
		extraGIDs = []int64{}
	}
	pattern := hostnamePattern(spec, o)
	data := policyData{Sandbox: sandboxRule("^" + pattern + "$"), MaskedPaths: defaultMaskedPaths, ReadonlyPaths: defaultReadonlyPaths}
	if o.CAConfigMap != "" {
		data.CAVolume, data.CAFiles = caVolume, "("+regexp.QuoteMeta(caKey)+")"
	}
	hostname := "^HOSTNAME=" + pattern + "$"
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
		r := containerRule{
			Name: c.Name, Images: []string{c.Image},
			Args: append(slices.Clone(c.Command), c.Args...),
			Env:  []string{}, EnvNames: []string{},
			Cwd: "/", UID: podUID, GID: podGID, NonRoot: podNonRoot,
			ExtraGIDs: extraGIDs, Hostname: "^" + pattern + "$",
			CapsExact: true, Mounts: []mountRule{}, Required: []string{}, Storages: []storageRule{},
		}
		if n := normalizedImage(c.Image); n != c.Image {
			r.Images = append(r.Images, n)
		}
		if m := imageDigest.FindStringSubmatch(c.Image); m != nil {
			r.Digest = m[1]
		}
		if c.WorkingDir != "" {
			if !strings.HasPrefix(c.WorkingDir, "/") {
				bad("%s: workingDir %q is not an absolute path", where, c.WorkingDir)
			}
			r.Cwd = c.WorkingDir
		}
		sc := c.SecurityContext
		if sc != nil {
			if sc.RunAsUser != nil {
				r.UID = *sc.RunAsUser
			}
			if sc.RunAsGroup != nil {
				r.GID = *sc.RunAsGroup
			}
			if sc.RunAsNonRoot != nil {
				r.NonRoot = *sc.RunAsNonRoot
			}
			if sc.Privileged != nil && *sc.Privileged {
				bad("%s: privileged: the container could reach every device and file system of the pod VM; remove it", where)
			}
			r.ReadonlyRoot = sc.ReadOnlyRootFilesystem != nil && *sc.ReadOnlyRootFilesystem
			r.NoNewPrivileges = sc.AllowPrivilegeEscalation != nil && !*sc.AllowPrivilegeEscalation
		}
		r.Caps = capsOf(sc)
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
			r.EnvNames = append(r.EnvNames, e.Name)
		}
		slices.Sort(r.Env)
		slices.Sort(r.EnvNames)
		if !names["HOSTNAME"] {
			r.EnvRuntime = append(r.EnvRuntime, hostname)
		}
		if !names["PATH"] {
			r.EnvRuntime = append(r.EnvRuntime, "^"+regexp.QuoteMeta(defaultPath)+"$")
		}
		r.EnvRuntime = append(r.EnvRuntime, kubernetesEnv...)
		r.Mounts = append(append(r.Mounts, kernelMounts...), runtimeBinds...)
		paths := map[string]bool{}
		for _, m := range c.VolumeMounts {
			vr, ok := volumes[m.Name]
			if !ok {
				if !slices.ContainsFunc(spec.Volumes, func(v corev1.Volume) bool { return v.Name == m.Name }) {
					bad("%s: mount %s: no volume %q", where, m.MountPath, m.Name)
				}
				continue
			}
			if paths[m.MountPath] || slices.ContainsFunc(r.Mounts, func(x mountRule) bool { return x.Destination == m.MountPath }) {
				bad("%s: two mounts at %s", where, m.MountPath)
			}
			paths[m.MountPath] = true
			if m.SubPath != "" || m.SubPathExpr != "" {
				bad("%s: mount %s: subPath is not supported", where, m.MountPath)
			}
			for _, mr := range vr.mounts {
				mr.Destination = m.MountPath
				mr.Require, mr.Allow = []string{"rbind"}, []string{"rprivate", "rw"}
				if m.ReadOnly || m.Name == caVolume {
					mr.Require, mr.Allow = []string{"rbind", "ro"}, []string{"rprivate"}
				}
				r.Mounts = append(r.Mounts, mr)
			}
			r.Required = append(r.Required, m.MountPath)
			for _, s := range vr.storages {
				if !slices.ContainsFunc(r.Storages, func(x storageRule) bool { return x.MountPoint == s.MountPoint }) {
					r.Storages = append(r.Storages, s)
				}
			}
		}
		slices.SortStableFunc(r.Mounts, func(a, b mountRule) int { return strings.Compare(a.Destination, b.Destination) })
		slices.Sort(r.Required)
		if !o.AllowExec {
			for _, p := range []struct {
				kind  string
				probe *corev1.Probe
			}{{"liveness", c.LivenessProbe}, {"readiness", c.ReadinessProbe}, {"startup", c.StartupProbe}} {
				if p.probe != nil && p.probe.Exec != nil {
					bad("%s: the %s probe runs a command (ExecProcessRequest), which the policy denies; use httpGet, tcpSocket or grpc, or allow exec", where, p.kind)
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

// sandboxRule pins the pause container: the guest's built-in pause
// bundle, /pause as user 65535, no new privileges, a read-only root, at
// most the default capabilities, only the runtime's mounts, and the pod's
// hostname (a regular expression).
func sandboxRule(hostname string) containerRule {
	return containerRule{
		Name: "pause", Images: []string{}, Pause: true, MaxOneImage: true,
		Args: []string{"/pause"}, Env: []string{}, EnvNames: []string{},
		EnvRuntime: []string{"^" + regexp.QuoteMeta(defaultPath) + "$"},
		Cwd:        "/", UID: pauseUID, GID: pauseUID, NonRoot: true,
		ExtraGIDs: []int64{}, Hostname: hostname,
		ReadonlyRoot: true, NoNewPrivileges: true,
		Caps: slices.Clone(defaultCaps), CapsExact: false,
		Mounts:   append(slices.Clone(kernelMounts), runtimeBinds...),
		Required: []string{},
		Storages: []storageRule{{
			Driver: "ephemeral", FSType: "tmpfs", Source: "^shm$", MountPoint: "^/run/kata-containers/sandbox/shm$",
			Options: []string{"^mode=1777$", "^nodev$", "^noexec$", "^nosuid$", "^size=[0-9]{1,20}$"},
			Require: []string{"mode=1777", "nodev", "noexec", "nosuid"},
		}},
	}
}

var policyTemplate = template.Must(template.New("policy").Parse(`# Kata agent policy of trustbound workload "{{.Workload}}", generated by
# ` + "`" + `trustbound deploy --target kata` + "`" + `. Edit the pod, not this file: any change
# to these bytes changes the pod's hostData.
#
# The Kata agent inside the pod VM asks this policy before it serves each
# request from the host. The TEE binds it at launch (the digest of the
# init-data document holding it, in SNP HOST_DATA or TDX MRCONFIGID), and
# the manifest pins that value as the workload's hostData: a pod launched
# with any other policy is refused by the coordinator.
#
# What it pins, per container: the image, pulled inside the guest (by
# digest when the reference has one); the command line; the environment,
# both ways (every declared variable once, nothing else but PATH, HOSTNAME
# and the API server's address in their expected shapes); the working
# directory ("/" unless workingDir says); user and groups; capabilities; no
# new privileges; the root file system; every mount's destination, type,
# source and options; the storages; its own namespaces; containerd's
# masked and read-only paths; the hostname; no OCI hooks, devices, device
# cgroup grants or seccomp profile from the host. The pause container is
# pinned too and allowed once per pod (policy state). CreateSandbox and
# CopyFile are pinned below.
package agent_policy

import rego.v1

# Deny by default. Requests not named in this file are refused too.
default CreateContainerRequest := {"allowed": false}
default CreateSandboxRequest := false
default CopyFileRequest := false
default SetPolicyRequest := false
default UpdateContainerRequest := false
default UpdateEphemeralMountsRequest := false
default WriteStreamRequest := false
{{if .AllowExec}}
# !!! EXEC ALLOWED (trustbound deploy --allow-exec) !!!
# Whoever may run kubectl exec on this pod (the cluster admin) runs any command
# inside its trust boundary and reads every secret released to it. For debugging
# only; this line is part of the pinned policy, so the manifest says so too.
default ExecProcessRequest := true
{{else}}
# Exec is denied: nobody can run commands in the pod (kubectl exec, exec probes
# and hooks). ` + "`" + `trustbound deploy --allow-exec` + "`" + ` replaces this line with
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
# Lifecycle requests that reveal nothing inside the pod. (CreateSandbox is
# not one of them: see its rule below.)
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

# The sandbox: no guest hooks (the agent would run them as root in the
# guest, from a directory the host can fill), no kernel modules, no PID
# namespace shared by the containers, and no storage but the sandbox's
# /dev/shm tmpfs. That refuses in particular the kataShared virtio-fs
# mount, which would put the host's file system under the shared
# directory (shared_fs=none is what keeps the runtime's files, the CA and
# emptyDir volumes in guest memory).
CreateSandboxRequest if {
	empty(object.get(input, "guest_hook_path", ""))
	empty(object.get(input, "kernel_modules", []))
	object.get(input, "sandbox_pidns", false) == false
	every s in list(object.get(input, "storages", null)) {
		some want in policy_data.sandbox.storages
		storage_matches(want, s, want.source, want.mount_point)
	}
}

empty(x) if x == null

empty(x) if count(x) == 0

# The host may copy in (shared_fs=none) only the per-container files the
# runtime binds (hosts, hostname, resolv.conf, termination-log), as regular
# files, and the trustbound CA's volume as the kubelet lays it out, whose
# content the agent checks against --ca-sha256: its directory, one
# ..<timestamp> directory level, the ConfigMap's files in either, and
# symbolic links in the volume (..data, and each file name) with relative
# targets without "." or ".." components, which therefore stay inside the
# volume. Nothing else: a link elsewhere, or a directory the host may fill,
# would let a later request write through it or run from it.
shared_file := "^/run/kata-containers/shared/containers/[a-z0-9]{64}-[a-z0-9]{16}-"

ca_subdir := "\\.\\.[A-Za-z0-9_.-]+"

CopyFileRequest if {
	input.file_type == "Regular"
	file_mode_ok(32768)
	regex.match(concat("", [shared_file, "(hosts|hostname|resolv\\.conf|termination-log)$"]), input.path)
}

CopyFileRequest if {
	input.file_type == "Regular"
	file_mode_ok(32768)
	ca_path(input.path, concat("", ["(/", ca_subdir, ")?/", policy_data.ca_files]))
}

CopyFileRequest if {
	input.file_type == "Directory"
	file_mode_ok(16384)
	ca_path(input.path, concat("", ["(/", ca_subdir, ")?"]))
}

CopyFileRequest if {
	input.file_type == "Symlink"
	file_mode_ok(40960)
	ca_path(input.path, concat("", ["/(", ca_subdir, "|", policy_data.ca_files, ")"]))
	target := input.symlink_target
	is_string(target)
	not startswith(target, "/")
	every part in split(target, "/") {
		regex.match("^[A-Za-z0-9._-]+$", part)
		not part in {".", ".."}
	}
}

# A path in the CA's volume: its directory, then suffix (a regular
# expression).
ca_path(path, suffix) if {
	policy_data.ca_volume != ""
	regex.match(concat("", [shared_file, policy_data.ca_volume, suffix, "$"]), path)
	every part in split(path, "/") {
		not part in {".", ".."}
	}
}

# The file type in file_mode (S_IFMT), when the request carries one, is
# file_type's: the agent must not see two different answers.
file_mode_ok(_) if not "file_mode" in object.keys(input)

file_mode_ok(ifmt) if bits.and(input.file_mode, 61440) == ifmt

# The request's identifiers: the bundle (container) ID from the bundle path,
# the sandbox ID; both 64 hex-like characters, so that they can stand in a
# regular expression.
bundle_id := id if {
	p := input.OCI.Annotations["io.katacontainers.pkg.oci.bundle_path"]
	prefix := "/run/containerd/io.containerd.runtime.v2.task/k8s.io/"
	startswith(p, prefix)
	id := substring(p, count(prefix), -1)
	regex.match("^[a-z0-9]{64}$", id)
}

sandbox_id := id if {
	id := input.OCI.Annotations["io.kubernetes.cri.sandbox-id"]
	regex.match("^[a-z0-9]{64}$", id)
}

# The guest-pull root of the container being created.
root_path := concat("", ["/run/kata-containers/", bundle_id, "/rootfs"])

# Policy state kept by the agent between requests (data.pstate).
default state := {}

state := data.pstate

# The pause container: once per pod, fully pinned, with the pod's
# hostname; its ID and network namespace are remembered.
CreateContainerRequest := {"allowed": true, "ops": [
	{"op": "add", "path": "/pstate/sandbox_id", "value": sandbox_id},
	{"op": "add", "path": "/pstate/network_namespace", "value": network_namespace},
]} if {
	input.OCI.Annotations["io.kubernetes.cri.container-type"] == "sandbox"
	input.OCI.Annotations["io.katacontainers.pkg.oci.container_type"] == "pod_sandbox"
	not state.sandbox_id
	bundle_id == sandbox_id
	not input.OCI.Annotations["io.kubernetes.cri.container-name"]
	regex.match(policy_data.sandbox.hostname, object.get(input.OCI, "Hostname", ""))
	container_ok(policy_data.sandbox)
}

# Each container of the pod exactly as declared, in the sandbox created
# before it and in its network namespace.
CreateContainerRequest := {"allowed": true, "ops": []} if {
	input.OCI.Annotations["io.kubernetes.cri.container-type"] == "container"
	input.OCI.Annotations["io.katacontainers.pkg.oci.container_type"] == "pod_container"
	state.sandbox_id == sandbox_id
	bundle_id != sandbox_id
	network_namespace == object.get(state, "network_namespace", "")
	some c in policy_data.containers
	input.OCI.Annotations["io.kubernetes.cri.container-name"] == c.name
	image_ok(c, input.OCI.Annotations["io.kubernetes.cri.image-name"])
	container_hostname_ok(c)
	container_ok(c)
}

# containerd sets the hostname in the sandbox only; a container's is empty
# or the same.
container_hostname_ok(_) if object.get(input.OCI, "Hostname", "") in {"", null}

container_hostname_ok(c) if regex.match(c.hostname, input.OCI.Hostname)

container_ok(c) if {
	oci := input.OCI
	linux := oci.Linux
	hooks_ok
	list(object.get(linux, "Devices", null)) == []
	device_cgroup_ok(object.get(linux, "Resources", null))
	namespaces_ok
	paths_ok
	object.get(linux, "Seccomp", null) == null
	list(object.get(linux, "UIDMappings", null)) == []
	list(object.get(linux, "GIDMappings", null)) == []
	sysctls_ok
	oci.Root.Path == root_path
	object.get(oci.Root, "Readonly", false) == c.readonly_root
	process_ok(c, oci.Process)
	mounts_ok(c)
	storages_ok(c)
}

process_ok(c, p) if {
	p.Args == c.args
	p.Cwd == c.cwd
	object.get(p, "Terminal", false) == false
	object.get(p, "NoNewPrivileges", false) == c.no_new_privileges
	# The runtime's default confinement or none: never a profile the host
	# names, and never "unconfined" spelled out.
	object.get(p, "ApparmorProfile", "") in {"", null, "cri-containerd.apparmor.d"}
	object.get(p, "SelinuxLabel", "") in {"", null}
	user_ok(c, p.User)
	caps_ok(c, object.get(p, "Capabilities", null))
	env_ok(c, list(object.get(p, "Env", null)))
}

# null and absent lists are empty.
list(x) := x if is_array(x)

list(x) := [] if x == null

hooks := object.get(input.OCI, "Hooks", null)

hooks_ok if hooks == null

hooks_ok if {
	is_object(hooks)
	every _, v in hooks {
		list(v) == []
	}
}

# The device cgroup grants nothing: no rules, or only denials (containerd's
# default deny-all "rwm").
device_cgroup_ok(r) if r == null

device_cgroup_ok(r) if {
	is_object(r)
	every d in list(object.get(r, "Devices", null)) {
		object.get(d, "Allow", false) == false
	}
}

# Exactly the container's own namespaces, new (no path: nothing joined):
# ipc, mount, pid and uts, each once, optionally a new cgroup namespace;
# no user namespace. A network namespace, if the runtime names one, is the
# one the pause container had (policy state).
namespaces := list(object.get(input.OCI.Linux, "Namespaces", null))

namespace_types := [ns.Type | some ns in namespaces]

namespaces_ok if {
	count(namespace_types) == count({t | some t in namespace_types})
	every t in {"ipc", "mount", "pid", "uts"} {
		t in namespace_types
	}
	every ns in namespaces {
		namespace_allowed(ns)
	}
}

namespace_allowed(ns) if {
	ns.Type in {"cgroup", "ipc", "mount", "pid", "uts"}
	object.get(ns, "Path", "") == ""
}

namespace_allowed(ns) if ns.Type == "network"

network_paths := [object.get(ns, "Path", "") | some ns in namespaces; ns.Type == "network"]

network_namespace := "" if count(network_paths) == 0

network_namespace := network_paths[0] if count(network_paths) == 1

# containerd's masked and read-only paths are all there (a read-only path
# may be masked instead); more is allowed.
paths_ok if {
	masked := list(object.get(input.OCI.Linux, "MaskedPaths", null))
	readonly := list(object.get(input.OCI.Linux, "ReadonlyPaths", null))
	every p in policy_data.masked_paths {
		p in masked
	}
	every p in policy_data.readonly_paths {
		protected(p, masked, readonly)
	}
}

protected(p, masked, _) if p in masked

protected(p, _, readonly) if p in readonly

sysctls := object.get(input.OCI.Linux, "Sysctl", null)

sysctls_ok if sysctls == null

sysctls_ok if {
	is_object(sysctls)
	every k, v in sysctls {
		{"net.ipv4.ip_unprivileged_port_start": "0", "net.ipv4.ping_group_range": "0 2147483647"}[k] == v
	}
}

# The pinned user and group; supplementary groups only the primary group
# and the pod's supplementalGroups; no user name for the agent to look up.
user_ok(c, u) if {
	uid_ok(c, u.UID)
	gid_ok(c, u.GID)
	every g in list(object.get(u, "AdditionalGids", null)) {
		extra_gid_ok(c, u, g)
	}
	object.get(u, "Username", "") in {"", null}
}

uid_ok(c, uid) if {
	c.uid < 0
	not c.non_root
}

uid_ok(c, uid) if {
	c.uid < 0
	c.non_root
	uid != 0
}

uid_ok(c, uid) if uid == c.uid

gid_ok(c, _) if c.gid < 0

gid_ok(c, gid) if gid == c.gid

extra_gid_ok(_, u, g) if g == u.GID

extra_gid_ok(c, _, g) if g in c.extra_gids

# The bounding set is the pinned one (or within it, for the sandbox);
# effective and permitted are within it; ambient and inheritable are empty.
caps_ok(c, caps) if {
	caps == null
	not c.caps_exact
}

caps_ok(c, caps) if {
	caps == null
	c.caps == []
}

caps_ok(c, caps) if {
	is_object(caps)
	bounding := list(object.get(caps, "Bounding", null))
	every x in bounding {
		x in c.caps
	}
	count({x | some x in bounding}) == count(bounding)
	caps_count_ok(c, bounding)
	every k in ["Effective", "Permitted"] {
		every x in list(object.get(caps, k, null)) {
			x in bounding
		}
	}
	list(object.get(caps, "Ambient", null)) == []
	list(object.get(caps, "Inheritable", null)) == []
}

caps_count_ok(c, bounding) if count(bounding) == count(c.caps)

caps_count_ok(c, _) if not c.caps_exact

# Both ways: each declared variable once, and nothing else but the
# runtime's variables in their pinned shapes; no name twice.
env_name(e) := split(e, "=")[0]

env_ok(c, env) if {
	names := [env_name(e) | some e in env]
	count(names) == count({n | some n in names})
	every want in c.env {
		want in env
	}
	every e in env {
		env_allowed(c, e)
	}
}

env_allowed(c, e) if e in c.env

env_allowed(c, e) if {
	not env_name(e) in c.env_names
	some r in c.env_runtime
	regex.match(r, e)
}

# A regular expression of the policy with the request's identifiers.
fill(re) := replace(replace(re, "$(bundle-id)", bundle_id), "$(sandbox-id)", sandbox_id)

mounts_ok(c) if {
	mounts := list(object.get(input.OCI, "Mounts", null))
	dests := [m.destination | some m in mounts]
	count(dests) == count({d | some d in dests})
	every m in mounts {
		mount_allowed(c, m)
	}
	every d in c.required_mounts {
		d in dests
	}
}

mount_allowed(c, m) if {
	some want in c.mounts
	m.destination == want.destination
	m.type_ == want.type
	regex.match(fill(want.source), m.source)
	options := list(object.get(m, "options", null))
	every o in want.require {
		o in options
	}
	every o in options {
		option_allowed(want, o)
	}
}

option_allowed(want, o) if o in want.require

option_allowed(want, o) if o in want.allow

# The container's image, pulled inside the guest: one image_guest_pull
# storage at the container's root; other storages only as the pod's
# volumes need them. No storage names a group for the agent to chown it
# to (fs_group).
storages_ok(c) if {
	storages := list(object.get(input, "storages", null))
	images := [s | some s in storages; s.driver == "image_guest_pull"]
	image_count_ok(c, count(images))
	every s in storages {
		object.get(s, "fs_group", null) == null
		storage_allowed(c, s)
	}
}

image_count_ok(c, n) if n == 1

image_count_ok(c, n) if {
	c.max_one_image
	n == 0
}

storage_allowed(c, s) if {
	s.driver == "image_guest_pull"
	s.fstype == "overlay"
	s.mount_point == root_path
	list(object.get(s, "options", null)) == []
	pull_ok(c, s)
}

storage_allowed(c, s) if {
	some want in c.storages
	storage_matches(want, s, fill(want.source), fill(want.mount_point))
}

# s is want, its source and mount point matching the regular expressions
# given (want's, with the request's identifiers filled in).
storage_matches(want, s, source, mount_point) if {
	s.driver == want.driver
	s.fstype == want.fstype
	regex.match(source, s.source)
	regex.match(mount_point, s.mount_point)
	list(object.get(s, "driver_options", null)) == []
	object.get(s, "fs_group", null) == null
	options := list(object.get(s, "options", null))
	every o in want.require {
		o in options
	}
	every o in options {
		some r in want.options
		regex.match(r, o)
	}
}

# The agent takes the pause bundle built into the guest instead of pulling
# the source when the storage's metadata (its one driver option,
# image_guest_pull={"metadata": {...}}, the container's annotations)
# says "sandbox". So the pause container's storage is "pause" with that
# metadata, and a container's says "container" and names its image.
pull_metadata(s) := m if {
	opts := list(object.get(s, "driver_options", null))
	count(opts) == 1
	startswith(opts[0], "image_guest_pull=")
	v := json.unmarshal(substring(opts[0], count("image_guest_pull="), -1))
	is_object(v)
	m := v.metadata
	is_object(m)
}

pull_ok(c, s) if {
	c.pause
	s.source == "pause"
	m := pull_metadata(s)
	m["io.kubernetes.cri.container-type"] == "sandbox"
	object.get(m, "io.kubernetes.cri-o.ContainerType", "sandbox") == "sandbox"
}

pull_ok(c, s) if {
	not c.pause
	image_ok(c, s.source)
	m := pull_metadata(s)
	m["io.kubernetes.cri.container-type"] == "container"
	not "io.kubernetes.cri-o.ContainerType" in object.keys(m)
	image_ok(c, m["io.kubernetes.cri.image-name"])
}

image_ok(c, ref) if ref in c.images

# The same digest from another repository (a mirror): content is pinned.
image_ok(c, ref) if {
	c.digest != ""
	parts := split(ref, "@")
	count(parts) == 2
	parts[0] != ""
	parts[1] == c.digest
}

policy_data := {{.Data}}
`))
