package dataplane

// stats is one counter set with its estimator (ip_vs_stats, ip_vs_estimator).
// The packet path adds to live; the 2 s estimator folds live into folded,
// which is all that listings see (kernels before 6.2, §9.1); zero is the
// point -Z took, from the folded values.
type stats struct {
	live, folded, zero, last Counters
	avg                      [5]int64
}

func (s *stats) addIn(n int) {
	s.live.InPkts++
	s.live.InBytes += uint64(n)
}

func (s *stats) addOut(n int) {
	s.live.OutPkts++
	s.live.OutBytes += uint64(n)
}

// fold is one estimator tick (estimation_timer): fold the counters and
// update the moving averages. It reports whether the object is idle: no
// traffic since the last tick and every average at 0.
func (s *stats) fold() bool {
	s.folded = s.live
	cur := s.folded
	d := [5]int64{
		int64(cur.Conns-s.last.Conns) << 9,
		int64(cur.InPkts-s.last.InPkts) << 9,
		int64(cur.OutPkts-s.last.OutPkts) << 9,
		int64(cur.InBytes-s.last.InBytes) << 4,
		int64(cur.OutBytes-s.last.OutBytes) << 4,
	}
	idle := true
	for i := range d {
		s.avg[i] += (d[i] - s.avg[i]) >> 2
		idle = idle && d[i] == 0 && s.avg[i] == 0
	}
	s.last = cur
	return idle
}

// reset is -Z: the folded counters become the zero point and the rates start
// over (ip_vs_zero_stats).
func (s *stats) reset() {
	s.zero = s.folded
	s.last = s.folded
	s.avg = [5]int64{}
}

func (s *stats) counters() Counters { return s.folded.sub(s.zero) }

func (s *stats) rates() Rates {
	r := func(v int64, round, shift uint) uint64 {
		if v < 0 {
			return 0
		}
		return uint64(v+int64(round)) >> shift
	}
	return Rates{
		CPS:    r(s.avg[0], 0x1FF, 10),
		InPPS:  r(s.avg[1], 0x1FF, 10),
		OutPPS: r(s.avg[2], 0x1FF, 10),
		InBPS:  r(s.avg[3], 0xF, 5),
		OutBPS: r(s.avg[4], 0xF, 5),
	}
}
