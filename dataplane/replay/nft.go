package replay

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/lvslab/lvslab/dataplane"
)

// The nft subset a scenario can use: tables, chains on the prerouting
// hook, and rules that match addresses, protocol and ports and set the
// packet mark — what feeds a firewall-mark service.

// nftCmd is one parsed nft command.
type nftCmd struct {
	verb   string // "add table", "add chain", "add rule", "flush ruleset"
	family string
	table  string
	chain  string
	hook   string
	rule   nftRule
}

type nftRule struct {
	family       string
	saddr, daddr []netip.Prefix
	proto        uint8 // 0: any
	sport, dport []uint16
	mark         uint32
}

// tokens splits nft's arguments as nft's lexer does for this subset.
func nftTokens(words []string) []string {
	s := strings.Join(words, " ")
	for _, sep := range []string{"{", "}", ",", ";"} {
		s = strings.ReplaceAll(s, sep, " "+sep+" ")
	}
	return strings.Fields(s)
}

func parseNft(words []string) (nftCmd, error) {
	t := nftTokens(words)
	if len(t) >= 2 && t[0] == "flush" && t[1] == "ruleset" {
		return nftCmd{verb: "flush ruleset"}, nil
	}
	if len(t) < 4 || t[0] != "add" && t[0] != "create" {
		return nftCmd{}, fmt.Errorf("unsupported command %q", strings.Join(words, " "))
	}
	c := nftCmd{family: t[2], table: t[3]}
	switch t[2] {
	case "ip", "ip6", "inet":
	default:
		return c, fmt.Errorf("unsupported family %q", t[2])
	}
	switch t[1] {
	case "table":
		c.verb = "add table"
		return c, nil
	case "chain":
		c.verb = "add chain"
		if len(t) < 5 {
			return c, errors.New("add chain needs a name")
		}
		c.chain = t[4]
		for i := 5; i+1 < len(t); i++ {
			if t[i] == "hook" {
				c.hook = t[i+1]
			}
		}
		return c, nil
	case "rule":
		c.verb = "add rule"
		if len(t) < 5 {
			return c, errors.New("add rule needs a chain")
		}
		c.chain = t[4]
		r, err := parseRule(t[5:])
		r.family = c.family
		c.rule = r
		return c, err
	}
	return c, fmt.Errorf("unsupported object %q", t[1])
}

// set reads a value or an anonymous set { a, b } starting at t[i].
func set(t []string, i int) (vals []string, next int, err error) {
	if i >= len(t) {
		return nil, i, errors.New("missing value")
	}
	if t[i] != "{" {
		return []string{t[i]}, i + 1, nil
	}
	for i++; i < len(t) && t[i] != "}"; i++ {
		if t[i] != "," {
			vals = append(vals, t[i])
		}
	}
	if i >= len(t) {
		return nil, i, errors.New("unterminated set")
	}
	return vals, i + 1, nil
}

func parseRule(t []string) (nftRule, error) {
	var r nftRule
	haveMark := false
	for i := 0; i < len(t); {
		switch {
		case i+1 < len(t) && (t[i] == "ip" || t[i] == "ip6") && (t[i+1] == "saddr" || t[i+1] == "daddr"):
			vals, next, err := set(t, i+2)
			if err != nil {
				return r, err
			}
			for _, v := range vals {
				p, err := netip.ParsePrefix(v)
				if err != nil {
					a, err2 := netip.ParseAddr(v)
					if err2 != nil {
						return r, fmt.Errorf("bad address %q", v)
					}
					p = netip.PrefixFrom(a, a.BitLen())
				}
				if t[i+1] == "saddr" {
					r.saddr = append(r.saddr, p)
				} else {
					r.daddr = append(r.daddr, p)
				}
			}
			i = next
		case i+1 < len(t) && (t[i] == "tcp" || t[i] == "udp") && (t[i+1] == "sport" || t[i+1] == "dport"):
			r.proto = dataplane.ProtoTCP
			if t[i] == "udp" {
				r.proto = dataplane.ProtoUDP
			}
			vals, next, err := set(t, i+2)
			if err != nil {
				return r, err
			}
			for _, v := range vals {
				p, err := strconv.ParseUint(v, 10, 16)
				if err != nil {
					return r, fmt.Errorf("bad port %q", v)
				}
				if t[i+1] == "sport" {
					r.sport = append(r.sport, uint16(p))
				} else {
					r.dport = append(r.dport, uint16(p))
				}
			}
			i = next
		case i+2 < len(t) && t[i] == "meta" && t[i+1] == "l4proto":
			switch t[i+2] {
			case "tcp":
				r.proto = dataplane.ProtoTCP
			case "udp":
				r.proto = dataplane.ProtoUDP
			default:
				return r, fmt.Errorf("unsupported l4proto %q", t[i+2])
			}
			i += 3
		case i+3 < len(t) && t[i] == "meta" && t[i+1] == "mark" && t[i+2] == "set":
			m, err := strconv.ParseUint(t[i+3], 0, 32)
			if err != nil {
				return r, fmt.Errorf("bad mark %q", t[i+3])
			}
			r.mark, haveMark = uint32(m), true
			i += 4
		case i+2 < len(t) && t[i] == "mark" && t[i+1] == "set":
			m, err := strconv.ParseUint(t[i+2], 0, 32)
			if err != nil {
				return r, fmt.Errorf("bad mark %q", t[i+2])
			}
			r.mark, haveMark = uint32(m), true
			i += 3
		default:
			return r, fmt.Errorf("unsupported rule expression at %q", strings.Join(t[i:], " "))
		}
	}
	if !haveMark {
		return r, errors.New("a rule must set the mark (meta mark set N)")
	}
	return r, nil
}

// ruleset holds the rules of prerouting chains.
type ruleset struct {
	chains map[string]string // "family table chain" → hook
	rules  []nftRule
}

func (rs *ruleset) apply(c nftCmd) error {
	if rs.chains == nil {
		rs.chains = map[string]string{}
	}
	switch c.verb {
	case "flush ruleset":
		*rs = ruleset{}
	case "add chain":
		rs.chains[c.family+" "+c.table+" "+c.chain] = c.hook
	case "add rule":
		hook, ok := rs.chains[c.family+" "+c.table+" "+c.chain]
		if !ok {
			return fmt.Errorf("Error: No such file or directory; did you mean chain ‘%s’ in table %s ‘%s’?", c.chain, c.family, c.table)
		}
		if hook == "prerouting" {
			rs.rules = append(rs.rules, c.rule)
		}
	}
	return nil
}

func matchPrefix(ps []netip.Prefix, a netip.Addr) bool {
	if len(ps) == 0 {
		return true
	}
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func matchPort(ps []uint16, p uint16) bool {
	if len(ps) == 0 {
		return true
	}
	for _, x := range ps {
		if x == p {
			return true
		}
	}
	return false
}

// mark returns the mark the rules give a client packet.
func (rs *ruleset) mark(p *dataplane.Packet) uint32 {
	var m uint32
	for i := range rs.rules {
		r := &rs.rules[i]
		switch {
		case r.family == "ip" && !p.Src.Is4(), r.family == "ip6" && p.Src.Is4():
			continue
		case r.proto != 0 && r.proto != p.Proto:
			continue
		case !matchPrefix(r.saddr, p.Src), !matchPrefix(r.daddr, p.Dst):
			continue
		case !matchPort(r.sport, p.SrcPort), !matchPort(r.dport, p.DstPort):
			continue
		}
		m = r.mark
	}
	return m
}
