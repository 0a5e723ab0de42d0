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

// ociBase is the part of a CreateContainerRequest's OCI spec shared by the
// sandbox and the containers, for bundle id.
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
			"Devices":       []any{},
			"Namespaces":    []any{map[string]any{"Path": "", "Type": "ipc"}, map[string]any{"Path": "", "Type": "uts"}, map[string]any{"Path": "", "Type": "mount"}},
			"MaskedPaths":   []any{"/proc/acpi", "/proc/kcore", "/proc/keys", "/sys/firmware"},
			"ReadonlyPaths": []any{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"},
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
			map[string]any{"driver": "image_guest_pull", "driver_options": []any{}, "fs_group": nil, "fstype": "overlay",
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
	return map[string]any{
		"container_id": sandboxID,
		"OCI":          oci,
		"storages": []any{
			map[string]any{"driver": "ephemeral", "driver_options": []any{}, "fs_group": nil, "fstype": "tmpfs", "source": "shm",
				"mount_point": "/run/kata-containers/sandbox/shm", "options": []any{"noexec", "nosuid", "nodev", "mode=1777", "size=67108864"}},
			map[string]any{"driver": "image_guest_pull", "driver_options": []any{}, "fs_group": nil, "fstype": "overlay", "source": "pause",
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

	// Also allowed: the same image digest from a mirror; no Hooks at all;
	// capabilities dropped from effective and permitted.
	for name, mut := range map[string]func(map[string]any){
		"mirror with the same digest": func(in map[string]any) {
			storages(in)[0].(map[string]any)["source"] = "mirror.example.test/web@sha256:4b1f9cc9e6e5b9d8f1a2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718"
		},
		"hooks absent":      func(in map[string]any) { delete(oci(in), "Hooks") },
		"empty hooks":       func(in map[string]any) { oci(in)["Hooks"] = map[string]any{"Prestart": []any{}, "Poststart": nil} },
		"no effective caps": func(in map[string]any) { caps(in)["Effective"] = []any{} },
		"new pid namespace": func(in map[string]any) {
			oci(in)["Linux"].(map[string]any)["Namespaces"] = append(oci(in)["Linux"].(map[string]any)["Namespaces"].([]any), map[string]any{"Path": "", "Type": "pid"})
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
}

// TestPolicySandbox: the pause container is pinned and allowed once; an
// impostor with the sandbox's annotation and /pause is refused.
func TestPolicySandbox(t *testing.T) {
	p := webPolicy(t, nil)
	ok, ops := decide(t, p, "CreateContainerRequest", sandboxInput(), map[string]any{})
	want := []any{map[string]any{"op": "add", "path": "/pstate/sandbox_id", "value": sandboxID}}
	if !ok || !jsonEqual(t, ops, want) {
		t.Fatalf("the pause container: %v, ops %v; want allowed, ops %v", ok, ops, want)
	}
	if ok, _ := decide(t, p, "CreateContainerRequest", sandboxInput(), map[string]any{"sandbox_id": sandboxID}); ok {
		t.Error("a second sandbox is allowed")
	}
	oci := func(in map[string]any) map[string]any { return in["OCI"].(map[string]any) }
	proc := func(in map[string]any) map[string]any { return oci(in)["Process"].(map[string]any) }
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
	copyOK := []string{
		shared + bundleID + "-ce23cfeb91e75aaa-resolv.conf",
		shared + bundleID + "-ce23cfeb91e75aaa-hosts",
		shared + bundleID + "-ce23cfeb91e75aaa-hostname",
		shared + bundleID + "-ce23cfeb91e75aaa-termination-log",
		shared + bundleID + "-ce23cfeb91e75aaa-trustbound-ca",
		shared + bundleID + "-ce23cfeb91e75aaa-trustbound-ca/..data",
		shared + bundleID + "-ce23cfeb91e75aaa-trustbound-ca/..2026_11_27_13_00_00.123456789/coordinator-ca.crt",
		shared + bundleID + "-ce23cfeb91e75aaa-trustbound-ca/coordinator-ca.crt",
	}
	copyRefused := []string{
		"/etc/ssl/cert.pem",
		"etc/ssl/cert.pem",
		"..",
		shared + bundleID + "/rootfs/bin/sh",
		"/run/kata-containers/" + bundleID + "/rootfs/bin/sh",
		shared + bundleID + "-ce23cfeb91e75aaa-foo",
		shared + bundleID + "-ce23cfeb91e75aaa-settings/key",
		shared + bundleID + "-ce23cfeb91e75aaa-trustbound-ca/..",
		shared + bundleID + "-ce23cfeb91e75aaa-trustbound-ca/../../../../etc/ssl/cert.pem",
		shared + bundleID + "-ce23cfeb91e75aaa-trustbound-ca/a/b/c",
		shared + bundleID + "-ce23cfeb91e75aaa-hosts/../../x",
	}
	copyReq := func(path string) map[string]any {
		return map[string]any{"container_id": bundleID, "path": path, "file_size": 211, "file_mode": 33188, "dir_mode": 493, "uid": 0, "gid": 0, "offset": 0, "data": "MTI3LjAuMC4x"}
	}
	for _, path := range copyOK {
		if ok, _ := decide(t, p, "CopyFileRequest", copyReq(path), nil); !ok {
			t.Errorf("CopyFile %s refused", path)
		}
	}
	for _, path := range copyRefused {
		if ok, _ := decide(t, p, "CopyFileRequest", copyReq(path), nil); ok {
			t.Errorf("CopyFile %s allowed", path)
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
