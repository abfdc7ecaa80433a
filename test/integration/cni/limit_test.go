package cni

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestDelegateExecutionsAreBounded: three pods of four networks each, ADDed at once, never
// have more than --cni-max-delegates plugin processes running at a time across the node, and
// still run that many in parallel.
func TestDelegateExecutionsAreBounded(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t, 3*time.Minute)
	// A delegate that marks itself running, notes how many are running, and takes 0.4s.
	marks := t.TempDir()
	pluginDir := t.TempDir()
	script := fmt.Sprintf("#!/bin/sh\nD=%s\ncase \"$CNI_COMMAND\" in\n"+
		"ADD) mkdir \"$D/run.$$\"; ls -d \"$D\"/run.* | wc -l >> \"$D/seen\"; sleep 0.4; rmdir \"$D/run.$$\"; echo '{\"cniVersion\":\"1.0.0\"}';;\n"+
		"VERSION) echo '{\"cniVersion\":\"1.0.0\",\"supportedVersions\":[\"1.0.0\"]}';;\nesac\nexit 0\n", marks)
	if err := os.WriteFile(filepath.Join(pluginDir, "countcni"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	e.pluginDirs = append(e.pluginDirs, pluginDir)
	var nets []string
	for _, n := range []string{"count-a", "count-b", "count-c", "count-d"} {
		e.createNAD(ctx, n, fmt.Sprintf(`{"cniVersion":"1.0.0","name":%q,"type":"countcni"}`, n), nil)
		nets = append(nets, n)
	}
	const limit = 2
	e.startDaemon("--cni-max-delegates", strconv.Itoa(limit))
	rt := e.runtime()
	var sbs []*sandbox
	for i := range 3 {
		sbs = append(sbs, e.newSandbox(ctx, fmt.Sprintf("pod-limit-%d", i), strings.Join(nets, ",")))
	}
	var wg sync.WaitGroup
	for _, sb := range sbs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := rt.add(ctx, sb); err != nil {
				t.Errorf("ADD of %s: %v", sb.pod.Name, err)
			}
		}()
	}
	wg.Wait()
	b, err := os.ReadFile(filepath.Join(marks, "seen"))
	if err != nil {
		t.Fatal(err)
	}
	fields := strings.Fields(string(b))
	peak := 0
	for _, f := range fields {
		n, err := strconv.Atoi(f)
		if err != nil {
			t.Fatalf("the delegate's record %q: %v", b, err)
		}
		peak = max(peak, n)
	}
	if len(fields) != len(sbs)*len(nets) {
		t.Errorf("the delegate ran %d times, want %d (3 pods x 4 networks)", len(fields), len(sbs)*len(nets))
	}
	if peak != limit {
		t.Errorf("at most %d delegate processes ran at once, want exactly --cni-max-delegates=%d (bounded, and still parallel); counts seen: %v", peak, limit, fields)
	}
	for _, sb := range sbs {
		if err := rt.del(ctx, sb); err != nil {
			t.Errorf("DEL of %s: %v", sb.pod.Name, err)
		}
	}
}
