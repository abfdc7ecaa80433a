package cni

import (
	"context"
	"fmt"
	"testing"
	"time"
)

const burstPods = 30

// BenchmarkPodBurst creates 30 pods at once, spread over the 2 nodes, with no secondary
// network, then with three, then with one, and prints time to all Running, create-to-Running
// p50/p90, the overhead of three networks over none, the API requests per pod the daemon made
// (audit log) and the daemon's peak RSS during each burst.
func BenchmarkPodBurst(b *testing.B) {
	s := upSandbox(b, nil)
	for range b.N {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
		runPodBursts(ctx, b, s)
		cancel()
	}
}

func runPodBursts(ctx context.Context, b *testing.B, s *sandbox) {
	nets := []string{"burst-a", "burst-b", "burst-c"}
	for i, name := range nets {
		ipam := fmt.Sprintf(`{"type": "plexus-ipam", "range": "198.18.%d.0/24"}`, 32+i)
		if err := s.createNAD(ctx, name, macvlanNAD(name, ipam)); err != nil {
			b.Fatal(err)
		}
	}
	// One pod per node with the three networks first: the daemon's caches, the nodes' first
	// IPAM blocks and the page cache of the plugins are warm for every burst alike.
	if _, err := s.runBurst(ctx, "warm", s.burstPods("warm", len(s.Nodes), nets), 2*time.Minute); err != nil {
		b.Fatal(err)
	}
	if err := s.deleteBurst(ctx, "warm"); err != nil {
		b.Fatal(err)
	}
	if err := s.waitAuditQuiet(ctx, 3*time.Second, 30*time.Second); err != nil {
		b.Fatal(err)
	}

	type row struct {
		nets     int
		res      burst
		requests int
		cni      int
		detail   string
		rss      int64
	}
	var rows []row
	for _, k := range []int{0, 3, 1} {
		name := fmt.Sprintf("nets%d", k)
		off, err := s.auditOffset()
		if err != nil {
			b.Fatal(err)
		}
		rss, err := s.sampleRSS()
		if err != nil {
			b.Fatal(err)
		}
		res, err := s.runBurst(ctx, name, s.burstPods(name, burstPods, nets[:k]), 5*time.Minute)
		peak := rss.Stop()
		if err != nil {
			b.Fatal(err)
		}
		// The daemon's last status patches are in before the pods run; give the audit log
		// (written synchronously) a moment for requests still on the wire.
		time.Sleep(500 * time.Millisecond)
		reqs, err := s.daemonRequests(off)
		if err != nil {
			b.Fatal(err)
		}
		rows = append(rows, row{nets: k, res: res, requests: len(reqs), cni: cniRequests(reqs), detail: byVerb(reqs), rss: peak})
		if err := s.deleteBurst(ctx, name); err != nil {
			b.Fatal(err)
		}
		if err := s.waitAuditQuiet(ctx, 3*time.Second, 30*time.Second); err != nil {
			b.Fatal(err)
		}
	}

	fmt.Printf("\nplexus CNI, %d pods created at once on 2 sandbox nodes (macvlan + plexus-ipam networks):\n", burstPods)
	fmt.Printf("  %-9s %12s %9s %9s %19s %18s %16s %8s\n", "networks", "all Running", "p50", "p90", "daemon API req/pod", "(CNI server/IPAM)", "daemon peak RSS", "retried")
	for _, r := range rows {
		fmt.Printf("  %-9d %10.2f s %7.2f s %7.2f s %19.2f %8.2f / %7.2f %13.1f MB %8d\n", r.nets, r.res.wall.Seconds(),
			r.res.percentile(50).Seconds(), r.res.percentile(90).Seconds(), float64(r.requests)/burstPods,
			float64(r.cni)/burstPods, float64(r.requests-r.cni)/burstPods, float64(r.rss)/(1<<20), r.res.retried)
		b.ReportMetric(r.res.wall.Seconds(), fmt.Sprintf("nets%d-all-Running-s", r.nets))
		b.ReportMetric(r.res.percentile(50).Seconds(), fmt.Sprintf("nets%d-p50-s", r.nets))
		b.ReportMetric(r.res.percentile(90).Seconds(), fmt.Sprintf("nets%d-p90-s", r.nets))
	}
	for _, r := range rows {
		fmt.Printf("  daemon requests during the %d-network burst: %s\n", r.nets, r.detail)
	}
	none, three := rows[0], rows[1]
	overhead := 100 * (three.res.wall.Seconds() - none.res.wall.Seconds()) / none.res.wall.Seconds()
	maxRSS := max(rows[0].rss, rows[1].rss, rows[2].rss)
	fmt.Printf("  three networks vs none: %.2f s vs %.2f s, overhead %+.0f%% (goal <= +20%%; Multus thick: 8.6 s vs 5.0 s, +72%%)\n",
		three.res.wall.Seconds(), none.res.wall.Seconds(), overhead)
	fmt.Printf("  daemon API requests per pod with three networks: %.2f, of which the CNI server %.2f and the IPAM agent %.2f (goal <= 2; Multus thick: 6)\n",
		float64(three.requests)/burstPods, float64(three.cni)/burstPods, float64(three.requests-three.cni)/burstPods)
	fmt.Printf("  daemon peak RSS during the bursts: %.1f MB (goal <= 40 MB; Multus thick: 56 MB)\n", float64(maxRSS)/(1<<20))
	b.ReportMetric(overhead, "overhead-%")
	b.ReportMetric(float64(three.requests)/burstPods, "daemon-req/pod")
	b.ReportMetric(float64(three.cni)/burstPods, "cni-server-req/pod")
	b.ReportMetric(float64(maxRSS)/(1<<20), "daemon-peak-RSS-MB")
}
