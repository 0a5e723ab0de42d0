# Kata agent policy of the quickstart's "web" pod.
#
# The Kata agent inside the pod VM asks this policy before it serves each
# request from the host. The policy is inside the pod's trust boundary: its
# SHA-256 is the pod's hostData (SNP HOST_DATA), so a host that changes it
# changes the attested identity of the pod. Everything the host may do to
# the pod is allowed here; everything else is denied.
package agent_policy

import rego.v1

# Deny by default.
default CreateContainerRequest := false
default ExecProcessRequest := false
default ReadStreamRequest := false
default SetPolicyRequest := false
default CopyFileRequest := false
default UpdateContainerRequest := false

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
default UpdateInterfaceRequest := true
default UpdateRoutesRequest := true
default ListInterfacesRequest := true
default ListRoutesRequest := true

# Writes to the container's stdin are allowed; reads of its output are not
# (ReadStreamRequest above): logs stay in the pod.
default WriteStreamRequest := true
default CloseStdinRequest := true
default TtyWinResizeRequest := true

# The pause container of the sandbox.
CreateContainerRequest if {
	input.OCI.Annotations["io.kubernetes.cri.container-type"] == "sandbox"
	input.OCI.Process.Args == ["/pause"]
}

# The one application container, with exactly this command line and no
# terminal, running as a non-root user. (A production policy also pins the
# image by digest and its layers, as genpolicy does; the quickstart pins
# the name only.)
CreateContainerRequest if {
	input.OCI.Annotations["io.kubernetes.cri.container-type"] == "container"
	input.OCI.Annotations["io.kubernetes.cri.container-name"] == "web"
	input.OCI.Annotations["io.kubernetes.cri.image-name"] == "ghcr.io/trustbound/quickstart-web:v1"
	input.OCI.Process.Args == ["/web", "--listen=:8443", "--agent=unix:///run/trustbound/agent.sock"]
	not input.OCI.Process.Terminal
	input.OCI.Process.User.UID != 0
	every e in input.OCI.Process.Env {
		allowed_env(e)
	}
}

allowed_env(e) if startswith(e, "PATH=")
allowed_env(e) if startswith(e, "HOSTNAME=")
allowed_env(e) if e == "TRUSTBOUND_WORKLOAD=web"
