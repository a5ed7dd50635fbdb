package topo

import (
	"os"
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netns"
)

// A build killed before its first veth pair leaves a fabric with none:
// deleting the (empty) group must succeed, not fail with ENODEV.
func TestDeleteVethsOfAnEmptyFabric(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for a network namespace")
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	require.NoError(t, err)
	defer orig.Close()
	fabric, err := netns.New() // unnamed: gone when the handle closes
	require.NoError(t, err)
	defer fabric.Close()
	require.NoError(t, netns.Set(orig))

	v, err := newVethMaker(nsFd(fabric))
	require.NoError(t, err)
	defer v.close()
	require.NoError(t, v.deleteVeths())
}

// nsFd lends a namespace handle's descriptor without taking ownership.
type nsFd netns.NsHandle

func (h nsFd) Fd() uintptr { return uintptr(h) }
