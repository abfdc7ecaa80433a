package cache

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

// Entry is everything the CNI server attached to one container.
type Entry struct {
	// ContainerID is CNI_CONTAINERID.
	ContainerID string `json:"containerID"`
	// Netns is the network namespace path of the ADD.
	Netns string `json:"netns,omitempty"`
	// IfName is the runtime's CNI_IFNAME (the default network's interface).
	IfName string `json:"ifName"`
	// PodNamespace, PodName and PodUID identify the pod.
	PodNamespace string `json:"podNamespace,omitempty"`
	PodName      string `json:"podName,omitempty"`
	PodUID       string `json:"podUID,omitempty"`
	// Attachments in attachment order: the default network first.
	Attachments []Attachment `json:"attachments"`
}

// Attachment is one delegate network attached to the container.
type Attachment struct {
	// Network is "namespace/name" of the NAD, or the cluster network's name.
	Network string `json:"network"`
	// Default is true for the default network (the pod's eth0).
	Default bool `json:"default,omitempty"`
	// IfName is the interface inside the pod.
	IfName string `json:"ifName"`
	// Config is the conflist exactly as the delegates were called with it.
	Config json.RawMessage `json:"config"`
	// Args are the CNI_ARGS pairs the delegates got.
	Args [][2]string `json:"args,omitempty"`
	// CapabilityArgs are the runtimeConfig values the delegates got.
	CapabilityArgs map[string]any `json:"capabilityArgs,omitempty"`
	// Resource and DeviceID are the device given to the delegate, if any.
	Resource string `json:"resource,omitempty"`
	DeviceID string `json:"deviceID,omitempty"`
	// Result is the delegate's CNI result; empty while the ADD has not returned.
	Result json.RawMessage `json:"result,omitempty"`
}

// Store keeps entries as files in Dir.
type Store struct {
	Dir string
}

// validID is what a container ID may be (the CNI spec: alphanumerics, '_', '.', '-'), which
// also keeps it a plain file name.
var validID = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.\-]*$`)

const suffix = ".json"

func (s *Store) path(containerID string) (string, error) {
	if !validID.MatchString(containerID) || strings.Contains(containerID, "..") {
		return "", fmt.Errorf("container ID %q is not a valid CNI container ID (letters, digits, '_', '.', '-')", containerID)
	}
	return filepath.Join(s.Dir, containerID+suffix), nil
}

// Put replaces the entry of e.ContainerID, atomically and durably.
func (s *Store) Put(e *Entry) error {
	path, err := s.path(e.ContainerID)
	if err != nil {
		return err
	}
	b, err := json.Marshal(e)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(s.Dir, 0o700); err != nil {
		return fmt.Errorf("creating the CNI state directory %s: %w", s.Dir, err)
	}
	tmp, err := os.CreateTemp(s.Dir, "."+e.ContainerID+".*.tmp")
	if err != nil {
		return fmt.Errorf("caching the attachments of container %s: %w", e.ContainerID, err)
	}
	_, werr := tmp.Write(b)
	if werr == nil {
		werr = tmp.Sync()
	}
	if cerr := tmp.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Rename(tmp.Name(), path)
	}
	if werr != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("caching the attachments of container %s in %s: %w", e.ContainerID, s.Dir, werr)
	}
	return syncDir(s.Dir)
}

// Get returns the entry of containerID; nil (and no error) when there is none.
func (s *Store) Get(containerID string) (*Entry, error) {
	path, err := s.path(containerID)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the cached attachments of container %s: %w", containerID, err)
	}
	var e Entry
	if err := json.Unmarshal(b, &e); err != nil {
		return nil, fmt.Errorf("the cached attachments of container %s (%s) are corrupt: %w", containerID, path, err)
	}
	return &e, nil
}

// Delete removes the entry of containerID; a missing entry is not an error.
func (s *Store) Delete(containerID string) error {
	path, err := s.path(containerID)
	if err != nil {
		return err
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("removing the cached attachments of container %s: %w", containerID, err)
	}
	return syncDir(s.Dir)
}

// List returns the container IDs that have an entry, sorted.
func (s *Store) List() ([]string, error) {
	des, err := os.ReadDir(s.Dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("listing the CNI state directory %s: %w", s.Dir, err)
	}
	var ids []string
	for _, de := range des {
		n := de.Name()
		if de.Type().IsRegular() && strings.HasSuffix(n, suffix) && !strings.HasPrefix(n, ".") {
			ids = append(ids, strings.TrimSuffix(n, suffix))
		}
	}
	sort.Strings(ids)
	return ids, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
