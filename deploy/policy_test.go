package deploy_test

import (
	"context"
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage/inmem"

	"github.com/trustbound/trustbound/deploy"
)

// The identifiers of the requests below: the pod's sandbox (pause
// container) and the web container's bundle, 64 hex digits as containerd
// makes them; a random 16-character share suffix.
const (
	sandboxID = "5cd5b1a9a4ccc5c9fcf9fcc66fb72bf01e0920a1f34ef505f744119db6679c41"
	bundleID  = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	shared    = "/run/kata-containers/shared/containers/"
	webImage  = "ghcr.io/example/web@sha256:4b1f9cc9e6e5b9d8f1a2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718"
)

// decide asks the policy one question as the Kata agent does: the rule's
// value for input, with pstate as the agent's policy state. A rule's value
// is a boolean or {"allowed": bool, "ops": [...]}; decide returns whether
// it allows and the state operations it asks for.
func decide(t *testing.T, policy []byte, rule string, input, pstate map[string]any) (bool, []any) {
	t.Helper()
	opts := []func(*rego.Rego){rego.Query("data.agent_policy." + rule), rego.Module("policy.rego", string(policy)), rego.Input(input)}
	if pstate != nil {
		opts = append(opts, rego.Store(inmem.NewFromObject(map[string]any{"pstate": pstate})))
	}
	rs, err := rego.New(opts...).Eval(context.Background())
	if err != nil {
		t.Fatalf("%s: %v", rule, err)
	}
	if len(rs) != 1 || len(rs[0].Expressions) != 1 {
		t.Fatalf("%s: undefined (%v)", rule, rs)
	}
	switch v := rs[0].Expressions[0].Value.(type) {
	case bool:
		return v, nil
	case map[string]any:
		allowed, ok := v["allowed"].(bool)
		if !ok {
			t.Fatalf("%s: %v has no boolean allowed", rule, v)
		}
		ops, _ := v["ops"].([]any)
		return allowed, ops
	default:
		t.Fatalf("%s: %v is neither a boolean nor an object", rule, v)
	}
	return false, nil
}

// clone deep-copies a JSON value, so that each case mutates its own input.
func clone(t *testing.T, v map[string]any) map[string]any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

var defaultCaps = []any{"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW", "CAP_SETGID",
	"CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE"}

func mount(dest, typ, src string, opts ...any) map[string]any {
	return map[string]any{"destination": dest, "type_": typ, "source": src, "options": opts}
}

// runtimeMounts are what containerd and the Kata runtime give every
// container of bundle id (shapes from kata-containers' genpolicy test
// data: src/tools/genpolicy/tests/policy/testdata/createcontainer).
func runtimeMounts(id string) []any {
	return []any{
		mount("/proc", "proc", "proc", "nosuid", "noexec", "nodev"),
		mount("/dev", "tmpfs", "tmpfs", "nosuid", "strictatime", "mode=755", "size=65536k"),
		mount("/dev/pts", "devpts", "devpts", "nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"),
		mount("/dev/mqueue", "mqueue", "mqueue", "nosuid", "noexec", "nodev"),
		mount("/sys", "sysfs", "sysfs", "nosuid", "noexec", "nodev", "ro"),
		mount("/sys/fs/cgroup", "cgroup", "cgroup", "nosuid", "noexec", "nodev", "relatime", "ro"),
		mount("/etc/hosts", "bind", shared+id+"-dc49e1ba3ec278c5-hosts", "rbind", "rprivate", "rw"),
		mount("/dev/termination-log", "bind", shared+id+"-2e8b2725e7ce6844-termination-log", "rbind", "rprivate", "rw"),
		mount("/etc/hostname", "bind", shared+id+"-717ad4c50963e851-hostname", "rbind", "rprivate", "rw"),
		mount("/etc/resolv.conf", "bind", shared+id+"-d8f5f7c88a297469-resolv.conf", "rbind", "rprivate", "rw"),
		mount("/dev/shm", "bind", "/run/kata-containers/sandbox/shm", "rbind"),
	}
}

// pullOption is the driver option of a guest-pull image storage as the
// Kata runtime writes it: the container's annotations as the image's
// metadata, from which the agent tells the pause bundle from an image.
func pullOption(annotations map[string]any) string {
	b, err := json.Marshal(map[string]any{"metadata": annotations})
	if err != nil {
		panic(err)
	}
	return "image_guest_pull=" + string(b)
}

// ociBase is the part of a CreateContainerRequest's OCI spec shared by the
// sandbox and the containers, for bundle id: containerd's namespaces,
// masked and read-only paths (containerd 1.7), the Kata runtime's network
// namespace left out.
func ociBase(id string, annotations map[string]any, process map[string]any, mounts []any, readonly bool) map[string]any {
	annotations["io.katacontainers.pkg.oci.bundle_path"] = "/run/containerd/io.containerd.runtime.v2.task/k8s.io/" + id
	annotations["io.kubernetes.cri.sandbox-id"] = sandboxID
	annotations["io.kubernetes.cri.sandbox-name"] = "web-7d9f8b6c5d-x2k4q"
	annotations["io.kubernetes.cri.sandbox-namespace"] = "shop"
	return map[string]any{
		"Version":     "1.1.0",
		"Annotations": annotations,
		"Hooks":       nil,
		"Hostname":    "",
		"Linux": map[string]any{
			"Devices": []any{},
			"Namespaces": []any{map[string]any{"Path": "", "Type": "pid"}, map[string]any{"Path": "", "Type": "ipc"},
				map[string]any{"Path": "", "Type": "uts"}, map[string]any{"Path": "", "Type": "mount"}},
			"MaskedPaths": []any{"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
				"/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi"},
			"ReadonlyPaths": []any{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"},
			"Resources":     map[string]any{"Devices": []any{}},
			"Sysctl":        map[string]any{},
			"CgroupsPath":   "kubepods-besteffort-pod3cfbfd7a.slice:cri-containerd:" + id,
		},
		"Mounts":  mounts,
		"Process": process,
		"Root":    map[string]any{"Path": "/run/kata-containers/" + id + "/rootfs", "Readonly": readonly},
	}
}

// webInput is the CreateContainerRequest for container web of
// pod-web.yaml (deployment web, 2 replicas) as containerd and the Kata
// shim send it with guest pull: the image is pulled in the guest into the
// container's root.
func webInput() map[string]any {
	env := []any{
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOSTNAME=web-7d9f8b6c5d-x2k4q",
		"LOG_LEVEL=info", "CACHE_DIR=/cache",
		"KUBERNETES_SERVICE_HOST=10.0.0.1", "KUBERNETES_SERVICE_PORT=443", "KUBERNETES_SERVICE_PORT_HTTPS=443",
		"KUBERNETES_PORT=tcp://10.0.0.1:443", "KUBERNETES_PORT_443_TCP=tcp://10.0.0.1:443", "KUBERNETES_PORT_443_TCP_PROTO=tcp",
		"KUBERNETES_PORT_443_TCP_PORT=443", "KUBERNETES_PORT_443_TCP_ADDR=10.0.0.1",
	}
	process := map[string]any{
		"Args": []any{"/web", "--listen=:8443", "--tls-dir=/run/trustbound"},
		"Capabilities": map[string]any{
			"Ambient": []any{}, "Inheritable": []any{},
			"Bounding": defaultCaps, "Effective": defaultCaps, "Permitted": defaultCaps,
		},
		"Cwd": "/", "Env": env, "NoNewPrivileges": false, "OOMScoreAdj": 1000, "Rlimits": []any{}, "Terminal": false,
		"User": map[string]any{"UID": 1000, "GID": 0, "AdditionalGids": []any{0}, "Username": ""},
	}
	mounts := append(runtimeMounts(bundleID),
		mount("/cache", "bind", shared+sandboxID+"/rootfs/local/cache", "rbind", "rprivate", "rw"),
		mount("/run/trustbound", "bind", "/run/kata-containers/sandbox/ephemeral/trustbound", "rbind", "rprivate", "ro"),
	)
	oci := ociBase(bundleID, map[string]any{
		"io.katacontainers.pkg.oci.container_type": "pod_container",
		"io.kubernetes.cri.container-name":         "web",
		"io.kubernetes.cri.container-type":         "container",
		"io.kubernetes.cri.image-name":             webImage,
	}, process, mounts, false)
	return map[string]any{
		"container_id": bundleID,
		"exec_id":      bundleID,
		"OCI":          oci,
		"storages": []any{
			map[string]any{"driver": "image_guest_pull", "driver_options": []any{pullOption(oci["Annotations"].(map[string]any))}, "fs_group": nil, "fstype": "overlay",
				"mount_point": "/run/kata-containers/" + bundleID + "/rootfs", "options": []any{}, "source": webImage},
			map[string]any{"driver": "local", "driver_options": []any{}, "fs_group": nil, "fstype": "local",
				"mount_point": shared + sandboxID + "/rootfs/local/cache", "options": []any{"mode=0777"}, "source": "local"},
			map[string]any{"driver": "ephemeral", "driver_options": []any{}, "fs_group": nil, "fstype": "tmpfs",
				"mount_point": "/run/kata-containers/sandbox/ephemeral/trustbound", "options": []any{"size=16777216"}, "source": "tmpfs"},
		},
	}
}

// sandboxInput is the CreateContainerRequest for the pod's pause
// container.
func sandboxInput() map[string]any {
	process := map[string]any{
		"Args": []any{"/pause"},
		"Capabilities": map[string]any{
			"Ambient": []any{}, "Inheritable": []any{},
			"Bounding": defaultCaps, "Effective": defaultCaps, "Permitted": defaultCaps,
		},
		"Cwd": "/", "Env": []any{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
		"NoNewPrivileges": true, "OOMScoreAdj": -998, "Terminal": false,
		"User": map[string]any{"UID": 65535, "GID": 65535, "AdditionalGids": []any{}, "Username": ""},
	}
	mounts := append(runtimeMounts(sandboxID)[:6:6],
		mount("/dev/shm", "bind", "/run/kata-containers/sandbox/shm", "rbind"),
		mount("/etc/resolv.conf", "bind", shared+sandboxID+"-a1b2c3d4e5f60718-resolv.conf", "rbind", "ro", "nosuid", "nodev", "noexec"),
	)
	oci := ociBase(sandboxID, map[string]any{
		"io.katacontainers.pkg.oci.container_type": "pod_sandbox",
		"io.kubernetes.cri.container-type":         "sandbox",
		"io.kubernetes.cri.sandbox-log-directory":  "/var/log/pods/shop_web-7d9f8b6c5d-x2k4q_3cfbfd7a-3065-4862-805e-3f5e4142bcbd",
	}, process, mounts, true)
	oci["Linux"].(map[string]any)["Sysctl"] = map[string]any{"net.ipv4.ip_unprivileged_port_start": "0", "net.ipv4.ping_group_range": "0 2147483647"}
	oci["Hostname"] = "web-7d9f8b6c5d-x2k4q"
	return map[string]any{
		"container_id": sandboxID,
		"OCI":          oci,
		"storages": []any{
			map[string]any{"driver": "ephemeral", "driver_options": []any{}, "fs_group": nil, "fstype": "tmpfs", "source": "shm",
				"mount_point": "/run/kata-containers/sandbox/shm", "options": []any{"noexec", "nosuid", "nodev", "mode=1777", "size=67108864"}},
			map[string]any{"driver": "image_guest_pull", "driver_options": []any{pullOption(oci["Annotations"].(map[string]any))}, "fs_group": nil, "fstype": "overlay", "source": "pause",
				"mount_point": "/run/kata-containers/" + sandboxID + "/rootfs", "options": []any{}},
		},
	}
}

func webPolicy(t *testing.T, mut func(*deploy.Options)) []byte {
	t.Helper()
	o := goldenCases(t)[5].opts // kata-web-pod
	if mut != nil {
		mut(&o)
	}
	res, err := deploy.Generate(testManifest(t), o)
	if err != nil {
		t.Fatal(err)
	}
	return res.Policy
}

// TestPolicyContainer evaluates the generated policy with OPA on requests
// shaped like the Kata agent's: the declared container is allowed in the
// sandbox created before it; every hole a host could use is refused.
func TestPolicyContainer(t *testing.T) {
	p := webPolicy(t, nil)
	state := map[string]any{"sandbox_id": sandboxID}
	if ok, ops := decide(t, p, "CreateContainerRequest", webInput(), state); !ok || len(ops) != 0 {
		t.Fatalf("the declared container is refused (%v, ops %v)", ok, ops)
	}

	oci := func(in map[string]any) map[string]any { return in["OCI"].(map[string]any) }
	proc := func(in map[string]any) map[string]any { return oci(in)["Process"].(map[string]any) }
	ann := func(in map[string]any) map[string]any { return oci(in)["Annotations"].(map[string]any) }
	caps := func(in map[string]any) map[string]any { return proc(in)["Capabilities"].(map[string]any) }
	storages := func(in map[string]any) []any { return in["storages"].([]any) }
	setMount := func(in map[string]any, dest string, m map[string]any) {
		ms := oci(in)["Mounts"].([]any)
		for i, x := range ms {
			if x.(map[string]any)["destination"] == dest {
				ms[i] = m
				return
			}
		}
		t.Fatalf("no mount at %s", dest)
	}
	setEnv := func(in map[string]any, f func([]any) []any) { proc(in)["Env"] = f(proc(in)["Env"].([]any)) }
	linux := func(in map[string]any) map[string]any { return oci(in)["Linux"].(map[string]any) }
	pull := func(in map[string]any) map[string]any { return storages(in)[0].(map[string]any) }
	// setMetadata rewrites the image storage's metadata from annotations
	// changed by f.
	setMetadata := func(in map[string]any, f func(map[string]any)) {
		m := maps.Clone(ann(in))
		f(m)
		pull(in)["driver_options"] = []any{pullOption(m)}
	}

	// Also allowed: the same image digest from a mirror; no Hooks at all;
	// capabilities dropped from effective and permitted.
	for name, mut := range map[string]func(map[string]any){
		"mirror with the same digest": func(in map[string]any) {
			storages(in)[0].(map[string]any)["source"] = "mirror.example.test/web@sha256:4b1f9cc9e6e5b9d8f1a2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718"
		},
		"hooks absent":      func(in map[string]any) { delete(oci(in), "Hooks") },
		"empty hooks":       func(in map[string]any) { oci(in)["Hooks"] = map[string]any{"Prestart": []any{}, "Poststart": nil} },
		"no effective caps": func(in map[string]any) { caps(in)["Effective"] = []any{} },
		"new cgroup namespace": func(in map[string]any) {
			linux(in)["Namespaces"] = append(linux(in)["Namespaces"].([]any), map[string]any{"Path": "", "Type": "cgroup"})
		},
		"containerd's deny-all device rule": func(in map[string]any) {
			linux(in)["Resources"] = map[string]any{"Devices": []any{map[string]any{"Allow": false, "Access": "rwm"}}}
		},
		"no resources": func(in map[string]any) { delete(linux(in), "Resources") },
		"newer containerd's masked paths": func(in map[string]any) {
			linux(in)["MaskedPaths"] = append(linux(in)["MaskedPaths"].([]any), "/sys/devices/virtual/powercap")
		},
		"the pod's hostname": func(in map[string]any) { oci(in)["Hostname"] = "web-7d9f8b6c5d-x2k4q" },
		"runtime default AppArmor": func(in map[string]any) {
			proc(in)["ApparmorProfile"] = "cri-containerd.apparmor.d"
		},
		"IPv6 API server": func(in map[string]any) {
			setEnv(in, func(e []any) []any { e[4] = "KUBERNETES_SERVICE_HOST=fd00::1"; return e })
		},
		"without runtime files": func(in map[string]any) { oci(in)["Mounts"] = oci(in)["Mounts"].([]any)[11:] },
	} {
		in := webInput()
		mut(in)
		if ok, _ := decide(t, p, "CreateContainerRequest", in, state); !ok {
			t.Errorf("%s: refused", name)
		}
	}

	for name, mut := range map[string]func(map[string]any){
		// identity and process
		"other image annotation": func(in map[string]any) { ann(in)["io.kubernetes.cri.image-name"] = "ghcr.io/example/web:latest" },
		"unknown name":           func(in map[string]any) { ann(in)["io.kubernetes.cri.container-name"] = "shell" },
		"other args":             func(in map[string]any) { proc(in)["Args"] = []any{"/web", "--listen=:8443", "--debug"} },
		"other cwd":              func(in map[string]any) { proc(in)["Cwd"] = "/tmp" },
		"terminal":               func(in map[string]any) { proc(in)["Terminal"] = true },
		"root":                   func(in map[string]any) { proc(in)["User"] = map[string]any{"UID": 0, "GID": 0} },
		// environment, both ways
		"extra env":     func(in map[string]any) { setEnv(in, func(e []any) []any { return append(e, "LD_PRELOAD=/tmp/x.so") }) },
		"changed env":   func(in map[string]any) { setEnv(in, func(e []any) []any { e[2] = "LOG_LEVEL=debug"; return e }) },
		"missing env":   func(in map[string]any) { setEnv(in, func(e []any) []any { return slices.Delete(e, 2, 3) }) },
		"duplicate env": func(in map[string]any) { setEnv(in, func(e []any) []any { return append(e, "LOG_LEVEL=info") }) },
		"shadowed env":  func(in map[string]any) { setEnv(in, func(e []any) []any { return append(e, "LOG_LEVEL=debug") }) },
		"PATH prefix": func(in map[string]any) {
			setEnv(in, func(e []any) []any { e[0] = "PATH=/tmp/evil:/usr/bin"; return e })
		},
		"HOSTNAME":     func(in map[string]any) { setEnv(in, func(e []any) []any { e[1] = "HOSTNAME=evil.example"; return e }) },
		"KUBERNETES_*": func(in map[string]any) { setEnv(in, func(e []any) []any { return append(e, "KUBERNETES_PORTAL=x") }) },
		"API server URL": func(in map[string]any) {
			setEnv(in, func(e []any) []any { e[7] = "KUBERNETES_PORT=https://evil:443"; return e })
		},
		"PATH twice": func(in map[string]any) { setEnv(in, func(e []any) []any { return append(e, "PATH=/tmp") }) },
		"env without PATH and with a second HOSTNAME": func(in map[string]any) {
			setEnv(in, func(e []any) []any { e[0] = "HOSTNAME=web-7d9f8b6c5d-abcde"; return e })
		},
		// capabilities and privileges
		"extra bounding capability": func(in map[string]any) { caps(in)["Bounding"] = append(slices.Clone(defaultCaps), "CAP_SYS_ADMIN") },
		"missing bounding capability": func(in map[string]any) {
			caps(in)["Bounding"] = slices.Clone(defaultCaps[1:])
			caps(in)["Effective"], caps(in)["Permitted"] = []any{}, []any{}
		},
		"effective beyond bounding":                 func(in map[string]any) { caps(in)["Effective"] = append(slices.Clone(defaultCaps), "CAP_SYS_ADMIN") },
		"ambient capability":                        func(in map[string]any) { caps(in)["Ambient"] = []any{"CAP_NET_RAW"} },
		"no capabilities object, bounding unpinned": func(in map[string]any) { delete(proc(in), "Capabilities") },
		"no new privileges flipped":                 func(in map[string]any) { proc(in)["NoNewPrivileges"] = true },
		// OCI hooks, devices, namespaces, sysctls, root
		"prestart hook": func(in map[string]any) {
			oci(in)["Hooks"] = map[string]any{"Prestart": []any{map[string]any{"path": "/bin/sh"}}}
		},
		"createRuntime hook": func(in map[string]any) {
			oci(in)["Hooks"] = map[string]any{"CreateRuntime": []any{map[string]any{"path": "/x"}}}
		},
		"device": func(in map[string]any) {
			oci(in)["Linux"].(map[string]any)["Devices"] = []any{map[string]any{"path": "/dev/vda"}}
		},
		"joined pid namespace": func(in map[string]any) {
			oci(in)["Linux"].(map[string]any)["Namespaces"] = []any{map[string]any{"Path": "/proc/1/ns/pid", "Type": "pid"}}
		},
		"user namespace": func(in map[string]any) {
			oci(in)["Linux"].(map[string]any)["Namespaces"] = []any{map[string]any{"Path": "", "Type": "user"}}
		},
		"sysctl": func(in map[string]any) {
			oci(in)["Linux"].(map[string]any)["Sysctl"] = map[string]any{"kernel.core_pattern": "|/x"}
		},
		"other root": func(in map[string]any) {
			oci(in)["Root"] = map[string]any{"Path": "/run/kata-containers/shared/containers/" + bundleID + "/rootfs"}
		},
		"read-only root flipped": func(in map[string]any) { oci(in)["Root"].(map[string]any)["Readonly"] = true },
		// mounts: destination, source, type and options
		"secrets from the host": func(in map[string]any) {
			setMount(in, "/run/trustbound", mount("/run/trustbound", "bind", "/host/fake-secrets", "rbind", "rprivate", "ro"))
		},
		"cache as a host share": func(in map[string]any) {
			setMount(in, "/cache", mount("/cache", "bind", shared+bundleID+"-0123456789abcdef-cache", "rbind", "rprivate", "rw"))
		},
		"/proc from / rw": func(in map[string]any) { setMount(in, "/proc", mount("/proc", "bind", "/", "rbind", "rw")) },
		"/sys writable": func(in map[string]any) {
			setMount(in, "/sys", mount("/sys", "sysfs", "sysfs", "nosuid", "noexec", "nodev", "rw"))
		},
		"/proc without noexec": func(in map[string]any) { setMount(in, "/proc", mount("/proc", "proc", "proc", "nosuid", "nodev")) },
		"hosts of another container": func(in map[string]any) {
			setMount(in, "/etc/hosts", mount("/etc/hosts", "bind", shared+strings.Repeat("a", 64)+"-dc49e1ba3ec278c5-hosts", "rbind"))
		},
		"writable agent dir": func(in map[string]any) {
			setMount(in, "/run/trustbound", mount("/run/trustbound", "bind", "/run/kata-containers/sandbox/ephemeral/trustbound", "rbind", "rw"))
		},
		"no agent dir": func(in map[string]any) {
			ms := oci(in)["Mounts"].([]any)
			oci(in)["Mounts"] = ms[:len(ms)-1]
		},
		"extra mount": func(in map[string]any) {
			oci(in)["Mounts"] = append(oci(in)["Mounts"].([]any), mount("/host", "bind", "/", "rbind"))
		},
		"two mounts at one path": func(in map[string]any) {
			oci(in)["Mounts"] = append(oci(in)["Mounts"].([]any), mount("/cache", "bind", shared+sandboxID+"/rootfs/local/cache", "rbind", "rw"))
		},
		// namespaces, masked and read-only paths, seccomp, AppArmor,
		// groups, hostname, device cgroup (the reviewer's bypasses)
		"no namespaces at all": func(in map[string]any) { linux(in)["Namespaces"] = []any{} },
		"no namespaces field":  func(in map[string]any) { delete(linux(in), "Namespaces") },
		"no pid namespace (the agent's)": func(in map[string]any) {
			linux(in)["Namespaces"] = linux(in)["Namespaces"].([]any)[1:]
		},
		"pid namespace twice": func(in map[string]any) {
			linux(in)["Namespaces"] = append(linux(in)["Namespaces"].([]any), map[string]any{"Path": "", "Type": "pid"})
		},
		"joined network namespace the sandbox did not have": func(in map[string]any) {
			linux(in)["Namespaces"] = append(linux(in)["Namespaces"].([]any), map[string]any{"Path": "/proc/1/ns/net", "Type": "network"})
		},
		"no masked paths":    func(in map[string]any) { linux(in)["MaskedPaths"] = []any{} },
		"no read-only paths": func(in map[string]any) { linux(in)["ReadonlyPaths"] = []any{} },
		"/proc/kcore unmasked": func(in map[string]any) {
			linux(in)["MaskedPaths"] = slices.DeleteFunc(slices.Clone(linux(in)["MaskedPaths"].([]any)), func(p any) bool { return p == "/proc/kcore" })
		},
		"seccomp profile from the host": func(in map[string]any) {
			linux(in)["Seccomp"] = map[string]any{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": []any{map[string]any{"names": []any{"getrandom"}, "action": "SCMP_ACT_ERRNO"}}}
		},
		"AppArmor unconfined": func(in map[string]any) { proc(in)["ApparmorProfile"] = "unconfined" },
		"AppArmor profile named by the host": func(in map[string]any) {
			proc(in)["ApparmorProfile"] = "host-profile"
		},
		"SELinux label": func(in map[string]any) { proc(in)["SelinuxLabel"] = "system_u:system_r:spc_t:s0" },
		"extra groups": func(in map[string]any) {
			proc(in)["User"].(map[string]any)["AdditionalGids"] = []any{0, 4, 6}
		},
		"user name to look up": func(in map[string]any) { proc(in)["User"].(map[string]any)["Username"] = "root" },
		"uid mappings": func(in map[string]any) {
			linux(in)["UIDMappings"] = []any{map[string]any{"ContainerID": 0, "HostID": 0, "Size": 1}}
		},
		"other hostname": func(in map[string]any) { oci(in)["Hostname"] = "evil" },
		"device cgroup allows everything": func(in map[string]any) {
			linux(in)["Resources"] = map[string]any{"Devices": []any{map[string]any{"Allow": true, "Access": "rwm"}}}
		},
		"device cgroup allows one device": func(in map[string]any) {
			linux(in)["Resources"] = map[string]any{"Devices": []any{
				map[string]any{"Allow": false, "Access": "rwm"},
				map[string]any{"Allow": true, "Type": "b", "Major": 253, "Minor": 0, "Access": "rw"}}}
		},
		"reviewer's web_unpinned (all of them)": func(in map[string]any) {
			linux(in)["MaskedPaths"], linux(in)["ReadonlyPaths"], linux(in)["Seccomp"] = []any{}, []any{}, nil
			proc(in)["User"].(map[string]any)["AdditionalGids"] = []any{0, 4, 6}
			oci(in)["Hostname"] = "evil"
			linux(in)["Resources"] = map[string]any{"Devices": []any{map[string]any{"Allow": true, "Access": "rwm"}}}
			proc(in)["ApparmorProfile"] = "unconfined"
		},
		// the image storage's metadata: the agent takes the guest's pause
		// bundle when it says "sandbox"
		"metadata says sandbox": func(in map[string]any) {
			setMetadata(in, func(m map[string]any) { m["io.kubernetes.cri.container-type"] = "sandbox" })
		},
		"CRI-O metadata says sandbox": func(in map[string]any) {
			setMetadata(in, func(m map[string]any) { m["io.kubernetes.cri-o.ContainerType"] = "sandbox" })
		},
		"metadata without container type": func(in map[string]any) {
			setMetadata(in, func(m map[string]any) { delete(m, "io.kubernetes.cri.container-type") })
		},
		"metadata names another image": func(in map[string]any) {
			setMetadata(in, func(m map[string]any) { m["io.kubernetes.cri.image-name"] = "evil.example/web:latest" })
		},
		"no metadata":            func(in map[string]any) { pull(in)["driver_options"] = []any{} },
		"empty metadata":         func(in map[string]any) { pull(in)["driver_options"] = []any{`image_guest_pull={"metadata":{}}`} },
		"metadata not JSON":      func(in map[string]any) { pull(in)["driver_options"] = []any{`image_guest_pull={"metadata":`} },
		"metadata not an object": func(in map[string]any) { pull(in)["driver_options"] = []any{`image_guest_pull={"metadata":"sandbox"}`} },
		"two driver options": func(in map[string]any) {
			pull(in)["driver_options"] = append(pull(in)["driver_options"].([]any), `image_guest_pull={"metadata":{"io.kubernetes.cri.container-type":"sandbox"}}`)
		},
		"image storage options": func(in map[string]any) { pull(in)["options"] = []any{"ro"} },
		"reviewer's web_drvopts (sandbox metadata, fs_group)": func(in map[string]any) {
			pull(in)["driver_options"] = []any{`image_guest_pull={"metadata":{"io.kubernetes.cri.container-type":"sandbox"}}`}
			storages(in)[2].(map[string]any)["fs_group"] = map[string]any{"group_id": 0}
		},
		"fs_group on a volume": func(in map[string]any) {
			storages(in)[2].(map[string]any)["fs_group"] = map[string]any{"group_id": 0, "group_change_policy": 0}
		},
		"fs_group on the image": func(in map[string]any) { pull(in)["fs_group"] = map[string]any{"group_id": 0} },
		"driver options on a volume": func(in map[string]any) {
			storages(in)[1].(map[string]any)["driver_options"] = []any{"encryption_key=ephemeral"}
		},
		"ephemeral volume with setuid mode": func(in map[string]any) {
			storages(in)[2].(map[string]any)["options"] = []any{"size=16777216", "mode=4777"}
		},
		"reviewer's web_castorage (a CA bind the container does not mount)": func(in map[string]any) {
			in["storages"] = append(storages(in), map[string]any{"driver": "local", "fstype": "bind", "source": shared + bundleID + "-0123456789abcdef-trustbound-ca",
				"mount_point": shared + bundleID + "-0123456789abcdef-trustbound-ca", "options": []any{"rbind", "ro"}})
		},
		// storages
		"image from the host (no guest pull)": func(in map[string]any) { in["storages"] = storages(in)[1:] },
		"foreign storage": func(in map[string]any) {
			in["storages"] = append(storages(in), map[string]any{"driver": "virtio-fs", "fstype": "virtiofs", "source": "kataShared", "mount_point": "/run/kata-containers/shared/containers/x", "options": []any{}})
		},
		"other image digest": func(in map[string]any) {
			storages(in)[0].(map[string]any)["source"] = "ghcr.io/example/web@sha256:" + strings.Repeat("a", 64)
		},
		"image by tag": func(in map[string]any) { storages(in)[0].(map[string]any)["source"] = "ghcr.io/example/web:latest" },
		"image elsewhere": func(in map[string]any) {
			storages(in)[0].(map[string]any)["mount_point"] = "/run/kata-containers/" + strings.Repeat("b", 64) + "/rootfs"
		},
		"second image": func(in map[string]any) { in["storages"] = append(storages(in), storages(in)[0]) },
		"ephemeral storage elsewhere": func(in map[string]any) {
			storages(in)[2].(map[string]any)["mount_point"] = "/run/kata-containers/sandbox/ephemeral/other"
		},
		"local storage option": func(in map[string]any) { storages(in)[1].(map[string]any)["options"] = []any{"mode=0777", "exec"} },
		// sandbox binding
		"other sandbox": func(in map[string]any) { ann(in)["io.kubernetes.cri.sandbox-id"] = strings.Repeat("f", 64) },
		"bad bundle path": func(in map[string]any) {
			ann(in)["io.katacontainers.pkg.oci.bundle_path"] = "/run/containerd/io.containerd.runtime.v2.task/k8s.io/../x"
		},
		"pod_sandbox kind": func(in map[string]any) { ann(in)["io.katacontainers.pkg.oci.container_type"] = "pod_sandbox" },
	} {
		in := webInput()
		mut(in)
		if ok, _ := decide(t, p, "CreateContainerRequest", in, state); ok {
			t.Errorf("%s: allowed", name)
		}
	}
	// Before the sandbox (no state), the container is refused.
	if ok, _ := decide(t, p, "CreateContainerRequest", webInput(), map[string]any{}); ok {
		t.Error("a container before its sandbox is allowed")
	}
	// The network namespace is the sandbox's, as the policy state has it.
	netns := map[string]any{"sandbox_id": sandboxID, "network_namespace": "/run/netns/podns"}
	in := webInput()
	if ok, _ := decide(t, p, "CreateContainerRequest", in, netns); ok {
		t.Error("a container without the sandbox's network namespace is allowed")
	}
	linux(in)["Namespaces"] = append(linux(in)["Namespaces"].([]any), map[string]any{"Path": "/run/netns/podns", "Type": "network"})
	if ok, _ := decide(t, p, "CreateContainerRequest", in, netns); !ok {
		t.Error("a container in the sandbox's network namespace is refused")
	}
	if ok, _ := decide(t, p, "CreateContainerRequest", in, state); ok {
		t.Error("a container joining a network namespace the sandbox did not have is allowed")
	}
}

// TestPolicySandbox: the pause container is pinned and allowed once; an
// impostor with the sandbox's annotation and /pause is refused.
func TestPolicySandbox(t *testing.T) {
	p := webPolicy(t, nil)
	ok, ops := decide(t, p, "CreateContainerRequest", sandboxInput(), map[string]any{})
	want := []any{map[string]any{"op": "add", "path": "/pstate/sandbox_id", "value": sandboxID},
		map[string]any{"op": "add", "path": "/pstate/network_namespace", "value": ""}}
	if !ok || !jsonEqual(t, ops, want) {
		t.Fatalf("the pause container: %v, ops %v; want allowed, ops %v", ok, ops, want)
	}
	// Its network namespace, if the runtime names one, is remembered; no
	// image storage at all is allowed too (nothing to run).
	in := sandboxInput()
	linux := in["OCI"].(map[string]any)["Linux"].(map[string]any)
	linux["Namespaces"] = append(linux["Namespaces"].([]any), map[string]any{"Path": "/run/netns/podns", "Type": "network"})
	want[1].(map[string]any)["value"] = "/run/netns/podns"
	if ok, ops := decide(t, p, "CreateContainerRequest", in, map[string]any{}); !ok || !jsonEqual(t, ops, want) {
		t.Errorf("the pause container in a network namespace: %v, ops %v; want allowed, ops %v", ok, ops, want)
	}
	in = sandboxInput()
	in["storages"] = in["storages"].([]any)[:1]
	if ok, _ := decide(t, p, "CreateContainerRequest", in, map[string]any{}); !ok {
		t.Error("the pause container without an image storage is refused")
	}
	if ok, _ := decide(t, p, "CreateContainerRequest", sandboxInput(), map[string]any{"sandbox_id": sandboxID}); ok {
		t.Error("a second sandbox is allowed")
	}
	oci := func(in map[string]any) map[string]any { return in["OCI"].(map[string]any) }
	proc := func(in map[string]any) map[string]any { return oci(in)["Process"].(map[string]any) }
	pull := func(in map[string]any) map[string]any { return in["storages"].([]any)[1].(map[string]any) }
	for name, mut := range map[string]func(map[string]any){
		"extra env": func(in map[string]any) { proc(in)["Env"] = append(proc(in)["Env"].([]any), "LD_PRELOAD=/x.so") },
		"extra capability": func(in map[string]any) {
			proc(in)["Capabilities"].(map[string]any)["Bounding"] = append(slices.Clone(defaultCaps), "CAP_SYS_ADMIN")
		},
		"host mount": func(in map[string]any) {
			oci(in)["Mounts"] = append(oci(in)["Mounts"].([]any), mount("/host", "bind", "/", "rbind"))
		},
		"root user":      func(in map[string]any) { proc(in)["User"] = map[string]any{"UID": 0, "GID": 0} },
		"new privileges": func(in map[string]any) { proc(in)["NoNewPrivileges"] = false },
		"writable root":  func(in map[string]any) { oci(in)["Root"].(map[string]any)["Readonly"] = false },
		"other args":     func(in map[string]any) { proc(in)["Args"] = []any{"/pause", "-x"} },
		"hook": func(in map[string]any) {
			oci(in)["Hooks"] = map[string]any{"Poststart": []any{map[string]any{"path": "/bin/sh"}}}
		},
		"foreign storage": func(in map[string]any) {
			in["storages"] = append(in["storages"].([]any), map[string]any{"driver": "overlayfs", "fstype": "overlay", "source": "none", "mount_point": "/run/kata-containers/" + sandboxID + "/rootfs", "options": []any{}})
		},
		"named like a container": func(in map[string]any) {
			oci(in)["Annotations"].(map[string]any)["io.kubernetes.cri.container-name"] = "web"
		},
		"bundle is not the sandbox": func(in map[string]any) {
			oci(in)["Annotations"].(map[string]any)["io.katacontainers.pkg.oci.bundle_path"] = "/run/containerd/io.containerd.runtime.v2.task/k8s.io/" + bundleID
		},
		// The agent runs the image source unless the metadata says
		// "sandbox": the pause container must be the guest's bundle.
		"reviewer's sb_evilimage (an image, empty metadata)": func(in map[string]any) {
			pull(in)["source"] = "evil.example/pause@sha256:" + strings.Repeat("ab", 32)
			pull(in)["driver_options"] = []any{`image_guest_pull={"metadata":{}}`}
		},
		"an image with sandbox metadata": func(in map[string]any) {
			pull(in)["source"] = "evil.example/pause@sha256:" + strings.Repeat("ab", 32)
		},
		"pause with container metadata": func(in map[string]any) {
			pull(in)["driver_options"] = []any{`image_guest_pull={"metadata":{"io.kubernetes.cri.container-type":"container"}}`}
		},
		"pause without metadata": func(in map[string]any) { pull(in)["driver_options"] = []any{} },
		"pause with CRI-O metadata saying container": func(in map[string]any) {
			pull(in)["driver_options"] = []any{`image_guest_pull={"metadata":{"io.kubernetes.cri.container-type":"sandbox","io.kubernetes.cri-o.ContainerType":"container"}}`}
		},
		"image storage with fs_group": func(in map[string]any) { pull(in)["fs_group"] = map[string]any{"group_id": 0} },
		"reviewer's sb_devcgroup": func(in map[string]any) {
			oci(in)["Linux"].(map[string]any)["Resources"] = map[string]any{"Devices": []any{map[string]any{"Allow": true, "Access": "rwm"}}}
		},
		"other hostname": func(in map[string]any) { oci(in)["Hostname"] = "evil" },
		"no hostname":    func(in map[string]any) { oci(in)["Hostname"] = "" },
		"no namespaces":  func(in map[string]any) { oci(in)["Linux"].(map[string]any)["Namespaces"] = []any{} },
		"no masked paths": func(in map[string]any) {
			oci(in)["Linux"].(map[string]any)["MaskedPaths"] = []any{}
		},
		"seccomp profile": func(in map[string]any) {
			oci(in)["Linux"].(map[string]any)["Seccomp"] = map[string]any{"defaultAction": "SCMP_ACT_ALLOW"}
		},
		"shm without noexec": func(in map[string]any) {
			in["storages"].([]any)[0].(map[string]any)["options"] = []any{"nosuid", "nodev", "mode=1777", "size=67108864"}
		},
	} {
		in := sandboxInput()
		mut(in)
		if ok, _ := decide(t, p, "CreateContainerRequest", in, map[string]any{}); ok {
			t.Errorf("%s: allowed", name)
		}
	}
}

func jsonEqual(t *testing.T, a, b any) bool {
	t.Helper()
	x, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	y, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	return string(x) == string(y)
}

// TestPolicyAgentContainer: the trustbound agent init container as wired
// (the CA from its ConfigMap, read-only; no capabilities; no new
// privileges; read-only root) is allowed, and its pinned --ca-sha256
// cannot be changed.
func TestPolicyAgentContainer(t *testing.T) {
	p := webPolicy(t, nil)
	in := webInput()
	oci := in["OCI"].(map[string]any)
	oci["Annotations"].(map[string]any)["io.kubernetes.cri.container-name"] = "trustbound-agent"
	oci["Annotations"].(map[string]any)["io.kubernetes.cri.image-name"] = testAgentImage
	oci["Root"].(map[string]any)["Readonly"] = true
	ca := shared + bundleID + "-0f1e2d3c4b5a6978-trustbound-ca"
	oci["Mounts"] = append(runtimeMounts(bundleID),
		mount("/etc/trustbound", "bind", ca, "rbind", "rprivate", "ro"),
		mount("/run/trustbound", "bind", "/run/kata-containers/sandbox/ephemeral/trustbound", "rbind", "rprivate", "rw"),
	)
	proc := oci["Process"].(map[string]any)
	res, err := deploy.Generate(testManifest(t), goldenCases(t)[5].opts)
	if err != nil {
		t.Fatal(err)
	}
	spec, _ := podOf(t, decodeStrict(t, fileOf(t, res, "kubernetes.yaml")))
	agent := spec.InitContainers[0]
	var args []any
	for _, a := range append(slices.Clone(agent.Command), agent.Args...) {
		args = append(args, a)
	}
	proc["Args"] = args
	proc["NoNewPrivileges"] = true
	proc["Capabilities"] = map[string]any{"Ambient": []any{}, "Bounding": []any{}, "Effective": []any{}, "Inheritable": []any{}, "Permitted": []any{}}
	env := proc["Env"].([]any)
	proc["Env"] = append(slices.Clone(env[:2]), env[4:]...) // no LOG_LEVEL, CACHE_DIR
	storages := in["storages"].([]any)
	storages[0].(map[string]any)["source"] = testAgentImage
	storages[0].(map[string]any)["driver_options"] = []any{pullOption(oci["Annotations"].(map[string]any))}
	in["storages"] = []any{storages[0], storages[2],
		map[string]any{"driver": "local", "fstype": "bind", "source": ca, "mount_point": ca, "options": []any{"rbind", "rprivate", "ro"}}}
	state := map[string]any{"sandbox_id": sandboxID}
	if ok, _ := decide(t, p, "CreateContainerRequest", in, state); !ok {
		t.Fatal("the agent container as wired is refused")
	}
	for name, mut := range map[string]func(map[string]any){
		"other --ca-sha256": func(in map[string]any) {
			a := in["OCI"].(map[string]any)["Process"].(map[string]any)["Args"].([]any)
			i := slices.Index(a, any("--ca-sha256"))
			a[i+1] = strings.Repeat("0", 64)
		},
		"writable CA": func(in map[string]any) {
			in["OCI"].(map[string]any)["Mounts"].([]any)[11] = mount("/etc/trustbound", "bind", ca, "rbind", "rprivate", "rw")
		},
		"CA from another ConfigMap": func(in map[string]any) {
			in["OCI"].(map[string]any)["Mounts"].([]any)[11] = mount("/etc/trustbound", "bind", shared+bundleID+"-0f1e2d3c4b5a6978-other", "rbind", "rprivate", "ro")
		},
		"a capability": func(in map[string]any) {
			in["OCI"].(map[string]any)["Process"].(map[string]any)["Capabilities"].(map[string]any)["Bounding"] = []any{"CAP_NET_RAW"}
		},
	} {
		c := clone(t, in)
		mut(c)
		if ok, _ := decide(t, p, "CreateContainerRequest", c, state); ok {
			t.Errorf("%s: allowed", name)
		}
	}
}

// TestPolicyOtherRequests: CopyFile only for the runtime's files and the
// CA's; SetPolicy, UpdateEphemeralMounts and exec refused; logs only
// with --allow-logs; realistic inputs, so that each answer could differ.
func TestPolicyOtherRequests(t *testing.T) {
	p := webPolicy(t, nil)
	ca := shared + bundleID + "-ce23cfeb91e75aaa-trustbound-ca"
	const ts = "..2026_11_27_13_00_00.123456789"
	// copyReq is a CopyFileRequest as the agent hands it to the policy:
	// the file type (and the same type in file_mode's S_IFMT bits), and
	// a symbolic link's target.
	copyReq := func(typ, path, target string) map[string]any {
		mode := map[string]int{"Regular": 0o100644, "Directory": 0o40755, "Symlink": 0o120777}[typ]
		r := map[string]any{"container_id": bundleID, "path": path, "file_type": typ, "file_size": 211, "file_mode": mode,
			"dir_mode": 0o755, "uid": 0, "gid": 0, "offset": 0, "data": "MTI3LjAuMC4x"}
		if typ == "Symlink" {
			r["symlink_target"] = target
		}
		return r
	}
	type copyCase struct{ typ, path, target string }
	copyOK := []copyCase{
		{"Regular", shared + bundleID + "-ce23cfeb91e75aaa-resolv.conf", ""},
		{"Regular", shared + bundleID + "-ce23cfeb91e75aaa-hosts", ""},
		{"Regular", shared + bundleID + "-ce23cfeb91e75aaa-hostname", ""},
		{"Regular", shared + bundleID + "-ce23cfeb91e75aaa-termination-log", ""},
		// The CA's ConfigMap volume as the kubelet lays it out.
		{"Directory", ca, ""},
		{"Directory", ca + "/" + ts, ""},
		{"Regular", ca + "/" + ts + "/coordinator-ca.crt", ""},
		{"Symlink", ca + "/..data", ts},
		{"Symlink", ca + "/coordinator-ca.crt", "..data/coordinator-ca.crt"},
		// ... or with its links followed.
		{"Directory", ca + "/..data", ""},
		{"Regular", ca + "/coordinator-ca.crt", ""},
		{"Regular", ca + "/..data/coordinator-ca.crt", ""},
	}
	copyRefused := []copyCase{
		{"Regular", "/etc/ssl/cert.pem", ""},
		{"Regular", "etc/ssl/cert.pem", ""},
		{"Regular", "..", ""},
		{"Regular", shared + bundleID + "/rootfs/bin/sh", ""},
		{"Regular", "/run/kata-containers/" + bundleID + "/rootfs/bin/sh", ""},
		{"Regular", shared + bundleID + "-ce23cfeb91e75aaa-foo", ""},
		{"Regular", shared + bundleID + "-ce23cfeb91e75aaa-settings/key", ""},
		{"Regular", ca + "/..", ""},
		{"Regular", ca + "/../../../../etc/ssl/cert.pem", ""},
		{"Regular", ca + "/a/b/c", ""},
		{"Regular", shared + bundleID + "-ce23cfeb91e75aaa-hosts/../../x", ""},
		// The reviewer's bypasses: a link at the volume (or at a runtime
		// file) to anywhere, then writes through it; a directory and a
		// program in the volume for a guest hook.
		{"Symlink", shared + strings.Repeat("f", 64) + "-0123456789abcdef-trustbound-ca", "/run/kata-containers/sandbox/ephemeral/trustbound"},
		{"Regular", shared + strings.Repeat("f", 64) + "-0123456789abcdef-trustbound-ca/tls.key", ""},
		{"Directory", shared + strings.Repeat("f", 64) + "-0123456789abcdef-trustbound-ca/prestart", ""},
		{"Regular", shared + strings.Repeat("f", 64) + "-0123456789abcdef-trustbound-ca/prestart/x", ""},
		{"Symlink", shared + strings.Repeat("f", 64) + "-0123456789abcdef-hosts", "/"},
		{"Symlink", ca + "/..data", "/run/kata-containers/" + bundleID + "/rootfs"},
		// Links only in the volume, relative, without . or ..
		{"Symlink", ca + "/..data", "../" + ts},
		{"Symlink", ca + "/..data", "./" + ts},
		{"Symlink", ca + "/..data", ts + "/../.."},
		{"Symlink", ca + "/..data", ""},
		{"Symlink", ca + "/..data", ts + "//x"},
		{"Symlink", ca + "/" + ts + "/coordinator-ca.crt", "x"},
		{"Symlink", ca + "/other", ts},
		{"Symlink", shared + bundleID + "-ce23cfeb91e75aaa-resolv.conf", "x"},
		// Directories only where the volume needs them; no other files.
		{"Directory", shared + bundleID + "-ce23cfeb91e75aaa-hosts", ""},
		{"Directory", ca + "/" + ts + "/sub", ""},
		{"Directory", ca + "/sub", ""},
		{"Regular", ca, ""},
		{"Regular", ca + "/" + ts + "/other.crt", ""},
		{"Regular", ca + "/" + ts + "/sub/coordinator-ca.crt", ""},
		// Other types.
		{"Fifo", ca + "/coordinator-ca.crt", ""},
		{"", ca + "/coordinator-ca.crt", ""},
	}
	for _, c := range copyOK {
		if ok, _ := decide(t, p, "CopyFileRequest", copyReq(c.typ, c.path, c.target), nil); !ok {
			t.Errorf("CopyFile %s %s (%q) refused", c.typ, c.path, c.target)
		}
	}
	for _, c := range copyRefused {
		if ok, _ := decide(t, p, "CopyFileRequest", copyReq(c.typ, c.path, c.target), nil); ok {
			t.Errorf("CopyFile %s %s (%q) allowed", c.typ, c.path, c.target)
		}
	}
	// The file type in file_mode must be file_type's; without file_type
	// nothing is copied.
	for name, r := range map[string]map[string]any{
		"a link disguised as a file": copyReq("Regular", ca+"/coordinator-ca.crt", ""),
		"a file disguised as a dir":  copyReq("Directory", ca+"/"+ts, ""),
		"no file_type, regular mode": copyReq("Regular", shared+bundleID+"-ce23cfeb91e75aaa-hosts", ""),
		"a mode without a file type": copyReq("Regular", shared+bundleID+"-ce23cfeb91e75aaa-hosts", ""),
	} {
		switch name {
		case "a link disguised as a file":
			r["file_mode"], r["data"] = 0o120777, "L2V0Yw=="
		case "a file disguised as a dir":
			r["file_mode"] = 0o100644
		case "no file_type, regular mode":
			delete(r, "file_type")
		case "a mode without a file type":
			r["file_mode"] = 0o644
		}
		if ok, _ := decide(t, p, "CopyFileRequest", r, nil); ok {
			t.Errorf("CopyFile %s: allowed", name)
		}
	}

	refused := map[string]map[string]any{
		"SetPolicyRequest":             {"policy": "package agent_policy\ndefault CreateContainerRequest := true\n"},
		"ExecProcessRequest":           {"container_id": bundleID, "exec_id": "e1", "process": map[string]any{"Args": []any{"/bin/sh"}, "Env": []any{}, "Cwd": "/"}},
		"ReadStreamRequest":            {"container_id": bundleID, "exec_id": bundleID, "len": 32768},
		"UpdateEphemeralMountsRequest": {"storages": []any{}},
		"UpdateContainerRequest":       {"container_id": bundleID, "resources": map[string]any{}},
		"WriteStreamRequest":           {"container_id": bundleID, "exec_id": bundleID, "data": "ZWNobwo="},
	}
	for _, rule := range slices.Sorted(maps.Keys(refused)) {
		if ok, _ := decide(t, p, rule, refused[rule], nil); ok {
			t.Errorf("%s allowed", rule)
		}
	}
	if ok, _ := decide(t, p, "StartContainerRequest", map[string]any{"container_id": bundleID}, nil); !ok {
		t.Error("StartContainerRequest refused")
	}

	// --allow-logs and --allow-exec change exactly their rule.
	logs := webPolicy(t, func(o *deploy.Options) { o.AllowLogs = true })
	if ok, _ := decide(t, logs, "ReadStreamRequest", refused["ReadStreamRequest"], nil); !ok {
		t.Error("--allow-logs does not allow ReadStream")
	}
	exec := webPolicy(t, func(o *deploy.Options) { o.AllowExec = true })
	if ok, _ := decide(t, exec, "ExecProcessRequest", refused["ExecProcessRequest"], nil); !ok {
		t.Error("--allow-exec does not allow exec")
	}
	if !strings.Contains(string(exec), "# !!! EXEC ALLOWED (trustbound deploy --allow-exec) !!!\n") {
		t.Error("the exec escape hatch is not visible in the policy")
	}
	if !strings.Contains(string(p), "# Exec is denied") {
		t.Error("the policy does not say that exec is denied")
	}
}

// sandboxRequest is a CreateSandboxRequest as the Kata runtime sends it
// for a CoCo runtime class (shared_fs=none): the sandbox's /dev/shm is
// its only storage.
func sandboxRequest() map[string]any {
	return map[string]any{
		"hostname": "", "dns": []any{}, "sandbox_id": sandboxID, "sandbox_pidns": false, "guest_hook_path": "",
		"kernel_modules": []any{}, "dns_search": []any{},
		"storages": []any{map[string]any{"driver": "ephemeral", "driver_options": []any{}, "source": "shm", "fstype": "tmpfs",
			"options": []any{"noexec", "nosuid", "nodev", "mode=1777", "size=67108864"}, "mount_point": "/run/kata-containers/sandbox/shm", "fs_group": nil}},
	}
}

// TestPolicyCreateSandbox: the sandbox as the runtime creates it is
// allowed; guest hooks, kernel modules, a shared PID namespace and any
// storage but /dev/shm are refused (the reviewer's csb.json, one hole at
// a time and all at once).
func TestPolicyCreateSandbox(t *testing.T) {
	p := webPolicy(t, nil)
	if ok, _ := decide(t, p, "CreateSandboxRequest", sandboxRequest(), nil); !ok {
		t.Fatal("the sandbox is refused")
	}
	for name, mut := range map[string]func(map[string]any){
		"no storages":       func(in map[string]any) { in["storages"] = []any{} },
		"defaults left out": func(in map[string]any) { clear(in) },
		"null hook path":    func(in map[string]any) { in["guest_hook_path"] = nil },
		"larger /dev/shm": func(in map[string]any) {
			in["storages"].([]any)[0].(map[string]any)["options"].([]any)[4] = "size=134217728"
		},
		"fs_group absent (shm)": func(in map[string]any) { delete(in["storages"].([]any)[0].(map[string]any), "fs_group") },
	} {
		in := sandboxRequest()
		mut(in)
		if ok, _ := decide(t, p, "CreateSandboxRequest", in, nil); !ok {
			t.Errorf("%s: refused", name)
		}
	}
	caDir := shared + strings.Repeat("f", 64) + "-0123456789abcdef-trustbound-ca"
	kataShared := map[string]any{"driver": "virtio-fs", "source": "kataShared", "fstype": "virtiofs", "mount_point": shared, "options": []any{}}
	for name, mut := range map[string]func(map[string]any){
		"guest hook path": func(in map[string]any) { in["guest_hook_path"] = caDir },
		"kernel module": func(in map[string]any) {
			in["kernel_modules"] = []any{map[string]any{"name": "evil", "parameters": []any{}}}
		},
		"kernel module (name)": func(in map[string]any) { in["kernel_modules"] = []any{"evil"} },
		"shared PID namespace": func(in map[string]any) { in["sandbox_pidns"] = true },
		"kataShared virtio-fs over the shared directory": func(in map[string]any) {
			in["storages"] = append(in["storages"].([]any), kataShared)
		},
		"host disk over a container's root": func(in map[string]any) {
			in["storages"] = append(in["storages"].([]any), map[string]any{"driver": "blk", "source": "0000:00:02.0", "fstype": "ext4",
				"mount_point": "/run/kata-containers/" + bundleID + "/rootfs", "options": []any{}})
		},
		"tmpfs over the agent's directory": func(in map[string]any) {
			in["storages"] = append(in["storages"].([]any), map[string]any{"driver": "ephemeral", "source": "tmpfs", "fstype": "tmpfs",
				"mount_point": "/run/kata-containers/sandbox/ephemeral/trustbound", "options": []any{}})
		},
		"shm elsewhere": func(in map[string]any) {
			in["storages"].([]any)[0].(map[string]any)["mount_point"] = "/run/kata-containers/sandbox/ephemeral/trustbound"
		},
		"shm without noexec": func(in map[string]any) {
			in["storages"].([]any)[0].(map[string]any)["options"] = []any{"nosuid", "nodev", "mode=1777", "size=67108864"}
		},
		"shm with driver options": func(in map[string]any) {
			in["storages"].([]any)[0].(map[string]any)["driver_options"] = []any{"x=y"}
		},
		"shm with fs_group": func(in map[string]any) {
			in["storages"].([]any)[0].(map[string]any)["fs_group"] = map[string]any{"group_id": 0}
		},
		"reviewer's csb.json": func(in map[string]any) {
			clear(in)
			in["hostname"], in["dns"], in["sandbox_id"] = "x", []any{}, "x"
			in["storages"] = []any{kataShared}
			in["sandbox_pidns"], in["guest_hook_path"], in["kernel_modules"] = true, caDir, []any{"evil"}
		},
	} {
		in := sandboxRequest()
		mut(in)
		if ok, _ := decide(t, p, "CreateSandboxRequest", in, nil); ok {
			t.Errorf("%s: allowed", name)
		}
	}
	if !strings.Contains(string(p), "# Lifecycle requests that reveal nothing inside the pod. (CreateSandbox is\n# not one of them") ||
		strings.Contains(string(p), "default CreateSandboxRequest := true") {
		t.Error("CreateSandbox is still among the requests allowed by default")
	}
}

// TestPolicySupplementalGroups: the pod's supplementalGroups are the only
// supplementary groups besides the primary one.
func TestPolicySupplementalGroups(t *testing.T) {
	pod := strings.Replace(string(readTestdata(t, "pod-web.yaml")), "        runAsNonRoot: true\n",
		"        runAsNonRoot: true\n        supplementalGroups: [4000, 3000]\n", 1)
	p := webPolicy(t, func(o *deploy.Options) { o.Pod = []byte(pod) })
	state := map[string]any{"sandbox_id": sandboxID}
	for _, tc := range []struct {
		gids    []any
		allowed bool
	}{
		{[]any{0, 3000, 4000}, true},
		{[]any{4000}, true},
		{[]any{}, true},
		{[]any{0, 3000, 4000, 5000}, false},
		{[]any{1000}, false},
	} {
		in := webInput()
		in["OCI"].(map[string]any)["Process"].(map[string]any)["User"].(map[string]any)["AdditionalGids"] = tc.gids
		if ok, _ := decide(t, p, "CreateContainerRequest", in, state); ok != tc.allowed {
			t.Errorf("AdditionalGids %v: allowed %v, want %v", tc.gids, ok, tc.allowed)
		}
	}
}
