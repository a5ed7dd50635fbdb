package ipvsadm

import "net/netip"

// ipvsadm sorts with glibc's qsort, which in glibc 2.36 is a top-down merge
// sort, and with comparators that return the difference of two unsigned
// values converted to int. Addresses and marks 2^31 or more apart
// therefore compare the wrong way round, the order is not transitive, and
// the printed order depends on the algorithm and on the input order; both
// are reproduced here.

// mergeSort is glibc's msort_with_tmp: sort the first ⌊n/2⌋ and the rest,
// then merge, taking from the left run while cmp(left, right) <= 0.
func mergeSort[T any](s []T, cmp func(a, b *T) int32) {
	if len(s) < 2 {
		return
	}
	msort(s, make([]T, len(s)), cmp)
}

func msort[T any](b, tmp []T, cmp func(a, b *T) int32) {
	n := len(b)
	if n <= 1 {
		return
	}
	n1 := n / 2
	b1, b2 := b[:n1], b[n1:]
	msort(b1, tmp, cmp)
	msort(b2, tmp, cmp)
	i, j, k := 0, 0, 0
	for i < len(b1) && j < len(b2) {
		if cmp(&b1[i], &b2[j]) <= 0 {
			tmp[k] = b1[i]
			i++
		} else {
			tmp[k] = b2[j]
			j++
		}
		k++
	}
	k += copy(tmp[k:], b1[i:])
	copy(b, tmp[:k])
}

// addrWords is an address as the comparators read it: four host-order
// 32-bit words, an IPv4 address in the first.
func addrWords(a netip.Addr) [4]uint32 {
	var w [4]uint32
	switch {
	case a.Is4():
		b := a.As4()
		w[0] = uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	case a.Is6():
		b := a.As16()
		for i := range w {
			w[i] = uint32(b[4*i])<<24 | uint32(b[4*i+1])<<16 | uint32(b[4*i+2])<<8 | uint32(b[4*i+3])
		}
	}
	return w
}

// compareAddrs compares word by word (all four when v6 is set, else the
// first), each as int(x - y).
func compareAddrs(a, b netip.Addr, v6 bool) int32 {
	wa, wb := addrWords(a), addrWords(b)
	n := 1
	if v6 {
		n = 4
	}
	for i := 0; i < n; i++ {
		if r := int32(wa[i] - wb[i]); r != 0 {
			return r
		}
	}
	return 0
}

// compareServices is ipvs_cmp_services: fwmark, family, protocol, address,
// port.
func compareServices(a, b *ServiceEntry) int32 {
	ka, kb := &a.Key, &b.Key
	if r := int32(ka.FWMark - kb.FWMark); r != 0 {
		return r
	}
	if r := int32(ka.AF) - int32(kb.AF); r != 0 {
		return r
	}
	if r := int32(ka.Protocol) - int32(kb.Protocol); r != 0 {
		return r
	}
	if r := compareAddrs(ka.Addr, kb.Addr, ka.AF == FamilyIPv6); r != 0 {
		return r
	}
	return int32(ka.Port) - int32(kb.Port)
}

// compareDests is ipvs_cmp_dests: address (by the first dest's family),
// then port.
func compareDests(a, b *DestEntry) int32 {
	if r := compareAddrs(a.Addr, b.Addr, a.Addr.Is6()); r != 0 {
		return r
	}
	return int32(a.Port) - int32(b.Port)
}
