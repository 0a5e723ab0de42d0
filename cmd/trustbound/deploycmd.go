package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/trustbound/trustbound/deploy"
	"github.com/trustbound/trustbound/manifest"
)

func cmdDeploy(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("deploy", stderr)
	var targets []string
	for _, t := range deploy.Targets() {
		targets = append(targets, string(t))
	}
	mpath := fs.String("manifest", "", "the manifest (YAML or JSON; required)")
	workload := fs.String("workload", "", "workload name in the manifest (required)")
	target := fs.String("target", "", "what to generate: "+strings.Join(targets, ", ")+" (required)")
	out := fs.String("out", "", "output directory (default deploy-<workload>)")
	coord := fs.String("coordinator", "", "coordinator URL as the workload reaches it, https://… (required)")
	caFile := fs.String("ca", "", "PEM file of the coordinator's CA, which the agent trusts (required)")
	writeManifest := fs.Bool("write-manifest", false, "kata: write the pod's hostData (the init-data digest) into the manifest file (in place; comments kept); without it, it is printed")
	var o deploy.Options
	podFile := fs.String("pod", "", "kata, sgx-container: a Kubernetes Pod or Deployment (YAML) with the application's containers (default: one placeholder container)")
	fs.StringVar(&o.Image, "image", "", "image of the default application container (default ghcr.io/trustbound/<workload>:latest)")
	kind := fs.String("kind", "deployment", "kata, sgx-container: emit a deployment or a pod")
	fs.StringVar(&o.Namespace, "namespace", "", "namespace of the Kubernetes objects")
	fs.StringVar(&o.AgentImage, "agent-image", "", "kata: image with /usr/local/bin/trustbound for the agent init container, by digest: REPO@sha256:… (required for kata)")
	fs.StringVar(&o.RuntimeClass, "runtime-class", "", "kata: runtime class (default kata-qemu-snp / kata-qemu-tdx; AKS's kata-cc-isolation is not supported yet)")
	fs.BoolVar(&o.AllowExec, "allow-exec", false, "kata: DEBUG ONLY: let the host exec into the pod (stated in the pinned policy)")
	fs.BoolVar(&o.AllowLogs, "allow-logs", false, "kata: let the host read the containers' stdout and stderr")
	fs.StringVar(&o.EPC, "epc", deploy.DefaultEPC, "sgx-container: enclave page cache per container (sgx.intel.com/epc)")
	fs.StringVar(&o.AppUnit, "app-unit", "", "cvm, azure-cvm: the application's systemd unit, started after the agent (default <workload>.service)")
	fs.StringVar(&o.BinaryURL, "binary-url", "", "cvm, azure-cvm: https URL cloud-init downloads the trustbound binary from (default: the image has it)")
	fs.StringVar(&o.BinarySHA256, "binary-sha256", "", "cvm, azure-cvm: SHA-256 (hex) the downloaded binary must have")
	fs.StringVar(&o.VMSize, "vm-size", "", "azure-cvm: VM size (default Standard_DC2as_v5 on SNP, Standard_DC2es_v5 on TDX)")
	fs.StringVar(&o.DiskEncryption, "disk-encryption", "", "azure-cvm: OS disk securityEncryptionType, DiskWithVMGuestState (default) or VMGuestStateOnly")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	switch {
	case *mpath == "":
		return usageErr("--manifest is required")
	case *workload == "":
		return usageErr("--workload is required")
	case *target == "":
		return usageErr("--target is required: one of %s", strings.Join(targets, ", "))
	case *coord == "":
		return usageErr("--coordinator is required: the URL the workload reaches the coordinator at")
	case *caFile == "":
		return usageErr("--ca is required: the coordinator's CA, which the agent trusts")
	}
	switch *kind {
	case "deployment":
	case "pod":
		o.AsPod = true
	default:
		return usageErr("--kind must be deployment or pod")
	}
	o.Target, o.Workload, o.Coordinator = deploy.Target(*target), *workload, *coord
	if *writeManifest && o.Target != deploy.Kata {
		return usageErr("--write-manifest is for --target kata, whose policy the manifest pins")
	}

	raw, err := readBounded(*mpath, manifest.MaxSize)
	if err != nil {
		return err
	}
	m, err := manifest.Parse(raw)
	if err != nil {
		return fmt.Errorf("%s: %w", *mpath, err)
	}
	if o.CAPEM, err = readBounded(*caFile, deploy.MaxCASize); err != nil {
		return err
	}
	if *podFile != "" {
		if o.Pod, err = readBounded(*podFile, deploy.MaxPodSize); err != nil {
			return err
		}
	}
	res, err := deploy.Generate(m, o)
	if err != nil {
		return err
	}

	// The manifest must be valid once this workload's hostData is the
	// generated policy's (a first deployment has none yet).
	pinned := raw
	if res.HostData != nil {
		if pinned, err = deploy.PinHostData(raw, o.Workload, res.HostData); err != nil {
			return fmt.Errorf("%s: %w", *mpath, err)
		}
	}
	pm, err := manifest.Parse(pinned)
	if err != nil {
		return fmt.Errorf("%s: %w", *mpath, err)
	}
	if err := pm.Validate(); err != nil {
		return fmt.Errorf("%s: invalid manifest:\n%w", *mpath, err)
	}

	dir := *out
	if dir == "" {
		dir = "deploy-" + o.Workload
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, f := range res.Files {
		p := filepath.Join(dir, f.Name)
		if err := os.WriteFile(p, f.Data, 0o644); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "wrote %s\n", p)
	}
	for _, n := range res.Notes {
		fmt.Fprintf(stderr, "note: %s\n", n)
	}
	if res.HostData == nil {
		return nil
	}
	w, _ := m.Workload(o.Workload)
	fmt.Fprintf(stdout, "pod hostData of %s: %s\n", o.Workload, res.HostData)
	switch {
	case bytes.Equal(w.Reference.HostData, res.HostData):
		fmt.Fprintf(stdout, "the manifest already pins it\n")
	case *writeManifest:
		if err := writeFileAtomic(*mpath, pinned); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "pinned it in %s (sign and upload it: trustbound manifest set)\n", *mpath)
	default:
		fmt.Fprintf(stdout, "the manifest pins %s; set hostData: \"%s\" for %s (or rerun with --write-manifest), or the coordinator refuses the pod\n",
			hexOrNone(w.Reference.HostData), res.HostData, o.Workload)
	}
	return nil
}

func hexOrNone(b []byte) string {
	if len(b) == 0 {
		return "no hostData"
	}
	return fmt.Sprintf("%x", b)
}

// writeFileAtomic replaces path with data, keeping its mode.
func writeFileAtomic(path string, data []byte) error {
	info, err := os.Stat(path)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	_, werr := tmp.Write(data)
	cerr := tmp.Close()
	if err := errors.Join(werr, cerr, os.Chmod(tmp.Name(), info.Mode().Perm())); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return nil
}
