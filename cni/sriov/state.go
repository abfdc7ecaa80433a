package sriov

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"time"

	"golang.org/x/sys/unix"

	"github.com/plexus-project/plexus/cni/sriov/pf"
)

// Owner is the attachment a VF is given to.
type Owner struct {
	ContainerID string `json:"containerID"`
	IfName      string `json:"ifName"`
	Netns       string `json:"netns"`
}

// Phases of a record.
const (
	// PhaseAdding: ADD is changing the VF; the record holds what to restore if it dies.
	PhaseAdding = "adding"
	// PhaseAdded: the VF is attached.
	PhaseAdded = "added"
)

// Record is the ownership record of one VF: who has it and what it was before, so DEL (or the
// next owner's ADD, when DEL never came) restores it from here, with or without the pod's netns.
type Record struct {
	// BootID is the kernel's boot ID when the record was written: a record of an earlier boot
	// describes VF state the reboot reset, and counts as none.
	BootID   string `json:"bootID,omitempty"`
	DeviceID string `json:"deviceID"`
	Owner    Owner  `json:"owner"`
	Phase    string `json:"phase"`
	// PF and VFIndex locate the VF's settings.
	PF      pf.PF `json:"pf"`
	VFIndex int   `json:"vfIndex"`
	// Userspace is true for a VF on a userspace driver (no netdev).
	Userspace bool `json:"userspace,omitempty"`
	// Host is the netdev as it was in the host before ADD.
	Host NetdevState `json:"host"`
	// Pod is the netdev as ADD configured it in the pod.
	Pod NetdevState `json:"pod"`
	// PFBefore are the PF settings ADD changed, as they were; PFApplied what ADD set.
	PFBefore  pf.Settings `json:"pfBefore"`
	PFApplied pf.Settings `json:"pfApplied"`
}

// NetdevState is what plexus-sriov changes on a VF netdev.
type NetdevState struct {
	// Index is the ifindex in the pod once moved there (0 before): how DEL tells the VF from
	// another link that took its name.
	Index int    `json:"index,omitempty"`
	Name  string `json:"name"`
	MAC   string `json:"mac"`
	MTU   int    `json:"mtu"`
	Up    bool   `json:"up"`
}

// Store keeps the per-VF locks and records, and the attachment index, under a directory:
// vf/<pci>.lock, vf/<pci>.json and att/<container>-<ifname> (holding the PCI address).
//
// Writes replace files atomically (write, then rename) without fsync: what they record only
// matters within one boot, and a crashed process leaves its writes in the page cache; a kernel
// crash or power loss reboots the node, which resets every VF, and records of an earlier boot
// (BootID) count as none.
type Store struct {
	Dir string
	// BootID is the current boot's ID (/proc/sys/kernel/random/boot_id); "" disables the check.
	BootID string
}

func (s Store) vfPath(pci, ext string) string { return filepath.Join(s.Dir, "vf", pci+ext) }

var safeName = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,200}$`)

func (s Store) attPath(containerID, ifName string) string {
	name := containerID + "-" + ifName
	if !safeName.MatchString(name) || name[0] == '.' {
		sum := sha256.Sum256([]byte(name))
		name = "h-" + hex.EncodeToString(sum[:16])
	}
	return filepath.Join(s.Dir, "att", name)
}

// Lock takes the VF's lock, waiting until ctx ends; unlock releases it.
func (s Store) Lock(ctx context.Context, pci string) (unlock func(), err error) {
	if err := os.MkdirAll(filepath.Join(s.Dir, "vf"), 0o700); err != nil {
		return nil, fmt.Errorf("creating the plexus-sriov state directory: %w", err)
	}
	f, err := os.OpenFile(s.vfPath(pci, ".lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return func() { _ = unix.Flock(int(f.Fd()), unix.LOCK_UN); f.Close() }, nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("locking VF %s: %w", pci, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("VF %s is locked by another plexus-sriov call: %w", pci, ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// Load returns the VF's record, nil when it has none.
func (s Store) Load(pci string) (*Record, error) {
	b, err := os.ReadFile(s.vfPath(pci, ".json"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var r Record
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("the ownership record of VF %s (%s) is corrupt: %w", pci, s.vfPath(pci, ".json"), err)
	}
	if s.BootID != "" && r.BootID != s.BootID {
		return nil, s.Remove(pci) // the reboot reset the VF
	}
	return &r, nil
}

// Save writes the VF's record (atomically: a crash leaves the old or the new one).
func (s Store) Save(r *Record) error {
	r.BootID = s.BootID
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return writeAtomically(s.vfPath(r.DeviceID, ".json"), b)
}

// Remove deletes the VF's record.
func (s Store) Remove(pci string) error {
	if err := os.Remove(s.vfPath(pci, ".json")); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// SetAttachment records that the attachment (containerID, ifName) has VF pci.
func (s Store) SetAttachment(containerID, ifName, pci string) error {
	return writeAtomically(s.attPath(containerID, ifName), []byte(pci))
}

// Attachment returns the VF of the attachment, "" when none is recorded.
func (s Store) Attachment(containerID, ifName string) (string, error) {
	b, err := os.ReadFile(s.attPath(containerID, ifName))
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	pci := string(b)
	if !pciAddress.MatchString(pci) {
		return "", fmt.Errorf("attachment cache %s holds %q, not a PCI address", s.attPath(containerID, ifName), pci)
	}
	return pci, nil
}

// RemoveAttachment forgets the attachment.
func (s Store) RemoveAttachment(containerID, ifName string) error {
	if err := os.Remove(s.attPath(containerID, ifName)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

func writeAtomically(path string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
