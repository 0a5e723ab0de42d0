package deploy

import (
	"errors"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// MaxPodSize bounds the pod spec a user gives.
const MaxPodSize = 256 << 10

// PodInput is the application part of a pod as the user wrote it.
type PodInput struct {
	// Kind is "Pod" or "Deployment", as written.
	Kind string
	// Meta is the object's (for a Deployment: its pod template's) metadata.
	Meta metav1.ObjectMeta
	// Replicas is the Deployment's replica count, nil for a Pod.
	Replicas *int32
	Spec     corev1.PodSpec
}

// ParsePod reads one Kubernetes Pod or Deployment (YAML or JSON), strictly:
// unknown and duplicate fields are refused, as is any other kind or API
// version. It does not judge whether the spec can be pinned by a policy;
// see PolicyFor.
func ParsePod(data []byte) (*PodInput, error) {
	if len(data) > MaxPodSize {
		return nil, fmt.Errorf("pod spec: %d bytes, the limit is %d", len(data), MaxPodSize)
	}
	var tm metav1.TypeMeta
	if err := yaml.Unmarshal(data, &tm); err != nil {
		return nil, fmt.Errorf("pod spec: %w", err)
	}
	switch {
	case tm.Kind == "Pod" && tm.APIVersion == "v1":
		var p corev1.Pod
		if err := yaml.UnmarshalStrict(data, &p); err != nil {
			return nil, fmt.Errorf("pod spec (Pod): %w", err)
		}
		meta := p.ObjectMeta
		return &PodInput{Kind: "Pod", Meta: meta, Spec: p.Spec}, nil
	case tm.Kind == "Deployment" && tm.APIVersion == "apps/v1":
		var d appsv1.Deployment
		if err := yaml.UnmarshalStrict(data, &d); err != nil {
			return nil, fmt.Errorf("pod spec (Deployment): %w", err)
		}
		meta := d.Spec.Template.ObjectMeta
		if meta.Name == "" {
			meta.Name = d.Name
		}
		if meta.Namespace == "" {
			meta.Namespace = d.Namespace
		}
		return &PodInput{Kind: "Deployment", Meta: meta, Replicas: d.Spec.Replicas, Spec: d.Spec.Template.Spec}, nil
	case tm.Kind == "" && tm.APIVersion == "":
		return nil, errors.New("pod spec: no kind and apiVersion: want a Pod (v1) or a Deployment (apps/v1)")
	}
	return nil, fmt.Errorf("pod spec: kind %q apiVersion %q: want a Pod (v1) or a Deployment (apps/v1)", tm.Kind, tm.APIVersion)
}
