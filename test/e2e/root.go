package e2e

import "os"

func isRoot() bool { return os.Geteuid() == 0 }
