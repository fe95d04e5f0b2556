#!/bin/sh
# Read-only inspection of a Harvester node for PCI passthrough (`diagnose --node-ssh`).
#
#   sh inspect-node.sh ROOT GROUP [ADDRESS...]
#
# ROOT     prefix put before /proc and /sys: "" on a real node; tests pass a fake tree.
# GROUP    the IOMMU group the PCIDevices report ("" when they report none).
# ADDRESS  PCI addresses of the functions of interest (e.g. 000c:01:00.0).
#
# Prints one fact per line as key=value (parsed by scripts/lib/checks/NodeInspection.java).
# It only reads: files under ROOT, and the kernel log through `dmesg` (as `sudo -n dmesg` when
# kernel.dmesg_restrict keeps it from a normal user; -n never prompts). Nothing is written.
# POSIX sh on purpose: the node's /bin/sh may be any shell.

root=$1
group=$2
shift 2

echo "format=1"

if line=$(cat "$root/proc/cmdline" 2>/dev/null); then
    echo "cmdline=$line"
else
    echo "cmdline.unreadable=$root/proc/cmdline"
fi

# Seconds since boot: dates the kernel log's [seconds] stamps ("how recent is that error").
if up=$(cut -d' ' -f1 "$root/proc/uptime" 2>/dev/null) && [ -n "$up" ]; then
    echo "uptime=$up"
fi

# IOMMU units the kernel registered (dmar0, ivhd0, smmu3.0x...), and how many groups exist.
for e in "$root"/sys/class/iommu/*; do
    [ -e "$e" ] || [ -L "$e" ] || continue
    echo "iommu=${e##*/}"
done
n=0
for g in "$root"/sys/kernel/iommu_groups/*; do
    [ -d "$g" ] && n=$((n + 1))
done
echo "iommu_groups=$n"

# first line of a sysfs attribute, or "-" when it does not exist
attr() {
    if [ -r "$1" ]; then head -n 1 "$1" 2>/dev/null; else echo "-"; fi
}

# One PCI function as a line of space-separated fields (values never contain spaces).
function_line() {
    d="$root/sys/bus/pci/devices/$2"
    if [ ! -e "$d" ]; then
        echo "$1=$2 present=no"
        return
    fi
    drv=-
    [ -L "$d/driver" ] && drv=$(readlink "$d/driver") && drv=${drv##*/}
    grp=-
    [ -L "$d/iommu_group" ] && grp=$(readlink "$d/iommu_group") && grp=${grp##*/}
    echo "$1=$2 present=yes class=$(attr "$d/class") vendor=$(attr "$d/vendor") device=$(attr "$d/device")" \
         "driver=$drv iommu_group=$grp boot_vga=$(attr "$d/boot_vga")"
}

if [ -n "$group" ]; then
    echo "group=$group"
    if [ -d "$root/sys/kernel/iommu_groups/$group/devices" ]; then
        for m in "$root/sys/kernel/iommu_groups/$group/devices"/*; do
            [ -e "$m" ] || [ -L "$m" ] || continue
            function_line member "${m##*/}"
        done
    else
        echo "group.missing=$group"
    fi
fi
for a in "$@"; do
    function_line function "$a"
done

# Who holds the console: virtual consoles bound to a framebuffer, and the firmware framebuffers.
for v in "$root"/sys/class/vtconsole/vtcon*; do
    [ -e "$v" ] || continue
    echo "vtcon=${v##*/} bind=$(attr "$v/bind") name=$(attr "$v/name")"
done
for drv in efi-framebuffer simple-framebuffer vesa-framebuffer; do
    for f in "$root/sys/bus/platform/drivers/$drv"/*.[0-9]*; do
        [ -e "$f" ] || [ -L "$f" ] || continue
        echo "framebuffer=$drv ${f##*/}"
    done
done

# The kernel log: plain dmesg, else sudo -n dmesg; say which, or why neither worked.
if [ "$(id -u)" = 0 ]; then echo "user=root"; else echo "user=$(id -un 2>/dev/null || id -u)"; fi
if log=$(dmesg 2>/dev/null); then
    echo "dmesg.source=dmesg"
elif ! command -v sudo >/dev/null 2>&1; then
    echo "dmesg.source=none"
    echo "dmesg.denied=dmesg is restricted to root and sudo is not installed"
    log=
elif log=$(sudo -n dmesg 2>&1); then
    echo "dmesg.source=sudo"
else
    case $log in
        *password*) echo "dmesg.source=none"; echo "sudo=password" ;;
        *) echo "dmesg.source=none"; echo "dmesg.denied=$(printf '%s\n' "$log" | head -n 1)" ;;
    esac
    log=
fi
if [ -n "$log" ]; then
    # "Adding to iommu group" appears once per device: count it, keep the rest (capped).
    echo "dmesg.group_adds=$(printf '%s\n' "$log" | grep -c 'to iommu group')"
    printf '%s\n' "$log" \
        | grep -E "DMAR|AMD-Vi|SMMU|smmu|IOMMU|iommu|vfio|BAR [0-9]+: can't reserve" \
        | grep -v 'to iommu group' \
        | tail -n 200 \
        | sed 's/^/dmesg=/'
fi
echo "end=ok"
