package pf

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// RecorderDir is the directory, inside a PF's device directory of the fake sysfs, where Recorder
// keeps each VF's settings (<N>.json) and the journal of what was set (<N>.log).
const RecorderDir = "plexus-vf-settings"

// Recorder is the Backend of emulated NICs: a PF in a fake sysfs tree has no driver to hold VF
// settings, so Recorder keeps them in <SysfsRoot>/bus/pci/devices/<pf>/plexus-vf-settings/<N>.json
// and appends every change to <N>.log, one line per Set. A VF never set reads as a fresh VF:
// no VLAN, MAC 00:00:00:00:00:00, spoof checking on, trust off, link state auto, no rate limits.
type Recorder struct {
	// SysfsRoot is the fake sysfs tree's root.
	SysfsRoot string
}

var _ Backend = Recorder{}

func (r Recorder) dir(p PF) string {
	return filepath.Join(r.SysfsRoot, "bus", "pci", "devices", p.PCI, RecorderDir)
}

// Fresh is what a VF's settings are before anything set them.
func Fresh() Settings {
	on, off := true, false
	return Settings{VLAN: &VLAN{Proto: Proto8021Q}, MAC: "00:00:00:00:00:00", SpoofChk: &on, Trust: &off,
		LinkState: LinkStateAuto, Rate: &Rate{}}
}

// Get implements Backend.
func (r Recorder) Get(_ context.Context, p PF, vf int) (Settings, error) {
	if _, err := os.Stat(filepath.Join(r.SysfsRoot, "bus", "pci", "devices", p.PCI)); err != nil {
		return Settings{}, fmt.Errorf("PF %s (%s): %w", p.Name, p.PCI, err)
	}
	b, err := os.ReadFile(filepath.Join(r.dir(p), strconv.Itoa(vf)+".json"))
	if errors.Is(err, os.ErrNotExist) {
		return Fresh(), nil
	}
	if err != nil {
		return Settings{}, err
	}
	var s Settings
	if err := json.Unmarshal(b, &s); err != nil {
		return Settings{}, fmt.Errorf("VF %d settings of PF %s in %s: %w", vf, p.PCI, r.dir(p), err)
	}
	return s, nil
}

// Set implements Backend.
func (r Recorder) Set(ctx context.Context, p PF, vf int, s Settings) error {
	cur, err := r.Get(ctx, p, vf)
	if err != nil {
		return err
	}
	if s.LinkState != "" {
		if _, ok := linkStates[s.LinkState]; !ok {
			return fmt.Errorf("setting link_state of VF %d on PF %s: unknown state %q", vf, p.Name, s.LinkState)
		}
	}
	merged := cur
	if s.VLAN != nil {
		merged.VLAN = s.VLAN
	}
	if s.MAC != "" {
		merged.MAC = strings.ToLower(s.MAC)
	}
	if s.SpoofChk != nil {
		merged.SpoofChk = s.SpoofChk
	}
	if s.Trust != nil {
		merged.Trust = s.Trust
	}
	if s.LinkState != "" {
		merged.LinkState = s.LinkState
	}
	if s.Rate != nil {
		merged.Rate = s.Rate
	}
	if err := os.MkdirAll(r.dir(p), 0o755); err != nil {
		return err
	}
	b, err := json.Marshal(merged)
	if err != nil {
		return err
	}
	name := filepath.Join(r.dir(p), strconv.Itoa(vf)+".json")
	tmp := name + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	if err := os.Rename(tmp, name); err != nil {
		return err
	}
	line, _ := json.Marshal(s)
	f, err := os.OpenFile(filepath.Join(r.dir(p), strconv.Itoa(vf)+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = f.Write(append(line, '\n'))
	return err
}

// Journal returns the changes recorded for VF index vf of the PF at pciAddr, oldest first.
func (r Recorder) Journal(pciAddr string, vf int) ([]Settings, error) {
	b, err := os.ReadFile(filepath.Join(r.dir(PF{PCI: pciAddr}), strconv.Itoa(vf)+".log"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []Settings
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if l == "" {
			continue
		}
		var s Settings
		if err := json.Unmarshal([]byte(l), &s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}
