package scheduler

import (
	"math"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// indexedSchedulers answer from an index on long lists.
var indexedSchedulers = []string{"lc", "wlc", "sed", "nq", "fo", "ovf", "twos"}

// bothWays picks f twice with the same random draws: once walking the list
// as the kernel does, once from the scheduler's index. The service must have
// been built with scanCutoff 0, so that its list is indexed.
func bothWays(svc *Service, f Flow, draws [2]uint32) (walked, indexed *Dest) {
	savedCutoff, savedRand := scanCutoff, svc.Rand
	defer func() { scanCutoff, svc.Rand = savedCutoff, savedRand }()
	replay := func() func() uint32 {
		i := 0
		return func() uint32 { i++; return draws[(i-1)%2] }
	}
	svc.Rand, scanCutoff = replay(), math.MaxInt
	walked = svc.Schedule(f, time.Unix(0, 0))
	svc.Rand, scanCutoff = replay(), 0
	indexed = svc.Schedule(f, time.Unix(0, 0))
	return walked, indexed
}

// TestIndexBreaksTiesLikeTheKernelWalk drives long lists full of ties
// (small weights, few connections, thresholds that come and go) through
// random adds, deletes, edits, binds and unbinds, and after every step asks
// the index and the kernel's walk for the same pick.
func TestIndexBreaksTiesLikeTheKernelWalk(t *testing.T) {
	defer func(saved int) { scanCutoff = saved }(scanCutoff)
	scanCutoff = 0 // index every list, whatever its length
	r := rand.New(rand.NewPCG(11, 12))
	for _, sched := range indexedSchedulers {
		t.Run(sched, func(t *testing.T) {
			for round := range 12 {
				svc := &Service{Profile: Profile(round % 2)}
				require.NoError(t, svc.SetScheduler(sched))
				pool := make([]*Dest, 200+r.IntN(200))
				var bound []*Dest
				for step := range 1500 {
					switch op := r.IntN(10); {
					case op < 2 || len(svc.Dests) == 0: // add, or bring one back
						i := r.IntN(len(pool))
						if pool[i] == nil {
							pool[i] = &Dest{Addr: netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)}), Port: 80}
						}
						if d := pool[i]; !d.Available() {
							d.SetWeight(int32(r.IntN(4)), true)
							u := uint32(r.IntN(5))
							d.SetThresholds(u, uint32(r.IntN(int(u)+1)), svc.Profile)
							svc.AddDest(d)
						}
					case op == 2 && len(svc.Dests) > 1:
						svc.DelDest(svc.Dests[r.IntN(len(svc.Dests))])
					case op == 3:
						d := svc.Dests[r.IntN(len(svc.Dests))]
						d.SetWeight(int32(r.IntN(4)), false)
						u := uint32(r.IntN(5))
						d.SetThresholds(u, uint32(r.IntN(int(u)+1)), svc.Profile)
						svc.UpdDest(d)
					case op < 7:
						d := svc.Dests[r.IntN(len(svc.Dests))]
						d.BindConn()
						if r.IntN(2) == 0 {
							d.SetActive(true)
						}
						bound = append(bound, d)
					case op < 9 && len(bound) > 0:
						i := r.IntN(len(bound))
						d := bound[i]
						switch {
						case d.ActiveConns > 0 && r.IntN(2) == 0:
							d.SetActive(false)
						case d.ActiveConns > 0:
							d.UnbindConn(true)
							bound = slices.Delete(bound, i, i+1)
						default:
							d.UnbindConn(false)
							bound = slices.Delete(bound, i, i+1)
						}
					}
					walked, indexed := bothWays(svc, Flow{}, [2]uint32{r.Uint32(), r.Uint32()})
					if walked != indexed {
						t.Fatalf("round %d step %d: walk picks %v, index picks %v", round, step, walked, indexed)
					}
				}
			}
		})
	}
}

// TestIndexReproducesTheKernel runs the kipvs samples and the worked
// examples with every list answered from the index.
func TestIndexReproducesTheKernel(t *testing.T) {
	saved := scanCutoff
	defer func() { scanCutoff = saved }()
	scanCutoff = 0
	t.Run("kipvs", TestKipvsSamplesReproduced)
	t.Run("least connection", TestLeastConnectionSpecExamples)
	t.Run("stock profile", TestLeastConnectionStockProfile)
	t.Run("twos draws", TestTwoChoicesPicksTheLighterOfTwoWeightedDraws)
	t.Run("twos exclusions", TestTwoChoicesSkipsQuiescentAndOverloadedDests)
	t.Run("shares", TestLongRunSharesFollowTheWeights)
	t.Run("no bad picks", TestNoSchedulerPicksAQuiescentOrOverloadedDest)
}

// TestTwosGuideFindsWhatTheWalkFinds drives a long twos list through weight
// edits (0 and 65535 among them), OVERLOAD toggles, adds and deletes. After
// each change it picks until the weights have held still long enough for
// the guide table to take over from the Fenwick tree, comparing every pick
// with the kernel's walk, and then asks the guide for the draws at each
// prefix-sum boundary and checks it lands where the walk does.
func TestTwosGuideFindsWhatTheWalkFinds(t *testing.T) {
	defer func(saved int) { scanCutoff = saved }(scanCutoff)
	scanCutoff = 0
	r := rand.New(rand.NewPCG(21, 22))
	svc := &Service{}
	require.NoError(t, svc.SetScheduler("twos"))
	tree := &svc.sched.(*Twos).weights
	weights := []int32{0, 1, 1, 2, 3, 5, 100, 65535}
	pool := make([]*Dest, 300)
	for i := range pool {
		pool[i] = &Dest{Addr: netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)}), Port: 80}
	}
	guideUsed := 0
	for step := range 300 {
		switch op := r.IntN(4); {
		case op == 0 || len(svc.Dests) < 2:
			if d := pool[r.IntN(len(pool))]; !d.Available() {
				d.SetWeight(weights[r.IntN(len(weights))], true)
				svc.AddDest(d)
			}
		case op == 1:
			svc.DelDest(svc.Dests[r.IntN(len(svc.Dests))])
		case op == 2:
			d := svc.Dests[r.IntN(len(svc.Dests))]
			d.SetWeight(weights[r.IntN(len(weights))], false)
			svc.UpdDest(d)
		default:
			d := svc.Dests[r.IntN(len(svc.Dests))]
			d.Flags ^= DestOverload
			svc.UpdDest(d)
		}
		for range len(svc.Dests) + 1 {
			walked, indexed := bothWays(svc, Flow{}, [2]uint32{r.Uint32(), r.Uint32()})
			require.Same(t, walked, indexed, "step %d", step)
		}
		if tree.total == 0 {
			continue // no pick reaches the tree
		}
		require.True(t, tree.fresh, "step %d: the weights held still, yet picks stay on the tree", step)
		guideUsed++
		for _, draw := range append([]int64{1, tree.total}, tree.sums...) {
			for _, d := range []int64{draw, draw + 1} {
				if d < 1 || d > tree.total {
					continue
				}
				want, _ := twosWalk(svc, d, d)
				require.Same(t, want, svc.Dests[tree.guided(d)], "step %d draw %d", step, d)
			}
		}
	}
	require.Greater(t, guideUsed, 200)
}
