package sriov

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"

	"github.com/plexus-project/plexus/cni/sriov/sriovtest"
	"github.com/plexus-project/plexus/test/repo"
)

// calls is the number of ADDs (and DELs) of each plugin.
const calls = 200

// The schedule: one call is due every interval, the two plugins alternating. Latency counts
// from when a call was due, so a slow call makes the ones behind it late and that shows (no
// coordinated omission). The interval is four times the median service time of a warm-up of
// both plugins (at least minInterval), so the schedule asks for a quarter of what one caller can
// do on this machine at the time of the run, whatever else loads it. Service times (from the
// start of a call to its end) are reported too: on a loaded machine, queueing behind a slow call
// hits both plugins alike, and the service times compare the plugins themselves.
const (
	warmup      = 10
	minInterval = 10 * time.Millisecond
)

// BenchmarkADDDEL prints ADD and DEL latency of plexus-sriov and macvlan side by side.
func BenchmarkADDDEL(b *testing.B) {
	sriovtest.RequireRoot(b)
	root, err := repo.Root()
	if err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	build := exec.Command("go", "build", "-o", filepath.Join(dir, "plexus-sriov"), "./cmd/plexus-sriov")
	build.Dir, build.Env = root, append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("building plexus-sriov: %v\n%s", err, out)
	}
	cni := cniBinDir()
	for _, p := range []string{"macvlan", "static"} {
		if _, err := os.Stat(filepath.Join(cni, p)); err != nil {
			b.Fatalf("the reference plugin %s is missing in %s: run make cni-plugins", p, cni)
		}
	}
	for range b.N {
		n := sriovtest.NewNode(b, sriovtest.Options{VFs: calls})
		pods := make([]ns.NetNS, calls)
		for i := range pods {
			pods[i] = sriovtest.NewNetns(b, "bench")
		}
		ipam := map[string]any{"type": "static", "addresses": []map[string]any{{"address": "10.70.0.2/24"}}}
		sriov := func(i int) sriovtest.Call {
			conf, _ := json.Marshal(map[string]any{"cniVersion": "1.1.0", "name": "n3", "type": "plexus-sriov",
				"deviceID": n.VFs[i].PCI, "vlan": 100, "spoofchk": "off", "trust": "on", "max_tx_rate": 1000, "ipam": ipam})
			return sriovtest.Call{Binary: filepath.Join(dir, "plexus-sriov"), ExtraPath: []string{cni}, ContainerID: fmt.Sprintf("s%d", i),
				Netns: pods[i].Path(), IfName: "net1", Conf: conf}
		}
		macvlan := func(i int) sriovtest.Call {
			conf, _ := json.Marshal(map[string]any{"cniVersion": "1.1.0", "name": "n4", "type": "macvlan",
				"master": n.Uplink, "mode": "bridge", "ipam": ipam})
			return sriovtest.Call{Binary: filepath.Join(cni, "macvlan"), ContainerID: fmt.Sprintf("m%d", i),
				Netns: pods[i].Path(), IfName: "net2", Conf: conf}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
		interval := calibrate(ctx, b, n, sriov, macvlan)
		add := schedule(ctx, b, n, interval, "ADD", sriov, macvlan)
		for i, vf := range n.VFs {
			if _, err := n.Link(pods[i], "net1"); err != nil {
				b.Fatalf("after ADD, VF %s is not net1 in its pod: %v", vf.PCI, err)
			}
		}
		del := schedule(ctx, b, n, interval, "DEL", sriov, macvlan)
		cancel()
		for _, vf := range n.VFs {
			if st, err := n.Link(nil, vf.Netdev); err != nil || st.MAC != vf.MAC {
				b.Fatalf("after DEL, VF %s is not back as %s with MAC %s: %+v %v", vf.PCI, vf.Netdev, vf.MAC, st, err)
			}
		}
		report(b, interval, add, del)
	}
}

// calibrate runs ADD and DEL of each plugin on pod 0 warmup times, one after the other, and
// returns the schedule's interval: four times the median time of one call.
func calibrate(ctx context.Context, b *testing.B, n *sriovtest.Node, mk ...func(int) sriovtest.Call) time.Duration {
	var ts []time.Duration
	for range warmup {
		for _, m := range mk {
			for _, command := range []string{"ADD", "DEL"} {
				c := m(0)
				c.Command = command
				start := time.Now()
				if _, err := n.Call(ctx, c); err != nil {
					b.Fatalf("warm-up: %v", err)
				}
				ts = append(ts, time.Since(start))
			}
		}
	}
	return max(minInterval, 4*pct(ts, 50)).Round(time.Millisecond)
}

// timings are one plugin's latencies from due time and service times of one command.
type timings struct{ latency, service []time.Duration }

// schedule runs command for plexus-sriov and macvlan on pod i = 0..calls-1, alternating, one
// call due every interval, and returns each plugin's timings.
func schedule(ctx context.Context, b *testing.B, n *sriovtest.Node, interval time.Duration, command string, mk ...func(int) sriovtest.Call) []timings {
	out := make([]timings, len(mk))
	start := time.Now()
	k := 0
	for i := range calls {
		for p, m := range mk {
			due := start.Add(time.Duration(k) * interval)
			k++
			time.Sleep(time.Until(due))
			c := m(i)
			c.Command = command
			began := time.Now()
			if _, err := n.Call(ctx, c); err != nil {
				b.Fatalf("call %d: %v", i, err)
			}
			out[p].latency = append(out[p].latency, time.Since(due))
			out[p].service = append(out[p].service, time.Since(began))
		}
	}
	return out
}

func pct(ls []time.Duration, p float64) time.Duration {
	s := append([]time.Duration(nil), ls...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	idx := int(p/100*float64(len(s))+0.5) - 1
	return s[max(0, min(idx, len(s)-1))]
}

func report(b *testing.B, interval time.Duration, add, del []timings) {
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	names := []string{"plexus-sriov", "macvlan"}
	table := func(title string, pick func(timings) []time.Duration) {
		fmt.Printf("%s\n%-14s %10s %10s %10s %10s\n", title, "plugin", "ADD p50", "ADD p99", "DEL p50", "DEL p99")
		for p, name := range names {
			fmt.Printf("%-14s %8.2fms %8.2fms %8.2fms %8.2fms\n", name,
				ms(pct(pick(add[p]), 50)), ms(pct(pick(add[p]), 99)), ms(pct(pick(del[p]), 50)), ms(pct(pick(del[p]), 99)))
		}
		r := func(x []timings, q float64) float64 { return float64(pct(pick(x[0]), q)) / float64(pct(pick(x[1]), q)) }
		fmt.Printf("%-14s %9.2fx %9.2fx %9.2fx %9.2fx\n", "sriov/macvlan", r(add, 50), r(add, 99), r(del, 50), r(del, 99))
		for _, q := range []float64{50, 99} {
			for p, name := range names {
				b.ReportMetric(ms(pct(pick(add[p]), q)), fmt.Sprintf("%s-add-%s-p%.0f-ms", name, strings.Fields(title)[0], q))
				b.ReportMetric(ms(pct(pick(del[p]), q)), fmt.Sprintf("%s-del-%s-p%.0f-ms", name, strings.Fields(title)[0], q))
			}
		}
	}
	fmt.Printf("\nplexus-sriov and macvlan, %d ADDs then %d DELs each (static IPAM, one call due every %v: four times the median call of a warm-up; plugins alternating)\n", calls, calls, interval)
	table("latency from when each call was due", func(t timings) []time.Duration { return t.latency })
	table("service time of each call (start to end)", func(t timings) []time.Duration { return t.service })
}

func cniBinDir() string {
	cache := os.Getenv("PLEXUS_CACHE")
	if cache == "" {
		home, _ := os.UserHomeDir()
		cache = filepath.Join(home, ".cache", "plexus")
	}
	return filepath.Join(cache, "cni", "bin")
}
