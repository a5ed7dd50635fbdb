package ipvsadm

import (
	"fmt"
	"net/netip"
	"strings"
	"syscall"
	"time"
)

// listAll is list_all: the header line (not for -S), the title and every
// service, sorted unless --nosort.
func (r *runner) listAll(f format) {
	snap := r.d.Snapshot()
	if f&fmtRule == 0 {
		fmt.Fprintf(r.out, "IP Virtual Server version 1.2.1 (size=%d)\n", snap.ConnTabSize)
	}
	services := append([]ServiceEntry(nil), snap.Services...)
	if f&fmtNoSort == 0 {
		mergeSort(services, compareServices)
	}
	r.printTitle(f)
	for i := range services {
		r.printService(&services[i], f)
	}
}

// listService is list_service: -L with a service prints the title and that
// service only; a missing one is "No such service" and exit status 1.
func (r *runner) listService(svc *svcSpec, f format) error {
	r.op = opGetService
	snap := r.d.Snapshot()
	k := svc.key()
	for i := range snap.Services {
		if sameService(snap.Services[i].Key, k) {
			r.printTitle(f)
			r.op = opGetDests
			r.printService(&snap.Services[i], f)
			return nil
		}
	}
	fmt.Fprintf(r.err, "%s\n", r.strerror(syscall.ESRCH))
	return &exit{1}
}

// sameService matches keys as the kernel's service lookup does: fwmark
// services by family and mark, the others by family, protocol, address
// and port.
func sameService(a, b ServiceKey) bool {
	if a.FWMark != 0 || b.FWMark != 0 {
		return a.AF == b.AF && a.FWMark == b.FWMark
	}
	return a.AF == b.AF && a.Protocol == b.Protocol && a.Addr == b.Addr && a.Port == b.Port
}

func (r *runner) listTimeout() {
	r.op = opGetTimeout
	t := r.d.Snapshot().Timeouts
	fmt.Fprintf(r.out, "Timeout (tcp tcpfin udp): %d %d %d\n", seconds(t.TCP), seconds(t.TCPFin), seconds(t.UDP))
}

func seconds(d time.Duration) int32 { return int32(d / time.Second) }

func (r *runner) listDaemons() {
	r.op = opGetDaemon
	for _, d := range r.d.Snapshot().Daemons {
		var kind string
		switch {
		case d.State&DaemonMaster != 0:
			kind = "master"
		case d.State&DaemonBackup != 0:
			kind = "backup"
		default:
			continue
		}
		fmt.Fprintf(r.out, "%s sync daemon (mcast=%s, syncid=%d", kind, d.MCastIfn, d.SyncID)
		if d.SyncMaxLen != 0 {
			fmt.Fprintf(r.out, ", maxlen=%d", d.SyncMaxLen)
		}
		if d.MCastGroup.IsValid() {
			fmt.Fprintf(r.out, ", group=%s", inetNtop(d.MCastGroup))
		}
		if d.MCastPort != 0 {
			fmt.Fprintf(r.out, ", port=%d", d.MCastPort)
		}
		if d.MCastTTL != 0 {
			fmt.Fprintf(r.out, ", ttl=%d", d.MCastTTL)
		}
		r.out.WriteString(")\n")
	}
}

// listConns is list_conn: /proc/net/ip_vs_conn as ipvsadm reprints it.
func (r *runner) listConns(f format) {
	r.out.WriteString("IPVS connection entries\n")
	if f&fmtPersistentConn != 0 {
		fmt.Fprintf(r.out, "pro expire %-11s %-18s %-18s %-18s %-16s %s\n", "state", "source", "virtual", "destination", "pe name", "pe_data")
	} else {
		fmt.Fprintf(r.out, "pro expire %-11s %-18s %-18s %s\n", "state", "source", "virtual", "destination")
	}
	for _, c := range r.d.Conns() {
		r.printConn(&c, f)
	}
}

// procProtoName is the kernel's ip_vs_proto_name, the first /proc column.
func procProtoName(p Protocol) string {
	switch p {
	case ProtoIP:
		return "IP"
	case ProtoTCP:
		return "TCP"
	case ProtoUDP:
		return "UDP"
	case ProtoSCTP:
		return "SCTP"
	case 1:
		return "ICMP"
	case 58:
		return "ICMPv6"
	}
	return fmt.Sprintf("IP_%d", p)
}

func (r *runner) printConn(c *ConnEntry, f format) {
	proto := c.Protocol
	if proto != ProtoTCP && proto != ProtoUDP && proto != ProtoSCTP {
		proto = ProtoIP
	}
	name := func(ap netip.AddrPort) string { return addrPortName(ap.Addr(), ap.Port(), proto, f) }
	secs := int64(c.Expires / time.Second)
	if secs < 0 {
		secs = 0
	}
	expire := fmt.Sprintf("%02d:%02d", secs/60, secs%60)
	// ipvsadm scans each /proc field with %s: one word each.
	peName, peData := firstWord(c.PEName), firstWord(c.PEData)
	pn := procProtoName(c.Protocol)
	state := firstWord(c.State)
	if f&fmtPersistentConn != 0 && peName != "" && peData != "" {
		fmt.Fprintf(r.out, "%-3s %-6s %-11s %-18s %-18s %-16s %-18s %s\n", pn, expire, state,
			name(c.Client), name(c.Virtual), name(c.Dest), peName, peData)
		return
	}
	fmt.Fprintf(r.out, "%-3s %-6s %-11s %-18s %-18s %s\n", pn, expire, state,
		name(c.Client), name(c.Virtual), name(c.Dest))
}

func firstWord(s string) string {
	if f := strings.Fields(s); len(f) > 0 {
		return f[0]
	}
	return ""
}

// isIPv6 is the address family test ipvsadm makes with an entry's af; the
// zero Addr counts as IPv4 0.0.0.0.
func isIPv6(a netip.Addr) bool { return a.Is6() }

// addrPortName is addrport_to_anyname. With -n: inet_ntop and the decimal
// port, IPv6 in brackets. Without: reverse DNS is not consulted (a lab has
// none, and a failed lookup prints the number), ports get their
// /etc/services name for TCP, UDP and SCTP.
func addrPortName(a netip.Addr, port uint16, proto Protocol, f format) string {
	host := "0.0.0.0"
	if a.IsValid() {
		host = inetNtop(a)
	}
	if isIPv6(a) {
		host = "[" + host + "]"
	}
	if f&fmtNumeric == 0 {
		if name, ok := portToService(port, proto); ok {
			return host + ":" + name
		}
	}
	return fmt.Sprintf("%s:%d", host, port)
}

func (r *runner) printTitle(f format) {
	switch {
	case f&fmtStats != 0:
		fmt.Fprintf(r.out, "%-33s %8s %8s %8s %8s %8s\n  -> RemoteAddress:Port\n",
			"Prot LocalAddress:Port", "Conns", "InPkts", "OutPkts", "InBytes", "OutBytes")
	case f&fmtRate != 0:
		fmt.Fprintf(r.out, "%-33s %8s %8s %8s %8s %8s\n  -> RemoteAddress:Port\n",
			"Prot LocalAddress:Port", "CPS", "InPPS", "OutPPS", "InBPS", "OutBPS")
	case f&fmtThresholds != 0:
		fmt.Fprintf(r.out, "%-33s %-10s %-10s %-10s %-10s\n  -> RemoteAddress:Port\n",
			"Prot LocalAddress:Port", "Uthreshold", "Lthreshold", "ActiveConn", "InActConn")
	case f&fmtPersistentConn != 0:
		fmt.Fprintf(r.out, "%-33s %-9s %-11s %-10s %-10s\n  -> RemoteAddress:Port\n",
			"Prot LocalAddress:Port", "Weight", "PersistConn", "ActiveConn", "InActConn")
	case f&fmtTunInfo != 0:
		r.out.WriteString("Prot LocalAddress:Port Scheduler Flags\n" +
			"  -> RemoteAddress:Port           Forward TunnelInfo    Weight ActiveConn InActConn\n")
	case f&fmtRule == 0:
		r.out.WriteString("Prot LocalAddress:Port Scheduler Flags\n" +
			"  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n")
	}
}

func protocolName(p Protocol) string {
	switch p {
	case ProtoTCP:
		return "TCP"
	case ProtoUDP:
		return "UDP"
	case ProtoSCTP:
		return "SCTP"
	}
	return "?"
}

func protocolOption(p Protocol) string {
	switch p {
	case ProtoTCP:
		return "-t"
	case ProtoUDP:
		return "-u"
	case ProtoSCTP:
		return "--sctp-service"
	}
	return "--xxx-service"
}

var methodNames = [...]string{MethodMasq: "Masq", MethodLocal: "Local", MethodTunnel: "Tunnel", MethodRoute: "Route"}
var methodSwitches = [...]string{MethodMasq: "-m", MethodLocal: "-g", MethodTunnel: "-i", MethodRoute: "-g"}
var tunFlagNames = [...]string{"-c", "+c", "r+c"}
var tunFlagOptions = [...]string{"--tun-nocsum", "--tun-csum", "--tun-remcsum"}

// indexName is names[i], or "(null)" where the C array would be read out
// of bounds.
func indexName(names []string, i int) string {
	if i < 0 || i >= len(names) {
		return "(null)"
	}
	return names[i]
}

// serviceName is the svc_name print_service_entry builds.
func serviceName(se *ServiceEntry, f format) string {
	k := se.Key
	if k.FWMark != 0 {
		// Debian's ipvsadm 1.31 prints the mark with %d.
		mark := int32(k.FWMark)
		switch {
		case f&fmtRule != 0 && k.AF == FamilyIPv6:
			return fmt.Sprintf("-f %d -6", mark)
		case f&fmtRule != 0:
			return fmt.Sprintf("-f %d", mark)
		case k.AF == FamilyIPv6:
			return fmt.Sprintf("FWM  %d IPv6", mark)
		}
		return fmt.Sprintf("FWM  %d", mark)
	}
	vname := addrPortName(k.Addr, k.Port, k.Protocol, f)
	if f&fmtRule != 0 {
		return protocolOption(k.Protocol) + " " + vname
	}
	name := fmt.Sprintf("%-4s %s", protocolName(k.Protocol), vname)
	if k.AF != FamilyIPv6 {
		name = truncate(name, 33)
	}
	return name
}

// schedFlagNames is print_sched_flags: the names of the scheduler flags as
// the service's scheduler knows them (possibly none).
func schedFlagNames(se *ServiceEntry) string {
	var names []string
	switch se.Scheduler {
	case "sh", "mh":
		if se.Flags&SvcSched1 != 0 {
			names = append(names, se.Scheduler+"-fallback")
		}
		if se.Flags&SvcSched2 != 0 {
			names = append(names, se.Scheduler+"-port")
		}
	default:
		for i, fl := range []ServiceFlags{SvcSched1, SvcSched2, SvcSched3} {
			if se.Flags&fl != 0 {
				names = append(names, fmt.Sprintf("flag-%d", i+1))
			}
		}
	}
	return strings.Join(names, ",")
}

// maskText is the persistence netmask as -L and -S print it, or "" for the
// default (255.255.255.255 or /128).
func maskText(se *ServiceEntry) string {
	switch se.Key.AF {
	case FamilyIPv4:
		if se.Netmask != 0xffffffff {
			return addrFromUint32(se.Netmask).String()
		}
	case FamilyIPv6:
		if se.Netmask != 128 {
			return fmt.Sprintf("%d", int32(se.Netmask))
		}
	}
	return ""
}

const schedFlagMask = SvcSched1 | SvcSched2 | SvcSched3

func (r *runner) printService(se *ServiceEntry, f format) {
	name := serviceName(se, f)
	w := r.out
	switch {
	case f&fmtRule != 0:
		fmt.Fprintf(w, "-A %s -s %s", name, se.Scheduler)
		if se.Flags&SvcPersistent != 0 {
			fmt.Fprintf(w, " -p %d", uint32(se.Timeout/time.Second))
			if m := maskText(se); m != "" {
				fmt.Fprintf(w, " -M %s", m)
			}
		}
		if se.PE != "" {
			fmt.Fprintf(w, " --pe %s", se.PE)
		}
		if se.Flags&SvcOnePacket != 0 {
			w.WriteString(" -o")
		}
		if se.Flags&schedFlagMask != 0 {
			fmt.Fprintf(w, " -b %s", schedFlagNames(se))
		}
	case f&fmtStats != 0:
		fmt.Fprintf(w, "%-33s", name)
		r.largenums(f, se.Stats.Conns, se.Stats.InPkts, se.Stats.OutPkts, se.Stats.InBytes, se.Stats.OutBytes)
	case f&fmtRate != 0:
		fmt.Fprintf(w, "%-33s", name)
		r.largenums(f, se.Stats.CPS, se.Stats.InPPS, se.Stats.OutPPS, se.Stats.InBPS, se.Stats.OutBPS)
	default:
		fmt.Fprintf(w, "%s %s", name, se.Scheduler)
		if se.Flags&schedFlagMask != 0 {
			fmt.Fprintf(w, " (%s)", schedFlagNames(se))
		}
		if se.Flags&SvcPersistent != 0 {
			fmt.Fprintf(w, " persistent %d", uint32(se.Timeout/time.Second))
			if m := maskText(se); m != "" {
				fmt.Fprintf(w, " mask %s", m)
			}
			if se.PE != "" {
				fmt.Fprintf(w, " pe %s", se.PE)
			}
		}
		if se.Flags&SvcOnePacket != 0 {
			w.WriteString(" ops")
		}
	}
	w.WriteByte('\n')

	dests := append([]DestEntry(nil), se.Dests...)
	if f&fmtNoSort == 0 {
		mergeSort(dests, compareDests)
	}
	for i := range dests {
		r.printDest(name, se, &dests[i], f)
	}
}

func (r *runner) printDest(svcName string, se *ServiceEntry, e *DestEntry, f format) {
	w := r.out
	dname := addrPortName(e.Addr, e.Port, se.Key.Protocol, f)
	if f&fmtRule == 0 && !isIPv6(e.Addr) {
		dname = truncate(dname, 28)
	}
	method := indexName(methodNames[:], int(e.Method))
	switch {
	case f&fmtRule != 0:
		fmt.Fprintf(w, "-a %s -r %s %s -w %d", svcName, dname, indexName(methodSwitches[:], int(e.Method)), e.Weight)
		if e.Method == MethodTunnel && int(e.TunType) < len(tunNames) {
			fmt.Fprintf(w, " --tun-type %s", tunNames[e.TunType])
			switch e.TunType {
			case TunGUE:
				fmt.Fprintf(w, " --tun-port %d %s", e.TunPort, indexName(tunFlagOptions[:], int(e.TunFlags)))
			case TunGRE:
				fmt.Fprintf(w, " %s", indexName(tunFlagOptions[:], int(e.TunFlags)))
			}
		}
		w.WriteByte('\n')
	case f&fmtStats != 0:
		fmt.Fprintf(w, "  -> %-28s", dname)
		r.largenums(f, e.Stats.Conns, e.Stats.InPkts, e.Stats.OutPkts, e.Stats.InBytes, e.Stats.OutBytes)
		w.WriteByte('\n')
	case f&fmtRate != 0:
		fmt.Fprintf(w, "  -> %-28s %8d %8d %8d", dname, e.Stats.CPS, e.Stats.InPPS, e.Stats.OutPPS)
		r.largenums(f, e.Stats.InBPS, e.Stats.OutBPS)
		w.WriteByte('\n')
	case f&fmtThresholds != 0:
		fmt.Fprintf(w, "  -> %-28s %-10d %-10d %-10d %-10d\n", dname, e.UThreshold, e.LThreshold, e.ActiveConns, e.InactConns)
	case f&fmtPersistentConn != 0:
		fmt.Fprintf(w, "  -> %-28s %-9d %-11d %-10d %-10d\n", dname, uint32(e.Weight), e.PersistConns, e.ActiveConns, e.InactConns)
	case f&fmtTunInfo != 0:
		fmt.Fprintf(w, "  -> %-28s %-7s %-13s %-6d %-10d %-10d\n", dname, method, tunnelInfo(e), e.Weight, e.ActiveConns, e.InactConns)
	default:
		fmt.Fprintf(w, "  -> %-28s %-7s %-6d %-10d %-10d\n", dname, method, e.Weight, e.ActiveConns, e.InactConns)
	}
}

// tunnelInfo is fwd_tun_info: ipip, gue:<port>:<csum>, gre:<csum>, or n/a.
func tunnelInfo(e *DestEntry) string {
	if e.Method != MethodTunnel {
		return "n/a"
	}
	switch e.TunType {
	case TunIPIP:
		return "ipip"
	case TunGUE:
		return truncate(fmt.Sprintf("gue:%d:%s", e.TunPort, indexName(tunFlagNames[:], int(e.TunFlags))), 15)
	case TunGRE:
		return truncate("gre:"+indexName(tunFlagNames[:], int(e.TunFlags)), 15)
	}
	return "n/a"
}

// largenums prints each value in print_largenum's format.
func (r *runner) largenums(f format, vs ...uint64) {
	for _, v := range vs {
		r.out.WriteString(largenum(v, f))
	}
}

// largenum is print_largenum: width 9, or a K/M/G/T-scaled value in width
// 8 plus the unit; with --exact the full number, at least width 9.
func largenum(v uint64, f format) string {
	if f&fmtExact != 0 {
		s := fmt.Sprintf("%d", v)
		if len(s) <= 8 {
			return fmt.Sprintf("%9d", v)
		}
		return " " + s
	}
	switch {
	case v < 100000000:
		return fmt.Sprintf("%9d", v)
	case v < 1000000000:
		return fmt.Sprintf("%8dK", v/1000)
	case v < 100000000000:
		return fmt.Sprintf("%8dM", v/1000000)
	case v < 100000000000000:
		return fmt.Sprintf("%8dG", v/1000000000)
	}
	return fmt.Sprintf("%8dT", v/1000000000000)
}
