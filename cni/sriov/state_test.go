package sriov

import (
	"context"
	"testing"
	"time"
)

func TestStore(t *testing.T) {
	s := Store{Dir: t.TempDir()}
	ctx := context.Background()
	unlock, err := s.Lock(ctx, "0000:3b:02.0")
	if err != nil {
		t.Fatal(err)
	}
	// A second holder waits, and gives up when its context ends.
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := s.Lock(short, "0000:3b:02.0"); err == nil {
		t.Fatal("the VF lock was taken twice")
	}
	other, err := s.Lock(ctx, "0000:3b:02.1")
	if err != nil {
		t.Fatalf("another VF's lock: %v", err)
	}
	other()
	unlock()
	again, err := s.Lock(ctx, "0000:3b:02.0")
	if err != nil {
		t.Fatalf("after unlock: %v", err)
	}
	again()

	if r, err := s.Load("0000:3b:02.0"); r != nil || err != nil {
		t.Fatalf("Load of a VF with no record = %v, %v", r, err)
	}
	rec := &Record{DeviceID: "0000:3b:02.0", Owner: Owner{ContainerID: "c1", IfName: "net1", Netns: "/run/netns/x"}, Phase: PhaseAdded,
		Host: NetdevState{Name: "ens1f0v0", MAC: "02:00:00:00:00:00", MTU: 1500, Up: true}}
	if err := s.Save(rec); err != nil {
		t.Fatal(err)
	}
	got, err := s.Load("0000:3b:02.0")
	if err != nil || got.Owner != rec.Owner || got.Host != rec.Host {
		t.Fatalf("Load = %+v, %v", got, err)
	}
	for _, cid := range []string{"c1", "../../weird id"} {
		if err := s.SetAttachment(cid, "net1", "0000:3b:02.0"); err != nil {
			t.Fatal(err)
		}
		if pci, err := s.Attachment(cid, "net1"); pci != "0000:3b:02.0" || err != nil {
			t.Fatalf("Attachment(%q) = %q, %v", cid, pci, err)
		}
		if err := s.RemoveAttachment(cid, "net1"); err != nil {
			t.Fatal(err)
		}
		if pci, _ := s.Attachment(cid, "net1"); pci != "" {
			t.Fatalf("attachment %q still there", cid)
		}
	}
	if err := s.Remove("0000:3b:02.0"); err != nil {
		t.Fatal(err)
	}
	if err := s.Remove("0000:3b:02.0"); err != nil {
		t.Fatalf("removing twice: %v", err)
	}
}

func TestStoreForgetsEarlierBoots(t *testing.T) {
	dir := t.TempDir()
	before := Store{Dir: dir, BootID: "boot-1"}
	if err := before.Save(&Record{DeviceID: "0000:3b:02.0", Phase: PhaseAdded}); err != nil {
		t.Fatal(err)
	}
	if r, err := before.Load("0000:3b:02.0"); r == nil || err != nil {
		t.Fatalf("same boot: %v, %v", r, err)
	}
	after := Store{Dir: dir, BootID: "boot-2"}
	if r, err := after.Load("0000:3b:02.0"); r != nil || err != nil {
		t.Fatalf("a record of an earlier boot must count as none: %+v, %v", r, err)
	}
	if r, _ := before.Load("0000:3b:02.0"); r != nil {
		t.Fatal("the stale record was not removed")
	}
}
