package cache

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestPutGetDeleteList(t *testing.T) {
	s := &Store{Dir: filepath.Join(t.TempDir(), "state")}
	if e, err := s.Get("c1"); err != nil || e != nil {
		t.Fatalf("Get before Put = %v, %v; want nil, nil", e, err)
	}
	want := &Entry{ContainerID: "c1", IfName: "eth0", PodNamespace: "ns", PodName: "p", Attachments: []Attachment{
		{Network: "cbr0", Default: true, IfName: "eth0", Config: json.RawMessage(`{"name":"cbr0"}`)},
		{Network: "ns/macvlan", IfName: "net1", Config: json.RawMessage(`{"name":"macvlan"}`), Resource: "intel.com/vf", DeviceID: "0000:af:06.0",
			Args: [][2]string{{"K8S_POD_NAME", "p"}}, CapabilityArgs: map[string]any{"mac": "02:00:00:00:00:01"}},
	}}
	for _, e := range []*Entry{{ContainerID: "c1", IfName: "eth0"}, want, {ContainerID: "c2", IfName: "eth0"}} {
		if err := s.Put(e); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.Get("c1")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Get after Put (-want +got):\n%s", diff)
	}
	if ids, err := s.List(); err != nil || !cmp.Equal(ids, []string{"c1", "c2"}) {
		t.Errorf("List = %v, %v; want [c1 c2]", ids, err)
	}
	if err := s.Delete("c1"); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete("c1"); err != nil {
		t.Errorf("second Delete: %v", err)
	}
	if ids, _ := s.List(); !cmp.Equal(ids, []string{"c2"}) {
		t.Errorf("List after Delete = %v", ids)
	}
	leftovers, _ := filepath.Glob(filepath.Join(s.Dir, ".*"))
	if len(leftovers) != 0 {
		t.Errorf("temporary files left: %v", leftovers)
	}
}

func TestBadContainerIDs(t *testing.T) {
	s := &Store{Dir: t.TempDir()}
	for _, id := range []string{"", "../etc/passwd", "a/b", ".hidden", "a..b"} {
		t.Run(id, func(t *testing.T) {
			if err := s.Put(&Entry{ContainerID: id}); err == nil {
				t.Errorf("Put(%q) succeeded", id)
			}
			if _, err := s.Get(id); err == nil {
				t.Errorf("Get(%q) succeeded", id)
			}
		})
	}
}

func TestCorruptEntryIsAnError(t *testing.T) {
	s := &Store{Dir: t.TempDir()}
	if err := os.WriteFile(filepath.Join(s.Dir, "c1.json"), []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get("c1"); err == nil {
		t.Error("a corrupt entry read without error")
	}
}
