package deploy

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/trustbound/trustbound/attest"
	"github.com/trustbound/trustbound/initdata"
	"github.com/trustbound/trustbound/manifest"
)

// AKSRuntimeClass is the runtime class of confidential containers on AKS,
// which deploy refuses: AKS pulls images on the host and hands the guest
// dm-verity protected tar layers with the root under the shared
// directory, storage shapes the generated policy does not model (it
// allows guest-pulled images only, so every container would be denied).
const AKSRuntimeClass = "kata-cc-isolation"

// Kubernetes names and paths of the agent wiring.
const (
	agentContainer = "trustbound-agent"
	agentVolume    = "trustbound"
	caVolume       = "trustbound-ca"
	caMountPath    = "/etc/trustbound"
	caKey          = "coordinator-ca.crt"
	podBinary      = "/usr/local/bin/trustbound"
	nameLabel      = "app.kubernetes.io/name"
	defaultUID     = 65532
)

// runtimeClasses are the upstream Kata runtime classes per TEE.
var runtimeClasses = map[attest.TEE]string{
	attest.SEVSNP: "kata-qemu-snp",
	attest.TDX:    "kata-qemu-tdx",
}

// appPod is the application pod: the user's, or the default one.
func appPod(w *manifest.Workload, o Options) (*PodInput, error) {
	if len(o.Pod) > 0 {
		return ParsePod(o.Pod)
	}
	image := o.Image
	if image == "" {
		image = "ghcr.io/trustbound/" + w.Name + ":latest"
	}
	uid := int64(defaultUID)
	return &PodInput{
		Kind: "Deployment",
		Meta: metav1.ObjectMeta{Name: w.Name},
		Spec: corev1.PodSpec{
			SecurityContext: &corev1.PodSecurityContext{RunAsUser: &uid, RunAsNonRoot: ptr(true)},
			Containers: []corev1.Container{{
				Name:    w.Name,
				Image:   image,
				Command: []string{"/" + w.Name},
			}},
		},
	}, nil
}

func ptr[T any](v T) *T { return &v }

// checkReserved refuses a pod spec that uses trustbound's names or paths.
func checkReserved(spec *corev1.PodSpec) error {
	for _, v := range spec.Volumes {
		if v.Name == agentVolume || v.Name == caVolume {
			return fmt.Errorf("pod spec: volume name %q is trustbound's; rename it", v.Name)
		}
	}
	for _, c := range append(slices.Clone(spec.InitContainers), spec.Containers...) {
		if c.Name == agentContainer {
			return fmt.Errorf("pod spec: container name %q is trustbound's; rename it", c.Name)
		}
		for _, m := range c.VolumeMounts {
			if m.MountPath == AgentDir || m.MountPath == caMountPath {
				return fmt.Errorf("pod spec: container %s mounts %s, which is trustbound's", c.Name, m.MountPath)
			}
		}
	}
	return nil
}

func caVolumeOf(w *manifest.Workload) corev1.Volume {
	return corev1.Volume{Name: caVolume, VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
		LocalObjectReference: corev1.LocalObjectReference{Name: caConfigMapName(w)}}}}
}

// wireKata adds the trustbound pieces to the application's pod spec: the
// memory-backed /run/trustbound volume (read-only in every application
// container), the coordinator CA volume, and the agent as the first init
// container.
func wireKata(in *PodInput, w *manifest.Workload, o Options, agentImage string) (*corev1.PodSpec, error) {
	spec := in.Spec.DeepCopy()
	if err := checkReserved(spec); err != nil {
		return nil, err
	}
	spec.AutomountServiceAccountToken = ptr(false)
	spec.EnableServiceLinks = ptr(false)
	spec.Volumes = append(spec.Volumes,
		corev1.Volume{Name: agentVolume, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{
			Medium: corev1.StorageMediumMemory, SizeLimit: ptr(resource.MustParse("16Mi"))}}},
		caVolumeOf(w),
	)
	for i := range spec.Containers {
		c := &spec.Containers[i]
		c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: agentVolume, MountPath: AgentDir, ReadOnly: true})
	}
	args := agentArgs(podBinary, caMountPath+"/"+caKey, w, o)
	agent := corev1.Container{
		Name:       agentContainer,
		Image:      agentImage,
		Command:    args[:1],
		Args:       args[1:],
		WorkingDir: "/",
		VolumeMounts: []corev1.VolumeMount{
			{Name: caVolume, MountPath: caMountPath, ReadOnly: true},
			{Name: agentVolume, MountPath: AgentDir},
		},
		SecurityContext: &corev1.SecurityContext{
			AllowPrivilegeEscalation: ptr(false),
			ReadOnlyRootFilesystem:   ptr(true),
			Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
		},
	}
	spec.InitContainers = append([]corev1.Container{agent}, spec.InitContainers...)
	return spec, nil
}

func caConfigMapName(w *manifest.Workload) string { return w.Name + "-trustbound-ca" }

// objects marshals the CA ConfigMap and the pod (as a Deployment or a Pod)
// as one multi-document YAML file.
func objects(w *manifest.Workload, o Options, in *PodInput, spec *corev1.PodSpec, annotations map[string]string) ([]byte, error) {
	name := in.Meta.Name
	if name == "" {
		name = w.Name
	}
	ns := o.Namespace
	if ns == "" {
		ns = in.Meta.Namespace
	}
	labels := maps.Clone(in.Meta.Labels)
	if len(labels) == 0 {
		labels = map[string]string{nameLabel: w.Name}
	}
	ann := maps.Clone(in.Meta.Annotations)
	if ann == nil {
		ann = map[string]string{}
	}
	maps.Copy(ann, annotations)
	if len(ann) == 0 {
		ann = nil
	}
	cm := &corev1.ConfigMap{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: metav1.ObjectMeta{Name: caConfigMapName(w), Namespace: ns, Labels: map[string]string{nameLabel: w.Name}},
		Data:       map[string]string{caKey: string(o.CAPEM)},
	}
	podMeta := metav1.ObjectMeta{Labels: labels, Annotations: ann}
	var obj any
	if o.AsPod {
		podMeta.Name, podMeta.Namespace = name, ns
		obj = &corev1.Pod{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"}, ObjectMeta: podMeta, Spec: *spec}
	} else {
		replicas := in.Replicas
		if replicas == nil {
			replicas = ptr(int32(1))
		}
		obj = &appsv1.Deployment{
			TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: maps.Clone(labels)},
			Spec: appsv1.DeploymentSpec{
				Replicas: replicas,
				Selector: &metav1.LabelSelector{MatchLabels: maps.Clone(labels)},
				Template: corev1.PodTemplateSpec{ObjectMeta: podMeta, Spec: *spec},
			},
		}
	}
	var b bytes.Buffer
	for i, v := range []any{cm, obj} {
		y, err := yaml.Marshal(v)
		if err != nil {
			return nil, fmt.Errorf("deploy: marshal: %w", err)
		}
		if i > 0 {
			b.WriteString("---\n")
		}
		b.Write(y)
	}
	return b.Bytes(), nil
}

// checkAgentImage requires the agent image by digest: the agent is the
// pod's trust anchor for the coordinator, so its code must be pinned.
func checkAgentImage(img string) error {
	if img == "" {
		return errors.New("deploy: no agent image: give --agent-image REPO@sha256:DIGEST, the trustbound image (with /usr/local/bin/trustbound) pinned by digest")
	}
	if !imageDigest.MatchString(img) || strings.HasPrefix(img, "@") {
		return fmt.Errorf("deploy: agent image %q is not pinned by digest: give REPO@sha256:<64 hex digits> (a tag lets whoever controls the registry choose the agent's code)", img)
	}
	return nil
}

func genKata(w *manifest.Workload, o Options) (*Result, error) {
	if err := checkAgentImage(o.AgentImage); err != nil {
		return nil, err
	}
	in, err := appPod(w, o)
	if err != nil {
		return nil, err
	}
	spec, err := wireKata(in, w, o, o.AgentImage)
	if err != nil {
		return nil, err
	}
	rc := o.RuntimeClass
	if rc == "" {
		rc = runtimeClasses[w.TEE]
	}
	if in.Spec.RuntimeClassName != nil && o.RuntimeClass == "" {
		rc = *in.Spec.RuntimeClassName
	}
	if !strings.HasPrefix(rc, "kata") {
		return nil, fmt.Errorf("deploy: runtime class %q is not a Kata runtime class; a confidential container needs one (kata-qemu-snp, kata-qemu-tdx)", rc)
	}
	if rc == AKSRuntimeClass {
		return nil, fmt.Errorf("deploy: runtime class %s is not supported yet: AKS's host-pulled dm-verity layers are not modelled by the agent policy (it would deny every container); use an upstream CoCo runtime class (%s for %s)", rc, runtimeClasses[w.TEE], w.TEE)
	}
	spec.RuntimeClassName = &rc
	name := in.Meta.Name
	if name == "" {
		name = w.Name
	}
	policy, err := PolicyFor(spec, PolicyOptions{
		Workload: w.Name, PodName: name, Deployment: !o.AsPod, CAConfigMap: caConfigMapName(w),
		AllowExec: o.AllowExec, AllowLogs: o.AllowLogs,
	})
	if err != nil {
		return nil, fmt.Errorf("deploy: %w", err)
	}
	alg, err := initdata.AlgorithmFor(w.TEE)
	if err != nil {
		return nil, fmt.Errorf("deploy: %w", err)
	}
	doc, err := initdata.Document(alg, map[string]string{initdata.PolicyFile: string(policy)})
	if err != nil {
		return nil, fmt.Errorf("deploy: %w", err)
	}
	hd, err := initdata.Bound(w.TEE, alg, doc)
	if err != nil {
		return nil, fmt.Errorf("deploy: %w", err)
	}
	v, err := initdata.Annotation(doc)
	if err != nil {
		return nil, fmt.Errorf("deploy: %w", err)
	}
	ann := map[string]string{initdata.AnnotationKey: v}
	field := "SNP HOST_DATA"
	if w.TEE == attest.TDX {
		field = "TDX MRCONFIGID"
	}
	how := fmt.Sprintf("# The agent policy (policy.rego) is the %q entry of the init-data\n# document initdata.toml, which travels gzip'ed and base64 in\n# %s; Kata puts its %s digest in %s.", initdata.PolicyFile, initdata.AnnotationKey, alg, field)
	files := []File{{Name: "kubernetes.yaml"}, {Name: "policy.rego", Data: policy}, {Name: "initdata.toml", Data: doc}}
	y, err := objects(w, o, in, spec, ann)
	if err != nil {
		return nil, err
	}
	header := fmt.Sprintf(`# trustbound deploy: %s (confidential-container on %s), runtime class %s.
%s
# The manifest must say hostData: "%s" for %s.
# The init container %s attests the pod and writes its identity and secrets
# to %s (emptyDir in memory), read-only in the application containers.
# It trusts the coordinator CA from ConfigMap %s only if its SHA-256 is
# the --ca-sha256 of its command line, which the policy pins.
`, w.Name, w.TEE, rc, how, hd, w.Name, agentContainer, AgentDir, caConfigMapName(w))
	files[0].Data = append([]byte(header), y...)
	var images []string
	for _, c := range append(slices.Clone(spec.InitContainers), spec.Containers...) {
		images = append(images, c.Image)
	}
	notes := imageNotes(images)
	if o.AllowExec {
		notes = append(notes, "EXEC IS ALLOWED: the cluster admin can run any command in the pod and read its secrets; the pinned hostData says so")
	}
	if len(o.Pod) == 0 {
		notes = append(notes, "no --pod given: the application container is a placeholder ("+in.Spec.Containers[0].Image+", command /"+w.Name+")")
	}
	notes = append(notes, "the init-data holds only policy.rego: the guest's attestation agent and CDH keep their built-in configuration (no aa.toml, cdh.toml)")
	return &Result{
		Files:    files,
		Policy:   policy,
		InitData: doc,
		HostData: hd,
		Notes:    notes,
	}, nil
}
