package scheduler

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// conns brings d to n connections of which all are held (active), binding
// or unbinding one at a time as the connection table would.
func conns(d *Dest, n int32) {
	for d.ActiveConns < n {
		d.BindConn()
		d.SetActive(true)
	}
	for d.ActiveConns > n {
		d.UnbindConn(true)
	}
}

func TestOverloadFollowsTheThresholds(t *testing.T) {
	cases := []struct {
		name   string
		upper  uint32
		lower  uint32
		totals []int32 // the total after each step
		want   []bool  // OVERLOAD after each step
	}{
		{"-x 10/set at the 10th bind, kept at 9 and 8, cleared at 7",
			10, 0, []int32{9, 10, 9, 8, 7, 8, 9, 10}, []bool{false, true, true, true, false, false, false, true}},
		{"-x 10 -y 9/cleared at 8", 10, 9, []int32{10, 9, 8}, []bool{true, true, false}},
		{"-x 1/every bind overloads, the last unbind clears", 1, 0, []int32{1, 0, 1}, []bool{true, false, true}},
		{"-x 4/low mark 3: cleared at 2", 4, 0, []int32{4, 3, 2}, []bool{true, true, false}},
		{"no thresholds/never overloaded", 0, 0, []int32{100, 0}, []bool{false, false}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := &Dest{UThreshold: c.upper, LThreshold: c.lower}
			for i, n := range c.totals {
				conns(d, n)
				assert.Equal(t, c.want[i], d.Overloaded(), "at total %d", n)
			}
		})
	}
}

func TestOverloadIgnoresTemplatesAndStateChanges(t *testing.T) {
	d := &Dest{UThreshold: 2}
	d.BindTemplate()
	d.BindTemplate()
	assert.False(t, d.Overloaded(), "templates never count")
	d.BindConn()
	d.BindConn()
	assert.True(t, d.Overloaded())
	d.SetActive(true)
	d.UThreshold = 5 // not through an edit: nothing re-evaluates
	d.SetActive(false)
	assert.True(t, d.Overloaded(), "a state change does not re-evaluate")
	d.UnbindTemplate()
	assert.True(t, d.Overloaded())
	d.UnbindConn(false)
	assert.False(t, d.Overloaded(), "an unbind below the low mark clears")
}

func TestThresholdEditsSpecExample(t *testing.T) {
	// Dest A with -x 4 and 4 held connections, then edits and binds.
	type step struct {
		total        int32  // bring A to this many held connections first
		upper, lower uint32 // then edit to these thresholds
		current      bool   // OVERLOAD after the edit, oracle kernel
		stock        bool   // and under the stock 6.1 source
	}
	steps := []struct {
		name string
		step
	}{
		{"-x 4 at 4 connections overloads", step{4, 4, 0, true, true}},
		{"-x 5 keeps the flag (4 ≥ L = 4); stock clears it", step{4, 5, 0, true, false}},
		{"-x 6 clears it (L = 5)", step{4, 6, 0, false, false}},
		{"a weight-only edit at 5 repeating -x 6 changes nothing", step{5, 6, 0, false, false}},
		{"the 6th bind sets it", step{6, 6, 0, true, true}},
		{"-x 8 -y 7 at 6 clears it; so does stock (8 > 6)", step{6, 8, 7, false, false}},
		{"-x 3 at 7 sets it before any bind; stock leaves it unset", step{7, 3, 0, true, false}},
		{"-x 0 clears it", step{7, 0, 0, false, false}},
	}
	for _, p := range []Profile{ProfileCurrent, Profile61Stock} {
		d := &Dest{}
		d.SetThresholds(4, 0, p)
		for _, s := range steps {
			conns(d, s.total)
			d.SetThresholds(s.upper, s.lower, p)
			want := s.current
			if p == Profile61Stock {
				want = s.stock
			}
			assert.Equal(t, want, d.Overloaded(), "%s: %s", p, s.name)
		}
	}
}

func TestOverheadByProfile(t *testing.T) {
	d := &Dest{ActiveConns: 2, InactConns: 5}
	assert.Equal(t, int64(2*257+5), d.Overhead(ProfileCurrent))
	assert.Equal(t, int64(2*256+5), d.Overhead(Profile61Stock))
}

func TestLastWeightRemembersTheLastNonZeroWeight(t *testing.T) {
	d := &Dest{}
	d.SetWeight(0, true)
	assert.Equal(t, int32(0), d.LastWeight, "set on add whatever the weight")
	d.SetWeight(3, false)
	d.SetWeight(0, false)
	assert.Equal(t, int32(0), d.Weight)
	assert.Equal(t, int32(3), d.LastWeight, "an edit to 0 keeps it")
}

func TestParseFlagsFollowsIpvsadm(t *testing.T) {
	f, err := ParseFlags("sh", "sh-fallback,sh-port")
	assert.NoError(t, err)
	assert.Equal(t, FlagSched1|FlagSched2, f)
	assert.Equal(t, []string{"sh-fallback", "sh-port"}, FlagNames("sh", f))
	f, err = ParseFlags("rr", "flag-3")
	assert.NoError(t, err)
	assert.Equal(t, FlagSched3, f)
	_, err = ParseFlags("wlc", "sh-port")
	assert.EqualError(t, err, "incompatible scheduler flag `sh-port'")
	_, err = ParseFlags("sh", "mh-port")
	assert.EqualError(t, err, "incompatible scheduler flag `mh-port'")
	_, err = ParseFlags("mh", "mh-spin")
	assert.EqualError(t, err, "invalid scheduler flag `mh-spin'")
}
