package sysfs

import (
	"fmt"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// devDir reads the attributes of one device through a directory file descriptor: each read is
// an openat of one name, so the kernel resolves the bus/pci/devices symlink once per device
// rather than once per attribute, and no os.File (with its poller registration) is made. It
// keeps discovery of thousands of VFs fast.
type devDir struct {
	path string
	fd   int
	buf  [256]byte
}

func openDevice(path string) (*devDir, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("opening PCI device %s: %w", path, err)
	}
	return &devDir{path: path, fd: fd}, nil
}

func (d *devDir) close() { _ = unix.Close(d.fd) }

// read returns the trimmed content of a small attribute file.
func (d *devDir) read(name string) (string, error) {
	fd, err := unix.Openat(d.fd, name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", fmt.Errorf("reading %s: %w", filepath.Join(d.path, name), err)
	}
	defer unix.Close(fd)
	n, err := unix.Read(fd, d.buf[:])
	if err != nil {
		return "", fmt.Errorf("reading %s: %w", filepath.Join(d.path, name), err)
	}
	return strings.TrimSpace(string(d.buf[:n])), nil
}

// id reads a PCI ID file ("0x8086\n") as "8086".
func (d *devDir) id(name string) (string, error) {
	s, err := d.read(name)
	if err != nil {
		return "", fmt.Errorf("the PCI %s ID: %w", name, err)
	}
	return strings.ToLower(strings.TrimPrefix(s, "0x")), nil
}

func (d *devDir) int(name string) (int, error) {
	s, err := d.read(name)
	if err != nil {
		return 0, err
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("%s: %q is not a number", filepath.Join(d.path, name), s)
	}
	return n, nil
}

func (d *devDir) numa() int {
	s, err := d.read("numa_node")
	if err != nil {
		return -1
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return -1
	}
	return n
}

// linkBase is the last element of the symlink's target, "" when there is no such link.
func (d *devDir) linkBase(name string) string {
	n, err := unix.Readlinkat(d.fd, name, d.buf[:])
	if err != nil {
		return ""
	}
	t := string(d.buf[:n])
	if i := strings.LastIndexByte(t, '/'); i >= 0 {
		return t[i+1:]
	}
	return t
}

// entries lists a subdirectory, sorted; ok is false when it does not exist.
func (d *devDir) entries(name string) (names []string, ok bool) {
	fd, err := unix.Openat(d.fd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, false
	}
	defer unix.Close(fd)
	var buf [4096]byte
	for {
		n, err := unix.Getdents(fd, buf[:])
		if err != nil || n <= 0 {
			break
		}
		_, _, names = unix.ParseDirent(buf[:n], -1, names)
		if n < len(buf)/2 {
			break // sysfs fills the buffer while entries remain: this was the last batch
		}
	}
	sort.Strings(names)
	return names, true
}

// exists reports whether name exists in the device directory.
func (d *devDir) exists(name string) bool {
	return unix.Faccessat(d.fd, name, unix.F_OK, 0) == nil
}

func (d *devDir) firstEntry(name string) string {
	names, _ := d.entries(name)
	if len(names) == 0 {
		return ""
	}
	return names[0]
}

// linkType maps the ARPHRD_* number of a netdev's type file to the name `ip link` prints.
func (d *devDir) linkType(name string) string {
	s, err := d.read(name)
	if err != nil {
		return ""
	}
	switch s {
	case "1":
		return "ether"
	case "32":
		return "infiniband"
	case "772":
		return "loopback"
	case "65534":
		return "none"
	}
	return s
}
