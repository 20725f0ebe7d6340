#!/usr/bin/env bash
# The node's instance-store NVMe drives as one file system at MOUNT (default /mnt/local): RAID 0
# across the drives when there are several, ext4, owned by the calling user. `k400ray stage`
# copies the prepared data there (cluster.yaml's worker_setup_commands). Idempotent: a mounted
# MOUNT is left as it is. A node without instance-store drives (EBS only) gets nothing mounted
# and exits 0: `mountpoint -q MOUNT` then tells the caller not to stage onto the root volume.
set -euo pipefail
MOUNT=${1:-/mnt/local}
if mountpoint -q "$MOUNT"; then
  echo "$MOUNT: already mounted"
  exit 0
fi
# EC2 names these drives "Amazon EC2 NVMe Instance Storage" (EBS volumes: "Amazon Elastic Block Store").
mapfile -t DRIVES < <(lsblk --nodeps --paths --noheadings --output NAME,MODEL | awk '/Amazon EC2 NVMe Instance Storage/ {print $1}')
if [ "${#DRIVES[@]}" -eq 0 ]; then
  echo "no instance-store drive on this node: nothing mounted at $MOUNT"
  exit 0
fi
if [ "${#DRIVES[@]}" -eq 1 ]; then
  DEVICE=${DRIVES[0]}
else
  DEVICE=/dev/md/k400local
  [ -e "$DEVICE" ] || sudo mdadm --create "$DEVICE" --run --level=0 --raid-devices="${#DRIVES[@]}" "${DRIVES[@]}"
fi
sudo blkid "$DEVICE" > /dev/null 2>&1 || sudo mkfs.ext4 -q -F -m 0 -E nodiscard "$DEVICE"
sudo mkdir -p "$MOUNT"
sudo mount -o noatime "$DEVICE" "$MOUNT"
sudo chown "$(id -u):$(id -g)" "$MOUNT"
echo "$MOUNT: ${#DRIVES[@]} instance-store drive(s), $(df -h --output=size "$MOUNT" | tail -1 | tr -d ' ')"
