/**
 * Failure modes the simulator can switch on, each modelled on a real report (users-and-peers.md §5)
 * or on the source of harvester/pcidevices and kubevirt/kubevirt. Names are the sandbox's --fault values.
 */
public enum Fault {
    FORBIDDEN("every API request from a client answers 403 Forbidden (RBAC)"),
    CONTROLLER_DOWN("harvester-pcidevices-controller pods not Ready: agent crash-loops, claims are never processed, webhooks do not answer; deleting a pod restarts it and clears the fault"),
    BIND_FAILS("vfio-pci bind fails (\"write /sys/bus/pci/drivers/vfio-pci/bind: invalid argument\"): passthrough never enabled, claims stay \"In Progress\""),
    NOT_PERMITTED("the controller fails to update the KubeVirt CR (\"error updating kubevirt CR: ...\"): the resource is never permitted and, as upstream, the claim goes no further"),
    DEVICE_PLUGIN_MISSING("the device plugin's socket is gone (kubelet restarted): claims are enabled but node allocatable lacks the resource"),
    WEBHOOK_RACE("the VM admission webhook denies the first client VM updates (2; KubeVirtController.webhookRaceDenials): resource name not yet in the PCI device cache"),
    GUEST_NO_DEVICE("inside the guest, lspci -nn shows no NVIDIA device although the VMI has it (nvidia-smi: \"No devices were found\")"),
    GUEST_SUDO_PASSWORD("inside the guest, sudo asks for a password (sudo -n: \"sudo: a password is required\")");

    public final String description;

    Fault(String description) {
        this.description = description;
    }
}
