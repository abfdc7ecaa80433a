package conflist

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const bridgeConflist = `{"cniVersion":"1.0.0","name":"cbr0","plugins":[
 {"type":"bridge","bridge":"cni0","ipam":{"type":"host-local","subnet":"10.244.0.0/24"}},
 {"type":"portmap","capabilities":{"portMappings":true}}]}`

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestFindInDir(t *testing.T) {
	tests := []struct {
		name    string
		files   map[string]string
		want    string // config name
		wantErr string
	}{
		{name: "empty dir", wantErr: "no cluster network"},
		{name: "only our own", files: map[string]string{DefaultFileName: `{"name":"plexus","plugins":[{"type":"plexus"}]}`}, wantErr: "no cluster network"},
		{name: "first by name wins", files: map[string]string{"10-bridge.conflist": bridgeConflist, "20-other.conf": `{"cniVersion":"0.3.1","name":"other","type":"ptp"}`}, want: "cbr0"},
		{name: "skips our own", files: map[string]string{DefaultFileName: `{}`, "99-loop.conf": `{"cniVersion":"0.3.1","name":"lo","type":"loopback"}`}, want: "lo"},
		{name: "single plugin conf is wrapped", files: map[string]string{"10-ptp.conf": `{"cniVersion":"0.3.1","name":"ptpnet","type":"ptp"}`}, want: "ptpnet"},
		{name: "broken first config is an error naming it", files: map[string]string{"10-bad.conf": `{"name":`}, wantErr: "10-bad.conf"},
		{name: "other extensions ignored", files: map[string]string{"10-x.yaml": "a: b"}, wantErr: "no cluster network"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			for n, c := range tt.files {
				write(t, filepath.Join(dir, n), c)
			}
			got, err := FindInDir(dir, DefaultFileName)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to mention %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Config.Name != tt.want {
				t.Errorf("found %q, want %q", got.Config.Name, tt.want)
			}
		})
	}
}

func TestRender(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "10-bridge.conflist"), bridgeConflist)
	cluster, err := FindInDir(dir, DefaultFileName)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Render(cluster, ShimOptions{SocketPath: "/run/plexus/cni/plexus.sock", NodeName: "node1", Timeout: "2m"})
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		CNIVersion string `json:"cniVersion"`
		Name       string `json:"name"`
		Plugins    []struct {
			Type         string          `json:"type"`
			SocketPath   string          `json:"socketPath"`
			NodeName     string          `json:"nodeName"`
			Timeout      string          `json:"timeout"`
			Capabilities map[string]bool `json:"capabilities"`
		} `json:"plugins"`
	}
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if got.CNIVersion != "1.0.0" || got.Name != "plexus" || len(got.Plugins) != 1 {
		t.Fatalf("rendered %s", b)
	}
	p := got.Plugins[0]
	if p.Type != "plexus" || p.SocketPath != "/run/plexus/cni/plexus.sock" || p.NodeName != "node1" || p.Timeout != "2m" || !p.Capabilities["portMappings"] {
		t.Errorf("shim entry = %+v", p)
	}
}

func TestWriterFollowsTheClusterNetworkAndKeepsItsFile(t *testing.T) {
	dir := t.TempDir()
	w := &Writer{ConfDir: dir, Shim: ShimOptions{SocketPath: "/s"}, Resync: 50 * time.Millisecond}
	if err := w.Ready(); err == nil {
		t.Fatal("ready before any sync")
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- w.Run(ctx) }()

	write(t, filepath.Join(dir, "10-ptp.conf"), `{"cniVersion":"0.3.1","name":"ptpnet","type":"ptp"}`)
	waitFor(t, func() bool { c := w.Current(); return c != nil && c.Config.Name == "ptpnet" })
	if err := w.Ready(); err != nil {
		t.Fatal(err)
	}
	// A new cluster network sorting first replaces it, and the file follows its version.
	write(t, filepath.Join(dir, "05-bridge.conflist"), bridgeConflist)
	waitFor(t, func() bool { c := w.Current(); return c != nil && c.Config.Name == "cbr0" })
	waitFor(t, func() bool { b, _ := os.ReadFile(w.Path()); return strings.Contains(string(b), `"1.0.0"`) })
	// The cluster network going away keeps the last one in use.
	os.Remove(filepath.Join(dir, "10-ptp.conf"))
	os.Remove(filepath.Join(dir, "05-bridge.conflist"))
	time.Sleep(150 * time.Millisecond)
	if c := w.Current(); c == nil || c.Config.Name != "cbr0" {
		t.Errorf("after the cluster network went away, current = %+v; want the last one, cbr0", c)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(w.Path()); err != nil {
		t.Errorf("the conflist must stay when the daemon stops (fail closed): %v", err)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
