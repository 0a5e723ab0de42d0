package deploy

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"regexp"

	"github.com/trustbound/trustbound/attest"
	"github.com/trustbound/trustbound/manifest"
)

// Azure confidential VM facts.
const (
	// armSchema and armVMAPI are the deployment template schema and the
	// Microsoft.Compute/virtualMachines API version written.
	armSchema = "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#"
	armVMAPI  = "2024-07-01"
	// DefaultSNPSize and DefaultTDXSize are the smallest general-purpose
	// confidential VM sizes: DCasv5 (AMD SEV-SNP) and DCesv5 (Intel TDX).
	DefaultSNPSize = "Standard_DC2as_v5"
	DefaultTDXSize = "Standard_DC2es_v5"
)

// Confidential VM sizes per TEE: DCasv5/DCadsv5/ECasv5/ECadsv5 run on SNP,
// DCesv5/DCedsv5/ECesv5/ECedsv5 on TDX.
var azureSizes = map[attest.TEE]*regexp.Regexp{
	attest.SEVSNP: regexp.MustCompile(`^Standard_[DE]C[0-9]+a(d)?s_v5$`),
	attest.TDX:    regexp.MustCompile(`^Standard_[DE]C[0-9]+e(d)?s_v5$`),
}

// The OS disk encryption types of a confidential VM; the first is the
// default: the OS disk is encrypted with a key bound to the vTPM.
var diskEncryptions = []string{"DiskWithVMGuestState", "VMGuestStateOnly"}

type armTemplate struct {
	Schema         string                  `json:"$schema"`
	ContentVersion string                  `json:"contentVersion"`
	Metadata       map[string]string       `json:"metadata"`
	Parameters     map[string]armParameter `json:"parameters"`
	Resources      []armVM                 `json:"resources"`
	Outputs        map[string]armOutput    `json:"outputs"`
}

type armParameter struct {
	Type         string            `json:"type"`
	DefaultValue any               `json:"defaultValue,omitempty"`
	Metadata     map[string]string `json:"metadata,omitempty"`
}

type armOutput struct {
	Type  string `json:"type"`
	Value string `json:"value"`
}

type armVM struct {
	Type       string            `json:"type"`
	APIVersion string            `json:"apiVersion"`
	Name       string            `json:"name"`
	Location   string            `json:"location"`
	Tags       map[string]string `json:"tags"`
	Properties armVMProperties   `json:"properties"`
}

type armVMProperties struct {
	HardwareProfile struct {
		VMSize string `json:"vmSize"`
	} `json:"hardwareProfile"`
	SecurityProfile armSecurityProfile `json:"securityProfile"`
	StorageProfile  armStorageProfile  `json:"storageProfile"`
	OSProfile       armOSProfile       `json:"osProfile"`
	NetworkProfile  struct {
		NetworkInterfaces []struct {
			ID string `json:"id"`
		} `json:"networkInterfaces"`
	} `json:"networkProfile"`
}

type armSecurityProfile struct {
	SecurityType string `json:"securityType"`
	UEFISettings struct {
		SecureBootEnabled bool `json:"secureBootEnabled"`
		VTPMEnabled       bool `json:"vTpmEnabled"`
	} `json:"uefiSettings"`
}

type armStorageProfile struct {
	ImageReference struct {
		Publisher string `json:"publisher"`
		Offer     string `json:"offer"`
		SKU       string `json:"sku"`
		Version   string `json:"version"`
	} `json:"imageReference"`
	OSDisk struct {
		CreateOption string `json:"createOption"`
		ManagedDisk  struct {
			StorageAccountType string `json:"storageAccountType"`
			SecurityProfile    struct {
				SecurityEncryptionType string `json:"securityEncryptionType"`
			} `json:"securityProfile"`
		} `json:"managedDisk"`
	} `json:"osDisk"`
}

type armOSProfile struct {
	ComputerName       string `json:"computerName"`
	AdminUsername      string `json:"adminUsername"`
	CustomData         string `json:"customData"`
	LinuxConfiguration struct {
		DisablePasswordAuthentication bool `json:"disablePasswordAuthentication"`
		SSH                           struct {
			PublicKeys []armSSHKey `json:"publicKeys"`
		} `json:"ssh"`
	} `json:"linuxConfiguration"`
}

type armSSHKey struct {
	Path    string `json:"path"`
	KeyData string `json:"keyData"`
}

func genAzure(w *manifest.Workload, o Options) (*Result, error) {
	size := o.VMSize
	if size == "" {
		size = DefaultSNPSize
		if w.TEE == attest.TDX {
			size = DefaultTDXSize
		}
	}
	if !azureSizes[w.TEE].MatchString(size) {
		want := "DCasv5/DCadsv5/ECasv5/ECadsv5 (e.g. Standard_DC2as_v5)"
		if w.TEE == attest.TDX {
			want = "DCesv5/DCedsv5/ECesv5/ECedsv5 (e.g. Standard_DC2es_v5)"
		}
		return nil, fmt.Errorf("deploy: VM size %q is not an Azure confidential VM size on %s: want %s", size, w.TEE, want)
	}
	enc := o.DiskEncryption
	if enc == "" {
		enc = diskEncryptions[0]
	}
	if enc != diskEncryptions[0] && enc != diskEncryptions[1] {
		return nil, fmt.Errorf("deploy: disk encryption %q: want DiskWithVMGuestState or VMGuestStateOnly", enc)
	}
	ud, err := userData(w, o)
	if err != nil {
		return nil, err
	}

	vm := armVM{
		Type:       "Microsoft.Compute/virtualMachines",
		APIVersion: armVMAPI,
		Name:       "[parameters('vmName')]",
		Location:   "[parameters('location')]",
		Tags:       map[string]string{"trustbound-workload": w.Name},
	}
	p := &vm.Properties
	p.HardwareProfile.VMSize = "[parameters('vmSize')]"
	p.SecurityProfile.SecurityType = "ConfidentialVM"
	p.SecurityProfile.UEFISettings.SecureBootEnabled = true
	p.SecurityProfile.UEFISettings.VTPMEnabled = true
	img := &p.StorageProfile.ImageReference
	img.Publisher, img.Offer, img.SKU, img.Version = "Canonical", "ubuntu-24_04-lts", "cvm", "latest"
	disk := &p.StorageProfile.OSDisk
	disk.CreateOption = "FromImage"
	disk.ManagedDisk.StorageAccountType = "Premium_LRS"
	disk.ManagedDisk.SecurityProfile.SecurityEncryptionType = enc
	p.OSProfile.ComputerName = "[parameters('vmName')]"
	p.OSProfile.AdminUsername = "[parameters('adminUsername')]"
	p.OSProfile.CustomData = base64.StdEncoding.EncodeToString(ud)
	p.OSProfile.LinuxConfiguration.DisablePasswordAuthentication = true
	p.OSProfile.LinuxConfiguration.SSH.PublicKeys = []armSSHKey{{
		Path:    "[format('/home/{0}/.ssh/authorized_keys', parameters('adminUsername'))]",
		KeyData: "[parameters('sshPublicKey')]",
	}}
	p.NetworkProfile.NetworkInterfaces = []struct {
		ID string `json:"id"`
	}{{ID: "[parameters('networkInterfaceId')]"}}

	t := armTemplate{
		Schema:         armSchema,
		ContentVersion: "1.0.0.0",
		Metadata: map[string]string{
			"description": fmt.Sprintf("trustbound deploy: %s, a confidential VM on %s. customData is user-data.yaml (base64): the trustbound agent attests the VM before the application starts. Secure boot and the vTPM are on; the OS disk's guest state is encrypted (%s).", w.Name, w.TEE, enc),
		},
		Parameters: map[string]armParameter{
			"vmName":             {Type: "string", DefaultValue: w.Name},
			"location":           {Type: "string", DefaultValue: "[resourceGroup().location]"},
			"vmSize":             {Type: "string", DefaultValue: size, Metadata: map[string]string{"description": "a confidential VM size on " + string(w.TEE)}},
			"adminUsername":      {Type: "string", DefaultValue: "azureuser"},
			"sshPublicKey":       {Type: "string", Metadata: map[string]string{"description": "the administrator's SSH public key (an administrator is inside the VM's trust boundary)"}},
			"networkInterfaceId": {Type: "string", Metadata: map[string]string{"description": "resource ID of an existing network interface"}},
		},
		Resources: []armVM{vm},
		Outputs: map[string]armOutput{
			"vmId": {Type: "string", Value: "[resourceId('Microsoft.Compute/virtualMachines', parameters('vmName'))]"},
		},
	}
	js, err := json.MarshalIndent(t, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("deploy: ARM template: %w", err)
	}
	js = append(js, '\n')
	return &Result{
		Files: []File{{Name: "azuredeploy.json", Data: js}, {Name: "user-data.yaml", Data: ud}},
		Notes: []string{"Azure customData is not measured: the VM's attestation pins the paravisor and PCRs, not the user data, so the host can replace the coordinator CA together with --ca-sha256; use a measured image with the agent, its units and the CA baked in for production"},
	}, nil
}
