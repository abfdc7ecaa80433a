package deviceplugin

import (
	"os"
	"syscall"
)

// fileID identifies a file's incarnation (a recreated socket gets a new inode or mtime).
type fileID struct {
	ino   uint64
	mtime int64
}

func (f fileID) exists() bool { return f != fileID{} }

func statID(path string) fileID {
	fi, err := os.Stat(path)
	if err != nil {
		return fileID{}
	}
	id := fileID{mtime: fi.ModTime().UnixNano()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		id.ino = st.Ino
	}
	return id
}
