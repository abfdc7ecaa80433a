package devinfo

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	"golang.org/x/sys/unix"
)

// DefaultDir is where Multus and the NAD client library read device plugin device-info files.
const DefaultDir = "/var/run/k8s.cni.cncf.io/devinfo/dp"

// Store reads and writes device-info files in Dir.
type Store struct {
	Dir string
}

// FileName is the NAD client's name for the file of deviceID of resource.
func FileName(resource, deviceID string) string {
	return fmt.Sprintf("%s-%s-device.json", strings.ReplaceAll(resource, "/", "-"), strings.ReplaceAll(deviceID, "/", "-"))
}

// Path is the full path of the file of deviceID of resource.
func (s *Store) Path(resource, deviceID string) string {
	return filepath.Join(s.Dir, FileName(resource, deviceID))
}

// Write replaces the file of deviceID of resource with info. It writes a temporary file and
// renames it, so readers never see a partial file.
func (s *Store) Write(resource, deviceID string, info *nadv1.DeviceInfo) error {
	b, err := json.Marshal(info)
	if err != nil {
		return err
	}
	final := s.Path(resource, deviceID)
	tmp := filepath.Join(s.Dir, "."+filepath.Base(final)+".tmp")
	err = writeFile(tmp, b)
	if os.IsNotExist(err) {
		if err := os.MkdirAll(s.Dir, 0o755); err != nil {
			return fmt.Errorf("creating the device-info directory %s: %w", s.Dir, err)
		}
		err = writeFile(tmp, b)
	}
	if err == nil {
		if rerr := unix.Rename(tmp, final); rerr != nil {
			err = &os.LinkError{Op: "rename", Old: tmp, New: final, Err: rerr}
		}
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("writing device info %s: %w", final, err)
	}
	return nil
}

// writeFile creates (or truncates) path read-only for everyone, as the NAD client does, and
// writes b. It uses the system calls directly: Allocate writes one file per device and this
// keeps its latency and garbage low.
func writeFile(path string, b []byte) error {
	const flags = unix.O_WRONLY | unix.O_CREAT | unix.O_TRUNC | unix.O_CLOEXEC
	fd, err := unix.Open(path, flags, 0o444)
	if err == unix.EACCES { // a read-only leftover of a crash, when not running as root
		_ = unix.Unlink(path)
		fd, err = unix.Open(path, flags, 0o444)
	}
	if err != nil {
		return &os.PathError{Op: "open", Path: path, Err: err}
	}
	n, werr := unix.Write(fd, b)
	if werr == nil && n != len(b) {
		werr = fmt.Errorf("short write to %s", path)
	}
	return errors.Join(werr, unix.Close(fd))
}

// Remove deletes the file of deviceID of resource; a missing file is not an error.
func (s *Store) Remove(resource, deviceID string) error {
	if err := os.Remove(s.Path(resource, deviceID)); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("removing device info for %s: %w", deviceID, err)
	}
	return nil
}

// Read returns the file of deviceID of resource.
func (s *Store) Read(resource, deviceID string) (*nadv1.DeviceInfo, error) {
	b, err := os.ReadFile(s.Path(resource, deviceID))
	if err != nil {
		return nil, err
	}
	var info nadv1.DeviceInfo
	if err := json.Unmarshal(b, &info); err != nil {
		return nil, fmt.Errorf("device info %s: %w", s.Path(resource, deviceID), err)
	}
	return &info, nil
}

// List returns the device IDs that have a file for resource.
func (s *Store) List(resource string) ([]string, error) {
	prefix := strings.ReplaceAll(resource, "/", "-") + "-"
	entries, err := os.ReadDir(s.Dir)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, e := range entries {
		n := e.Name()
		if strings.HasPrefix(n, prefix) && strings.HasSuffix(n, "-device.json") {
			ids = append(ids, strings.TrimSuffix(strings.TrimPrefix(n, prefix), "-device.json"))
		}
	}
	return ids, nil
}
