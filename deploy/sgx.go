package deploy

import (
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/trustbound/trustbound/manifest"
)

// SGX resources and paths.
const (
	// EPCResource is the Intel SGX device plugin's enclave page cache resource.
	EPCResource corev1.ResourceName = "sgx.intel.com/epc"
	// EnclaveResource is the Intel SGX device plugin's /dev/sgx_enclave,
	// requested explicitly (rather than injected by Intel's SGX admission
	// webhook). /dev/sgx_provision (sgx.intel.com/provision) is not
	// requested: quoting is out of process, in the node's AESM, which
	// holds it.
	EnclaveResource corev1.ResourceName = "sgx.intel.com/enclave"
	// DefaultEPC is each container's EPC request when none is given.
	DefaultEPC  = "64Mi"
	aesmdPath   = "/var/run/aesmd"
	aesmdVolume = "aesmd-socket"
)

// The environment an enclave-aware container gets. The values come from
// outside the enclave: they are hints (where to reach the coordinator),
// never trust anchors.
const (
	EnvCoordinator = "TRUSTBOUND_COORDINATOR"
	EnvCA          = "TRUSTBOUND_CA"
	EnvWorkload    = "TRUSTBOUND_WORKLOAD"
)

// genSGX wires an enclave-aware container. The agent runs in-process,
// inside the enclave (the enclave library's Start): only the enclave is
// inside the boundary, so an init container, or any file outside the
// enclave, would put the workload's keys and secrets outside it. Each
// application container requests EPC, reaches the AESM service for
// out-of-process quoting through /var/run/aesmd (SGX_AESM_ADDR=1) and is
// told where the coordinator is.
func genSGX(w *manifest.Workload, o Options) (*Result, error) {
	epc := o.EPC
	if epc == "" {
		epc = DefaultEPC
	}
	q, err := resource.ParseQuantity(epc)
	if err != nil || q.Sign() <= 0 {
		return nil, fmt.Errorf("deploy: EPC %q: want a positive quantity such as 64Mi", epc)
	}
	in, err := appPod(w, o)
	if err != nil {
		return nil, err
	}
	spec := in.Spec.DeepCopy()
	if err := checkReserved(spec); err != nil {
		return nil, err
	}
	if slices.ContainsFunc(spec.Volumes, func(v corev1.Volume) bool { return v.Name == aesmdVolume }) {
		return nil, fmt.Errorf("pod spec: volume name %q is trustbound's; rename it", aesmdVolume)
	}
	spec.AutomountServiceAccountToken = ptr(false)
	spec.EnableServiceLinks = ptr(false)
	spec.Volumes = append(spec.Volumes,
		corev1.Volume{Name: aesmdVolume, VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{
			Path: aesmdPath, Type: ptr(corev1.HostPathDirectory)}}},
		caVolumeOf(w),
	)
	add := []corev1.EnvVar{
		{Name: "SGX_AESM_ADDR", Value: "1"},
		{Name: EnvCoordinator, Value: o.Coordinator},
		{Name: EnvCA, Value: caMountPath + "/" + caKey},
		{Name: EnvWorkload, Value: w.Name},
	}
	for i := range spec.Containers {
		c := &spec.Containers[i]
		for _, e := range c.Env {
			if slices.ContainsFunc(add, func(a corev1.EnvVar) bool { return a.Name == e.Name }) {
				return nil, fmt.Errorf("pod spec: container %s sets %s, which trustbound sets", c.Name, e.Name)
			}
		}
		for _, m := range c.VolumeMounts {
			if m.MountPath == aesmdPath {
				return nil, fmt.Errorf("pod spec: container %s mounts %s, which trustbound mounts", c.Name, aesmdPath)
			}
		}
		c.Env = append(c.Env, add...)
		c.VolumeMounts = append(c.VolumeMounts,
			corev1.VolumeMount{Name: aesmdVolume, MountPath: aesmdPath},
			corev1.VolumeMount{Name: caVolume, MountPath: caMountPath, ReadOnly: true},
		)
		if c.Resources.Requests == nil {
			c.Resources.Requests = corev1.ResourceList{}
		}
		if c.Resources.Limits == nil {
			c.Resources.Limits = corev1.ResourceList{}
		}
		c.Resources.Requests[EPCResource] = q.DeepCopy()
		c.Resources.Limits[EPCResource] = q.DeepCopy()
		c.Resources.Requests[EnclaveResource] = resource.MustParse("1")
		c.Resources.Limits[EnclaveResource] = resource.MustParse("1")
	}
	y, err := objects(w, o, in, spec, nil)
	if err != nil {
		return nil, err
	}
	header := fmt.Sprintf(`# trustbound deploy: %s (%s on sgx), an enclave-aware container.
# Each container requests %s of %s and one %s (the device
# /dev/sgx_enclave from Intel's SGX device plugin, requested here rather
# than injected by its admission webhook), and quotes through the node's AESM
# service (%s, SGX_AESM_ADDR=1), which holds /dev/sgx_provision: the pod does
# not request sgx.intel.com/provision. The trustbound agent runs inside the
# enclave (the enclave library), which attests to %s and keeps the
# workload's key and secrets in enclave memory: nothing is written to disk.
# %s and %s are hints from outside the enclave; the enclave must
# pin the coordinator's CA in its measured code.
`, w.Name, w.Model, epc, EPCResource, EnclaveResource, aesmdPath, o.Coordinator, EnvCoordinator, EnvCA)
	var images []string
	for _, c := range append(slices.Clone(spec.InitContainers), spec.Containers...) {
		images = append(images, c.Image)
	}
	notes := imageNotes(images)
	if len(o.Pod) == 0 {
		notes = append(notes, "no --pod given: the application container is a placeholder ("+in.Spec.Containers[0].Image+", command /"+w.Name+")")
	}
	return &Result{Files: []File{{Name: "kubernetes.yaml", Data: append([]byte(header), y...)}}, Notes: notes}, nil
}
