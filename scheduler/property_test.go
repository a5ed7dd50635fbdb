package scheduler

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// randomService builds a service of n dests with random weights (some 0),
// random loads and, when overload is set, some dests marked OVERLOAD.
func randomService(t testing.TB, r *rand.Rand, sched string, n int, overload bool) *Service {
	svc := &Service{}
	require.NoError(t, svc.SetScheduler(sched))
	for i := range n {
		d := &Dest{Addr: netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)}), Port: 80}
		d.SetWeight(int32(r.IntN(6)), true)
		d.ActiveConns, d.InactConns = int32(r.IntN(4)), int32(r.IntN(600))
		if overload && r.IntN(4) == 0 {
			d.Flags |= DestOverload
		}
		svc.AddDest(d)
	}
	return svc
}

func randomFlow(r *rand.Rand) Flow {
	return Flow{Proto: 6,
		Src: netip.AddrFrom4([4]byte{192, 168, byte(r.IntN(256)), byte(r.IntN(256))}), SrcPort: uint16(r.Uint32()),
		Dst: netip.AddrFrom4([4]byte{10, 0, 0, byte(r.IntN(4))}), DstPort: 80}
}

// Schedulers that find a destination whenever any is usable; the hashing
// ones may refuse a flow whose slot is unusable, ovf skips dests above their
// weight.
var alwaysFinds = []string{"rr", "wrr", "lc", "wlc", "sed", "nq", "fo", "twos", "lblc", "lblcr"}

func TestNoSchedulerPicksAQuiescentOrOverloadedDest(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, sched := range Names {
		t.Run(sched, func(t *testing.T) {
			for range 40 {
				svc := randomService(t, r, sched, 1+r.IntN(12), true)
				usableCount := 0
				for _, d := range svc.Dests {
					if usable(d) {
						usableCount++
					}
				}
				for range 50 {
					d := svc.Schedule(randomFlow(r), time.Unix(0, 0))
					if d == nil {
						assert.False(t, usableCount > 0 && slices.Contains(alwaysFinds, sched), "nil with %d usable dests", usableCount)
						continue
					}
					require.Contains(t, svc.Dests, d)
					assert.Positive(t, d.Weight, "weight 0 chosen")
					assert.False(t, d.Overloaded(), "OVERLOAD chosen")
				}
			}
		})
	}
}

func TestLongRunSharesFollowTheWeights(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, sched := range []string{"wrr", "wlc", "sed"} {
		for round := range 5 {
			t.Run(fmt.Sprintf("%s/held connections, random weights %d", sched, round), func(t *testing.T) {
				b := newBench(t, sched)
				var total int32
				n := 2 + r.IntN(8)
				for i := range n {
					w := int32(1 + r.IntN(10))
					total += w
					b.add(fmt.Sprintf("10.1.0.%d:80", i+1), w)
				}
				picks := 200 * int(total)
				count := map[*Dest]int{}
				for range picks {
					d := b.svc.Schedule(client("10.2.0.1"), b.now)
					require.NotNil(t, d)
					d.BindConn()
					d.SetActive(true)
					count[d]++
				}
				for _, d := range b.svc.Dests {
					share := float64(count[d]) / float64(picks)
					assert.InDelta(t, float64(d.Weight)/float64(total), share, 0.01, "%s w%d", b.names[d], d.Weight)
				}
			})
		}
	}
}

func TestHashingIsStableUntilTheSetChanges(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, sched := range []string{"sh", "dh", "mh"} {
		t.Run(sched, func(t *testing.T) {
			for range 10 {
				svc := randomService(t, r, sched, 1+r.IntN(20), false)
				flows := make([]Flow, 200)
				first := make([]*Dest, len(flows))
				for i := range flows {
					flows[i] = randomFlow(r)
					first[i] = svc.Schedule(flows[i], time.Unix(0, 0))
				}
				for range 3 {
					for i, f := range flows {
						d := svc.Schedule(f, time.Unix(0, 0))
						require.Equal(t, first[i], d)
						if d != nil {
							d.BindConn() // load does not move a hashed flow
						}
					}
				}
			}
		})
	}
}

func TestMaglevRemapsAboutOneNthWhenADestGoes(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for _, n := range []int{3, 5, 10, 20, 50} {
		t.Run(fmt.Sprintf("mh/%d dests", n), func(t *testing.T) {
			svc := &Service{}
			require.NoError(t, svc.SetScheduler("mh"))
			for i := range n {
				d := &Dest{Addr: netip.AddrFrom4([4]byte{10, 1, 0, byte(i + 1)}), Port: 80}
				d.SetWeight(1, true)
				svc.AddDest(d)
			}
			flows := make([]Flow, 20000)
			before := make([]*Dest, len(flows))
			for i := range flows {
				flows[i] = randomFlow(r)
				before[i] = svc.Schedule(flows[i], time.Unix(0, 0))
			}
			gone := svc.Dests[r.IntN(n)]
			svc.DelDest(gone)
			moved, strays := 0, 0
			for i, f := range flows {
				d := svc.Schedule(f, time.Unix(0, 0))
				if d != before[i] {
					moved++
					if before[i] != gone {
						strays++
					}
				}
			}
			frac := float64(moved) / float64(len(flows))
			// The flows of the gone dest all move; Maglev moves a few more,
			// the more the fewer slots each dest holds (M/N).
			assert.GreaterOrEqual(t, frac, 0.9/float64(n), "moved %d of %d", moved, len(flows))
			assert.LessOrEqual(t, frac, 1/float64(n)+0.03, "moved %d of %d", moved, len(flows))
			assert.Less(t, float64(strays)/float64(len(flows)), 0.03, "flows of kept dests that moved")
		})
	}
}

func TestTwoChoicesDrawsFollowTheWeights(t *testing.T) {
	// With no load every pick is choice 1: dest i with probability
	// (w_i + [first]) / (total + 1).
	b := newBench(t, "twos")
	addCBA(b) // C(3), B(2), A(1)
	count := map[string]int{}
	const picks = 70000
	for range picks {
		count[b.pick(client("10.2.0.1"), none)]++
	}
	for name, w := range map[string]float64{"C": 4, "B": 2, "A": 1} {
		assert.InDelta(t, w/7, float64(count[name])/picks, 0.01, name)
	}
	assert.Equal(t, picks, count["A"]+count["B"]+count["C"], "never none")
}
