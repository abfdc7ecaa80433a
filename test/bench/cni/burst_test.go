package cni

import (
	"context"
	"fmt"
	"testing"
	"time"
)

const burstPods = 30

// BenchmarkPodBurst creates 30 pods at once, spread over the 2 nodes, five times: with no
// secondary network, three, one, three, none (burstOrder), and prints time to all Running,
// create-to-Running p50/p90, the overhead of three networks over none (means of the two bursts of
// each), the API requests per pod the daemon made for each burst (audit log, until the daemon is
// quiet) and the daemon's peak RSS during each burst.
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
	// Bursts of none and of three networks alternate (the order a burst runs in moved its time
	// by up to a second here), with one burst of one network between them.
	var rows []row
	for i, k := range burstOrder {
		name := fmt.Sprintf("nets%d-%d", k, i)
		off, err := s.auditOffset()
		if err != nil {
			b.Fatal(err)
		}
		rss, err := s.sampleRSS()
		if err != nil {
			b.Fatalf("%v\n%s", err, s.daemonRestarts(ctx))
		}
		res, err := s.runBurst(ctx, name, s.burstPods(name, burstPods, nets[:k]), 5*time.Minute)
		if err != nil {
			rss.Stop()
			b.Fatal(err)
		}
		// Count what the daemon does for the burst after the pods run too (the IPAM agent's
		// deferred writes), until it has been quiet for longer than it defers anything.
		if err := s.waitDaemonQuiet(ctx, off, 8*time.Second, time.Minute); err != nil {
			b.Fatal(err)
		}
		peak := rss.Stop()
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
	byNets := map[int][]row{}
	for _, r := range rows {
		byNets[r.nets] = append(byNets[r.nets], r)
	}
	mean := func(k int, f func(row) float64) float64 {
		sum := 0.0
		for _, r := range byNets[k] {
			sum += f(r)
		}
		return sum / float64(len(byNets[k]))
	}

	fmt.Printf("\nplexus CNI, %d pods created at once on 2 sandbox nodes (macvlan + plexus-ipam networks), bursts in the order run:\n", burstPods)
	fmt.Printf("  %-9s %12s %9s %9s %19s %18s %16s %8s\n", "networks", "all Running", "p50", "p90", "daemon API req/pod", "(CNI server/IPAM)", "daemon peak RSS", "retried")
	for _, r := range rows {
		fmt.Printf("  %-9d %10.2f s %7.2f s %7.2f s %19.2f %8.2f / %7.2f %13.1f MB %8d\n", r.nets, r.res.wall.Seconds(),
			r.res.percentile(50).Seconds(), r.res.percentile(90).Seconds(), float64(r.requests)/burstPods,
			float64(r.cni)/burstPods, float64(r.requests-r.cni)/burstPods, float64(r.rss)/(1<<20), r.res.retried)
	}
	for _, r := range rows {
		fmt.Printf("  daemon requests during the %d-network burst and after it until quiet: %s\n", r.nets, r.detail)
	}
	for _, k := range []int{0, 1, 3} {
		b.ReportMetric(mean(k, func(r row) float64 { return r.res.wall.Seconds() }), fmt.Sprintf("nets%d-all-Running-s", k))
		b.ReportMetric(mean(k, func(r row) float64 { return r.res.percentile(50).Seconds() }), fmt.Sprintf("nets%d-p50-s", k))
		b.ReportMetric(mean(k, func(r row) float64 { return r.res.percentile(90).Seconds() }), fmt.Sprintf("nets%d-p90-s", k))
	}
	none := mean(0, func(r row) float64 { return r.res.wall.Seconds() })
	three := mean(3, func(r row) float64 { return r.res.wall.Seconds() })
	overhead := 100 * (three - none) / none
	reqs := mean(3, func(r row) float64 { return float64(r.requests) / burstPods })
	cni := mean(3, func(r row) float64 { return float64(r.cni) / burstPods })
	var maxRSS int64
	for _, r := range rows {
		maxRSS = max(maxRSS, r.rss)
	}
	fmt.Printf("  three networks vs none (mean of %d bursts each): %.2f s vs %.2f s, overhead %+.0f%% (goal <= +20%%; Multus thick: 8.6 s vs 5.0 s, +72%%)\n",
		len(byNets[3]), three, none, overhead)
	fmt.Printf("  daemon API requests per pod with three networks: %.2f, of which the CNI server %.2f and the IPAM agent %.2f (goal <= 2; Multus thick: 6)\n",
		reqs, cni, reqs-cni)
	fmt.Printf("  daemon peak RSS during the bursts: %.1f MB (goal <= 40 MB; Multus thick: 56 MB)\n", float64(maxRSS)/(1<<20))
	b.ReportMetric(overhead, "overhead-%")
	b.ReportMetric(reqs, "daemon-req/pod")
	b.ReportMetric(cni, "cni-server-req/pod")
	b.ReportMetric(float64(maxRSS)/(1<<20), "daemon-peak-RSS-MB")
}

// burstOrder is the number of networks of each burst, in the order they run.
var burstOrder = []int{0, 3, 1, 3, 0}
