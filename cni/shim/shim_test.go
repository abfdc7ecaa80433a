package shim

import (
	"context"
	"errors"
	"strings"
	"syscall"
	"testing"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"

	"github.com/plexus-project/plexus/cni/wire"
)

func TestForward(t *testing.T) {
	const conf = `{"cniVersion":"1.0.0","name":"plexus","type":"plexus","socketPath":"/run/x/plexus.sock","nodeName":"node7"}`
	down := &wire.NotRunningError{Socket: "/run/x/plexus.sock", Err: syscall.ECONNREFUSED}
	tests := []struct {
		name     string
		command  string
		conf     string
		answer   []byte
		err      error
		wantCode uint
		wantMsg  string
		printed  bool
	}{
		{name: "ADD prints the result", command: "ADD", conf: conf, answer: []byte(`{"cniVersion":"1.0.0","ips":[{"address":"10.0.0.2/24"}]}`), printed: true},
		{name: "ADD with the daemon down", command: "ADD", conf: conf, err: down, wantCode: types.ErrTryAgainLater,
			wantMsg: "plexus-daemon is not running on node node7 (socket /run/x/plexus.sock): check the plexus-daemon DaemonSet"},
		{name: "STATUS with the daemon down is not ready", command: "STATUS", conf: conf, err: down, wantCode: types.ErrPluginNotAvailable, wantMsg: "plexus-daemon is not running"},
		{name: "DEL with the daemon down fails", command: "DEL", conf: conf, err: down, wantCode: types.ErrTryAgainLater, wantMsg: "plexus-daemon is not running"},
		{name: "the daemon's CNI error passes through", command: "ADD", conf: conf, err: types.NewError(7, "network ns/x: boom", ""), wantCode: 7, wantMsg: "network ns/x: boom"},
		{name: "node from the environment", command: "ADD", conf: `{"cniVersion":"1.0.0","name":"plexus","type":"plexus"}`, err: down, wantCode: types.ErrTryAgainLater,
			wantMsg: "on node envnode (socket /run/plexus/cni/plexus.sock)"},
		{name: "bad timeout", command: "ADD", conf: `{"cniVersion":"1.0.0","name":"plexus","type":"plexus","timeout":"soon"}`, wantCode: types.ErrInvalidNetworkConfig, wantMsg: "timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var sent *wire.Request
			printed := false
			s := New(Host{
				Getenv:   func(k string) string { return map[string]string{"NODE_NAME": "envnode"}[k] },
				Hostname: func() (string, error) { return "host", nil },
				Call: func(_ context.Context, _ string, req *wire.Request) ([]byte, error) {
					sent = req
					return tt.answer, tt.err
				},
				Print: func(types.Result, string) error { printed = true; return nil },
			})
			f := map[string]func(*skel.CmdArgs) error{"ADD": s.Funcs().Add, "DEL": s.Funcs().Del, "STATUS": s.Funcs().Status}[tt.command]
			err := f(&skel.CmdArgs{ContainerID: "c1", Netns: "/ns", IfName: "eth0", Args: "K8S_POD_NAME=p", StdinData: []byte(tt.conf)})
			if tt.wantMsg == "" {
				if err != nil {
					t.Fatal(err)
				}
			} else {
				var ce *types.Error
				if !errors.As(err, &ce) || ce.Code != tt.wantCode || !strings.Contains(ce.Msg, tt.wantMsg) {
					t.Fatalf("error = %#v, want code %d with %q", err, tt.wantCode, tt.wantMsg)
				}
			}
			if printed != tt.printed {
				t.Errorf("printed = %v, want %v", printed, tt.printed)
			}
			if sent != nil && (sent.Command != tt.command || sent.ContainerID != "c1" || sent.IfName != "eth0" || string(sent.Config) != tt.conf) {
				t.Errorf("request = %+v", sent)
			}
		})
	}
}
