#!/bin/busybox sh
# PID 1 of tune's test guest (busybox initramfs).  Kernel command line:
#   guestip=A.B.C.D/NN   address of eth0 (default 10.77.0.50/24)
#   gw=A.B.C.D           optional default route
#   dirtymb=N            keep rewriting N MiB of random data (dirties RAM during migration)
#   burn=1               start burning CPU at boot
#   streamport=P         numbered stream server: one line "SEQ <n>" every 10 ms per client (7000)
#   ctlport=P            control server (7001): "burn on" | "burn off" | "status" | "dirty N"
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev; mount -t tmpfs tmp /tmp
for m in virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci failover net_failover virtio_net; do
  [ -f /lib/modules/$m.ko ] && insmod /lib/modules/$m.ko
done
# ACPI power button (QMP system_powerdown): any event from it powers the guest off
for m in evdev button; do [ -f /lib/modules/$m.ko ] && insmod /lib/modules/$m.ko; done
for d in /sys/class/input/event*; do
  if grep -q "Power Button" $d/device/name 2>/dev/null; then
    ( dd if=/dev/input/${d##*/} bs=24 count=1 >/dev/null 2>&1 && echo "GUEST-POWEROFF" && poweroff -f ) &
  fi
done
arg() { sed -n "s/.*[[:space:]]$1=\([^ ]*\).*/\1/p;s/^$1=\([^ ]*\).*/\1/p" /proc/cmdline | head -n1; }
IP=$(arg guestip); GW=$(arg gw); DIRTY=$(arg dirtymb); BURN=$(arg burn)
SPORT=$(arg streamport); CPORT=$(arg ctlport)
ip link set lo up
ip link set eth0 up && ip addr add ${IP:-10.77.0.50/24} dev eth0
[ -n "$GW" ] && ip route add default via $GW
nc -ll -p ${SPORT:-7000} -e /bin/tune-stream &
nc -ll -p ${CPORT:-7001} -e /bin/tune-ctl &
[ -n "$DIRTY" ] && [ "$DIRTY" -gt 0 ] && /bin/tune-dirty start $DIRTY
[ "$BURN" = 1 ] && /bin/tune-burn on >/dev/null
echo "GUEST-UP ip=$IP dirty=$DIRTY burn=$BURN uptime=$(cut -d' ' -f1 /proc/uptime)"
# some guest ARP traffic right away so bridges learn our MAC
ping -c1 -W1 ${GW:-${IP%.*}.1} >/dev/null 2>&1 &
while true; do sleep 3600; done
