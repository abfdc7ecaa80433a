package cluster

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// vfReturnScript emulates what the kernel does with a real VF whose network namespace dies: the
// VF's netdev comes back to the host (here: the node's netns). An emulated VF is a macvlan, which
// dies with the netns, so this process watches the node's netns and creates it again under its
// name and MAC.
//
// It follows `ip -o monitor link nsid` in the node's netns: a VF leaving for a pod shows as a
// deleted link (indexed by ifindex, whatever name it had when it left) with the pod netns's
// nsid; the pod netns dying shows as a deleted nsid; the VFs that left for it and are not back
// are then recreated (retried while the dying macvlan still holds the MAC on eth0).
//
// Arguments: the state directory, then name=mac per VF.
const vfReturnScript = `set -u
dir=$1; shift
vfs="$*"
mkdir -p "$dir/idx" "$dir/at"
mac_of() { for kv in $vfs; do [ "${kv%%=*}" = "$1" ] && echo "${kv#*=}" && return; done; }
nsid_of() { ip netns list-id | sed -n "s/^nsid \([0-9]*\) (iproute2 netns name: $1)\$/\1/p"; }
note() { [ -n "$(mac_of "$2")" ] && echo "$2" > "$dir/idx/$1"; return 0; }
revive() {
  [ -d "$dir/at/$1" ] || return 0
  for f in "$dir/at/$1"/*; do
    [ -e "$f" ] || continue
    name=${f##*/}; mac=$(mac_of "$name")
    i=0
    while ! ip link show dev "$name" >/dev/null 2>&1 && [ $i -lt 100 ]; do
      if ip link add "$name" address "$mac" link eth0 type macvlan mode bridge 2>/dev/null; then
        ip link set "$name" up && echo "VF netdev $name ($mac) back in the node: its netns (nsid $1) died"
        break
      fi
      i=$((i+1)); sleep 0.1
    done
  done
  rm -rf "$dir/at/$1"
}
rm -f "$dir/events"; mkfifo "$dir/events"
setpriv --pdeathsig KILL -- ip -o monitor link nsid > "$dir/events" &
exec < "$dir/events"
ip -o link show | while read -r idx name rest; do name=${name%%@*}; note "${idx%:}" "${name%:}"; done
echo ready > "$dir/ready"
while read -r first second rest; do
  case "$first" in
  Deleted)
    case "$second" in
    nsid) revive "${rest%% *}" ;;
    *)
      idx=${second%:}
      name=$(cat "$dir/idx/$idx" 2>/dev/null || true); rm -f "$dir/idx/$idx"
      [ -n "$name" ] || continue
      nsid=$(echo "$rest" | sed -n 's/.* new-netnsid \([0-9]*\).*/\1/p')
      if [ -z "$nsid" ]; then
        ns=$(echo "$rest" | sed -n 's/.* new-netns \([^ ]*\).*/\1/p')
        [ -n "$ns" ] && nsid=$(nsid_of "$ns")
      fi
      [ -n "$nsid" ] && mkdir -p "$dir/at/$nsid" && touch "$dir/at/$nsid/$name" ;;
    esac ;;
  [0-9]*:)
    name=${second%%@*}; note "${first%:}" "${name%:}" ;;
  esac
done
`

// startVFReturn starts the process that brings node n's emulated VFs back when their pod's
// netns dies (see vfReturnScript). It runs in the node's netns and is recorded, so Down ends it
// (and its `ip monitor`, which dies with it).
func (c *Cluster) startVFReturn(ctx context.Context, n *Node) error {
	dir := filepath.Join(n.Dir, "vf-return")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	args := []string{"nsenter", "--net=/run/netns/" + n.Name, "--", "/bin/sh", "-c", vfReturnScript, "vf-return", dir}
	for _, vf := range n.VFs {
		args = append(args, vf.Netdev+"="+vf.MAC)
	}
	if _, err := c.start(n.Name+"-vf-return", args, nil); err != nil {
		return err
	}
	if err := waitFile(ctx, filepath.Join(dir, "ready"), 10*time.Second); err != nil {
		return fmt.Errorf("the VF return emulation of %s did not start (see %s): %w", n.Name, c.logPath(n.Name+"-vf-return"), err)
	}
	return nil
}

// vfMAC is the MAC address of emulated VF v of PF p on node n: locally administered, unique in
// the cluster's network.
func (c *Cluster) vfMAC(n *Node, p, v int) string {
	return strings.ToLower(fmt.Sprintf("02:5f:%02x:%02x:%02x:%02x", c.opts.NetworkID, n.Index, p, v))
}
