package attach

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
)

// slowDelegates counts the executions running at once.
type slowDelegates struct {
	fakeDelegates
	running, peak atomic.Int32
}

func (s *slowDelegates) run() {
	n := s.running.Add(1)
	for {
		p := s.peak.Load()
		if n <= p || s.peak.CompareAndSwap(p, n) {
			break
		}
	}
	time.Sleep(20 * time.Millisecond)
	s.running.Add(-1)
}

func (s *slowDelegates) AddNetworkList(context.Context, *libcni.NetworkConfigList, *libcni.RuntimeConf) (types.Result, error) {
	s.run()
	return &current.Result{CNIVersion: "1.0.0"}, nil
}

func (s *slowDelegates) DelNetworkList(context.Context, *libcni.NetworkConfigList, *libcni.RuntimeConf) error {
	s.run()
	return nil
}

func TestLimitDelegates(t *testing.T) {
	list := &libcni.NetworkConfigList{Name: "n"}
	for _, tc := range []struct {
		name  string
		limit int
		calls int
		want  int32 // peak executions at once
	}{
		{"bounded", 3, 24, 3},
		{"one", 1, 6, 1},
		{"unbounded", 0, 8, 8},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &slowDelegates{}
			d := LimitDelegates(s, tc.limit)
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i := range tc.calls {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					var err error
					if i%2 == 0 {
						_, err = d.AddNetworkList(context.Background(), list, &libcni.RuntimeConf{})
					} else {
						err = d.DelNetworkList(context.Background(), list, &libcni.RuntimeConf{})
					}
					if err != nil {
						t.Error(err)
					}
				}()
			}
			close(start)
			wg.Wait()
			if got := s.peak.Load(); got != tc.want {
				t.Errorf("peak executions at once = %d, want %d", got, tc.want)
			}
		})
	}
}

func TestLimitDelegatesGivesUpWithTheCall(t *testing.T) {
	s := &slowDelegates{}
	d := LimitDelegates(s, 1).(*limited)
	d.slots <- struct{}{} // every slot taken
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := d.AddNetworkList(ctx, &libcni.NetworkConfigList{Name: "macvlan-a"}, &libcni.RuntimeConf{})
	ce, ok := err.(*types.Error)
	if !ok || ce.Code != types.ErrTryAgainLater {
		t.Fatalf("err = %v, want a CNI try-again-later error", err)
	}
	if s.running.Load() != 0 || s.peak.Load() != 0 {
		t.Errorf("a delegate ran without a slot")
	}
}
