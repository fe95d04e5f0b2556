/**
 * Failure modes the simulator can switch on, each modelled on a real report (users-and-peers.md §5)
 * or on the source of harvester/pcidevices and kubevirt/kubevirt. Names are the sandbox's --fault values.
 */
public enum Fault {
    FORBIDDEN("every API request from a client answers 403 Forbidden (RBAC)"),
    CONTROLLER_DOWN("harvester-pcidevices-controller pods not Ready: claims are never processed, webhooks do not answer"),
    BIND_FAILS("vfio-pci bind fails (\"write /sys/bus/pci/drivers/vfio-pci/bind: invalid argument\"): passthrough never enabled"),
    NOT_PERMITTED("the controller fails to add the resource to the KubeVirt CR's permittedHostDevices"),
    DEVICE_PLUGIN_MISSING("no device plugin registers the resource: node allocatable lacks it (kubelet restarted)"),
    WEBHOOK_RACE("the VM admission webhook denies the first client VM updates (2; KubeVirtController.webhookRaceDenials): resource name not yet in the PCI device cache"),
    GUEST_NO_DEVICE("inside the guest, lspci shows no NVIDIA device"),
    GUEST_SUDO_PASSWORD("inside the guest, sudo asks for a password");

    public final String description;

    Fault(String description) {
        this.description = description;
    }
}
