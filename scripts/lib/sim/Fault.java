/**
 * Failure modes the simulator can switch on, each modelled on a real report (a harvester/harvester
 * issue) or on the source of harvester/pcidevices and kubevirt/kubevirt. Names are the sandbox's --fault values.
 */
public enum Fault {
    FORBIDDEN("every API request from a client answers 403 Forbidden (RBAC)"),
    CONTROLLER_DOWN("harvester-pcidevices-controller pods not Ready: agent crash-loops, claims are never processed, webhooks do not answer; deleting a pod restarts it and clears the fault"),
    BIND_FAILS("vfio-pci bind fails (\"write /sys/bus/pci/drivers/vfio-pci/bind: invalid argument\"): passthrough never enabled, claims stay \"In Progress\""),
    NOT_PERMITTED("the controller fails to update the KubeVirt CR (\"error updating kubevirt CR: ...\"): the resource is never permitted and, as upstream, the claim goes no further"),
    DEVICE_PLUGIN_MISSING("the device plugin's socket is gone (kubelet restarted): claims are enabled but node allocatable lacks the resource"),
    WEBHOOK_RACE("the VM admission webhook denies the first client VM updates (2; KubeVirtController.webhookRaceDenials): resource name not yet in the PCI device cache"),
    GUEST_NO_DEVICE("inside the guest, lspci -nn shows no NVIDIA device although the VMI has it (nvidia-smi: \"No devices were found\")"),
    GUEST_SUDO_PASSWORD("inside the guest, sudo asks for a password (sudo -n: \"sudo: a password is required\")"),
    CLAIM_STUCK_TERMINATING("the pcidevices agent on altra crash-loops: agents on other nodes refuse altra's claims (\"controller bravo cannot process claims for node altra\"), so a deleted claim keeps its finalizer and stays Terminating; deleting altra's pod restarts it and clears the fault"),
    BAREMETAL_GPU_NODE("node altra is labelled harvesterhci.io/gpu-baremetal-workloads=true (Harvester v1.9 bare-metal GPU containers): the claim webhook denies claims for its NVIDIA GPUs"),
    DUPLICATE_PERMITTED("the claim controller adds each resource to the KubeVirt CR's permittedHostDevices twice (harvester#10008): harmless, VMs still start"),
    ADDON_DISABLED("the pcidevices-controller add-on is disabled, as on a fresh install: no controller pods, no PCIDevices, no webhooks; enabling the Addon (spec.enabled=true) deploys it"),
    ADDON_NO_DEVICES("Harvester v1.9.0-rc4: the add-on is deployed and its pods run, but no PCIDevice objects are ever created (harvester#11360)"),
    IOMMU_OFF("on node altra over SSH (diagnose --node-ssh): the IOMMU is off in firmware — /sys/class/iommu empty, no IOMMU groups, no SMMU lines in dmesg (the node stand-in only; the API side is not modelled)"),
    BOOT_VGA_CONSOLE("on node altra over SSH (diagnose --node-ssh): the RTX 3090 is the boot VGA device (boot_vga=1), so once on vfio-pci dmesg shows `vfio-pci 000c:01:00.0: BAR 1: can't reserve` (pcidevices#81)"),
    NODE_SUDO_PASSWORD("on node altra over SSH (diagnose --node-ssh): dmesg is restricted to root (kernel.dmesg_restrict=1) and sudo -n asks for a password, so the kernel log cannot be read"),
    NO_NVIDIA_RUNTIME("inside the guest (verify --docker): Docker runs but its runtimes lack nvidia — the NVIDIA Container Toolkit is not installed, so `docker run --gpus all` fails");

    public final String description;

    /** The node the per-node faults (CLAIM_STUCK_TERMINATING, BAREMETAL_GPU_NODE) act on: the runbook's. */
    public static final String NODE = "altra";

    Fault(String description) {
        this.description = description;
    }
}
