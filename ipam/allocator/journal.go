package allocator

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// Change is one entry of a node's block changed on the node before it is written to the API: the
// record a Journal keeps.
type Change struct {
	// Network is the network's name (not its key), so a journal found at start-up can be written.
	Network string `json:"network"`
	Block   string `json:"block"`
	Addr    string `json:"addr"`
	// Was is the entry the change replaces, in wire form ("" when the address was free): the
	// change is applied only onto it (or onto what it writes), never over someone else's entry.
	Was string `json:"was,omitempty"`
	// Entry is the new entry in wire form; "" frees the address.
	Entry string `json:"entry,omitempty"`
}

// Journal is the node-local, durable record of changes to a node's blocks not yet written to the
// API server (write-behind, see writebehind.go). It is read and written under the node lock of
// its key, so the node agent and a plugin process in direct mode share it.
type Journal interface {
	// Load returns the changes of key not yet written: for each address the entry it had when
	// first changed (Was) and its latest one (Entry); an address changed back is left out.
	Load(key string) ([]Change, error)
	// Append records changes; they are durable when it returns.
	Append(key string, changes []Change) error
	// Replace replaces the record of key with changes (none: the record is removed).
	Replace(key string, changes []Change) error
	// Keys lists the keys that have a record.
	Keys() ([]string, error)
	// Stamp identifies the record's current version: it changes whenever anyone appends to or
	// replaces it, so a long-lived writer can tell another process wrote it ("" when none).
	Stamp(key string) (string, error)
}

// FileJournal is the production Journal: one file of JSON lines per key in Dir, appended to and
// synced before an answer leaves the node, replaced atomically once its changes are written.
type FileJournal struct {
	Dir string
}

var _ Journal = FileJournal{}

const journalSuffix = ".journal"

func (j FileJournal) path(key string) string { return filepath.Join(j.Dir, key+journalSuffix) }

// Load implements Journal. A last line cut short by a crash is ignored: its answer never left.
func (j FileJournal) Load(key string) ([]Change, error) {
	b, err := os.ReadFile(j.path(key))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the IPAM journal: %w", err)
	}
	var lines []Change
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		var c Change
		if json.Unmarshal(sc.Bytes(), &c) == nil && c.Block != "" && c.Addr != "" {
			lines = append(lines, c)
		}
	}
	return mergeChanges(lines), nil
}

// Append implements Journal.
func (j FileJournal) Append(key string, changes []Change) error {
	if len(changes) == 0 {
		return nil
	}
	if err := os.MkdirAll(j.Dir, 0o755); err != nil {
		return fmt.Errorf("creating the IPAM journal directory: %w", err)
	}
	f, err := os.OpenFile(j.path(key), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("opening the IPAM journal: %w", err)
	}
	defer f.Close()
	if _, err := f.Write(encodeChanges(changes)); err != nil {
		return fmt.Errorf("writing the IPAM journal: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("syncing the IPAM journal: %w", err)
	}
	return nil
}

// Replace implements Journal.
func (j FileJournal) Replace(key string, changes []Change) error {
	path := j.path(key)
	if len(changes) == 0 {
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("removing the IPAM journal: %w", err)
		}
		return nil
	}
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("replacing the IPAM journal: %w", err)
	}
	_, err = f.Write(encodeChanges(changes))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("replacing the IPAM journal: %w", err)
	}
	return nil
}

// Stamp implements Journal: the file's inode, size and modification time.
func (j FileJournal) Stamp(key string) (string, error) {
	fi, err := os.Stat(j.path(key))
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("reading the IPAM journal: %w", err)
	}
	ino := uint64(0)
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		ino = st.Ino
	}
	return fmt.Sprintf("%d/%d/%d", ino, fi.Size(), fi.ModTime().UnixNano()), nil
}

// Keys implements Journal.
func (j FileJournal) Keys() ([]string, error) {
	entries, err := os.ReadDir(j.Dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("listing the IPAM journals: %w", err)
	}
	var keys []string
	for _, e := range entries {
		if name, ok := strings.CutSuffix(e.Name(), journalSuffix); ok && e.Type().IsRegular() {
			keys = append(keys, name)
		}
	}
	return keys, nil
}

func encodeChanges(changes []Change) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	for _, c := range changes {
		_ = enc.Encode(c) // a Change of strings always encodes
	}
	return buf.Bytes()
}

// mergeChanges folds a record in order: per block and address the first Was and the last Entry,
// dropping the addresses that ended where they began.
func mergeChanges(lines []Change) []Change {
	type at struct{ block, addr string }
	index := map[at]int{}
	var out []Change
	for _, c := range lines {
		k := at{c.Block, c.Addr}
		if i, ok := index[k]; ok {
			out[i].Entry = c.Entry
			continue
		}
		index[k] = len(out)
		out = append(out, c)
	}
	kept := out[:0]
	for _, c := range out {
		if c.Was != c.Entry {
			kept = append(kept, c)
		}
	}
	return kept
}
