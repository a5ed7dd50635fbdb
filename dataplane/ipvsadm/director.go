// Package ipvsadm is the ipvsadm 1.31 program without the kernel: it parses
// ipvsadm's command line exactly as ipvsadm does, sends fully validated
// requests to a Director (the kernel's role), and prints every listing,
// message and exit status byte for byte as ipvsadm prints them (spec §8).
//
// It owns the grammar, the defaults ipvsadm fills in (wlc, persistence 360 s,
// weight 1, DR, the DR/TUN port forcing), the validity matrix, the error
// wording, the sort order of listings and the save format. It does not own
// services, destinations, connections or schedulers: those live in the
// director core behind the Director interface.
//
// The reference is the ipvsadm 1.31 Debian 12 ships, checked against the
// kipvs oracle VM (testdata/kipvs): it accepts weights up to 2147483647 and
// prints fwmarks as signed numbers (FWM  -1 for 4294967295), where the
// upstream source differs. Host names are not resolved (a lab has no DNS:
// a name is refused as an unresolvable one is, and listings print numbers);
// port names come from a built-in copy of Debian's /etc/services.
package ipvsadm

import (
	"net/netip"
	"time"
)

// Director is what ipvsadm talks to, in the kernel's role. Every request
// arrives fully validated by ipvsadm's rules; the Director applies the
// kernel's own rules and reports failures as a syscall.Errno (possibly
// wrapped), which ipvsadm turns into its context-dependent message
// (ipvs_strerror): EEXIST, ESRCH, ENOENT, EINVAL, ERANGE, EPERM, ...
// Any other error is printed as its text with exit status 255.
type Director interface {
	// AddService is IP_VS_SO_SET_ADD: EEXIST if the key exists, ENOENT for an
	// unknown scheduler or persistence engine, EINVAL for a bad IPv6 prefix.
	AddService(s ServiceSpec) error
	// EditService is IP_VS_SO_SET_EDIT: it replaces scheduler, flags,
	// timeout, netmask and pe of an existing service (ESRCH if missing).
	EditService(s ServiceSpec) error
	// DelService is IP_VS_SO_SET_DEL (ESRCH if missing).
	DelService(k ServiceKey) error
	// Flush is IP_VS_SO_SET_FLUSH: delete every service.
	Flush() error
	// AddDest is IP_VS_SO_SET_ADDDEST: ESRCH if the service is missing,
	// EEXIST if the destination exists, ERANGE if LThreshold > UThreshold,
	// EINVAL for a non-unicast address or a GUE tunnel without a port.
	AddDest(k ServiceKey, d DestSpec) error
	// EditDest is IP_VS_SO_SET_EDITDEST: every field of d replaces the
	// destination's; ESRCH for a missing service, ENOENT for a missing dest.
	EditDest(k ServiceKey, d DestSpec) error
	// DelDest is IP_VS_SO_SET_DELDEST: ESRCH for a missing service, ENOENT
	// for a missing destination.
	DelDest(k ServiceKey, dest netip.AddrPort) error
	// Zero is IP_VS_SO_SET_ZERO: zero the counters of service k, or of every
	// service and the totals when k is the zero ServiceKey (ESRCH if missing).
	Zero(k ServiceKey) error
	// SetTimeouts is IP_VS_SO_SET_TIMEOUT; a zero field leaves that timeout
	// unchanged.
	SetTimeouts(t Timeouts) error
	// StartDaemon is IP_VS_SO_SET_STARTDAEMON: EEXIST if a daemon of that
	// state already runs. A Director without sync returns an error of its
	// own (printed as its text, exit status 255).
	StartDaemon(d DaemonSpec) error
	// StopDaemon is IP_VS_SO_SET_STOPDAEMON: ESRCH if no daemon of that
	// state runs.
	StopDaemon(state DaemonState, syncID uint8) error
	// Snapshot returns what every listing except -c needs, at the
	// Director's current time.
	Snapshot() Snapshot
	// Conns returns the connection table as /proc/net/ip_vs_conn shows it,
	// in the kernel's hash order (ipvsadm -c does not sort), at the
	// Director's current time.
	Conns() []ConnEntry
}

// Family is an address family, with the kernel's values (it takes part in
// ipvsadm's sort order: IPv4 before IPv6).
type Family uint16

const (
	FamilyIPv4 Family = 2  // AF_INET
	FamilyIPv6 Family = 10 // AF_INET6
)

// Protocol is an IP protocol number (IPPROTO_*).
type Protocol uint8

const (
	ProtoIP   Protocol = 0 // IPPROTO_IP: fwmark persistence templates
	ProtoTCP  Protocol = 6
	ProtoUDP  Protocol = 17
	ProtoSCTP Protocol = 132
)

// ServiceKey identifies a virtual service: (af, protocol, addr, port), or
// (af, fwmark) for a firewall-mark service. It is comparable, so the core
// may use it as a map key. ipvsadm builds fwmark keys with only AF and
// FWMark set (Protocol 0, Addr the zero netip.Addr, Port 0).
type ServiceKey struct {
	AF       Family     // af
	Protocol Protocol   // protocol; 0 for fwmark services
	Addr     netip.Addr // addr; unmapped, of family AF; zero for fwmark services
	Port     uint16     // port (host order); 0 is an all-ports service
	FWMark   uint32     // fwmark; non-zero makes this a firewall-mark service
}

// IsFWMark reports whether k names a firewall-mark service.
func (k ServiceKey) IsFWMark() bool { return k.FWMark != 0 }

// ServiceFlags are the kernel's IP_VS_SVC_F_* bits.
type ServiceFlags uint32

const (
	SvcPersistent ServiceFlags = 0x0001 // IP_VS_SVC_F_PERSISTENT (-p)
	SvcHashed     ServiceFlags = 0x0002 // IP_VS_SVC_F_HASHED, kernel-internal
	SvcOnePacket  ServiceFlags = 0x0004 // IP_VS_SVC_F_ONEPACKET (-o)
	SvcSched1     ServiceFlags = 0x0008 // IP_VS_SVC_F_SCHED1: sh-fallback, mh-fallback, flag-1
	SvcSched2     ServiceFlags = 0x0010 // IP_VS_SVC_F_SCHED2: sh-port, mh-port, flag-2
	SvcSched3     ServiceFlags = 0x0020 // IP_VS_SVC_F_SCHED3: flag-3
)

// ServiceSpec is a virtual service as ipvsadm sends it on -A and -E and as
// the kernel returns it (struct ip_vs_service_user / IPVS_SVC_ATTR_*).
type ServiceSpec struct {
	Key ServiceKey
	// Scheduler is sched_name, at most 15 bytes; ipvsadm fills in "wlc".
	Scheduler string
	// Flags is flags; ipvsadm always sends the full set (an edit replaces it).
	Flags ServiceFlags
	// Timeout is the persistence timeout (timeout, whole seconds in the
	// kernel); meaningful with SvcPersistent.
	Timeout time.Duration
	// Netmask is netmask: for IPv4 the persistence mask as a 32-bit value
	// (0xFFFFFF00 is 255.255.255.0; default 0xFFFFFFFF), for IPv6 the
	// prefix length (1..128, default 128).
	Netmask uint32
	// PE is pe_name, the persistence engine ("sip"), or "".
	PE string
}

// Method is a forwarding method: conn_flags & IP_VS_CONN_F_FWD_MASK.
type Method uint8

const (
	MethodMasq   Method = 0 // IP_VS_CONN_F_MASQ (-m, NAT)
	MethodLocal  Method = 1 // IP_VS_CONN_F_LOCALNODE
	MethodTunnel Method = 2 // IP_VS_CONN_F_TUNNEL (-i)
	MethodRoute  Method = 3 // IP_VS_CONN_F_DROUTE (-g, the default)
)

// TunType is tun_type (IP_VS_CONN_F_TUNNEL_TYPE_*).
type TunType uint8

const (
	TunIPIP TunType = 0
	TunGUE  TunType = 1
	TunGRE  TunType = 2
)

// TunFlags is tun_flags (IP_VS_TUNNEL_ENCAP_FLAG_*); 0 is --tun-nocsum.
type TunFlags uint16

const (
	TunCsum    TunFlags = 1 << 0 // IP_VS_TUNNEL_ENCAP_FLAG_CSUM (--tun-csum)
	TunRemCsum TunFlags = 1 << 1 // IP_VS_TUNNEL_ENCAP_FLAG_REMCSUM (--tun-remcsum)
)

// DestSpec is a destination as ipvsadm sends it on -a and -e and as the
// kernel returns it (struct ip_vs_dest_user / IPVS_DEST_ATTR_*). On -e
// every field replaces the old one (ipvsadm sends its defaults for what
// the command line leaves out).
type DestSpec struct {
	// Addr is addr; its family (addr_family) may differ from the service's
	// only for tunnel destinations.
	Addr netip.Addr
	// Port is port; ipvsadm forces it to the service port for DR and TUN
	// destinations of non-fwmark services.
	Port uint16
	// Method is conn_flags & IP_VS_CONN_F_FWD_MASK.
	Method Method
	// Weight is weight (ipvsadm: 0..65535, default 1).
	Weight int32
	// UThreshold and LThreshold are u_threshold and l_threshold (0 = unset).
	UThreshold, LThreshold uint32
	// TunType, TunPort and TunFlags are tun_type, tun_port, tun_flags.
	TunType  TunType
	TunPort  uint16
	TunFlags TunFlags
}

// AddrPort is the destination's addr:port.
func (d DestSpec) AddrPort() netip.AddrPort { return netip.AddrPortFrom(d.Addr, d.Port) }

// Timeouts are the connection timeouts of --set and --timeout
// (struct ip_vs_timeout_user; whole seconds in the kernel). A zero field in
// SetTimeouts means unchanged.
type Timeouts struct {
	TCP    time.Duration // tcp_timeout: TCP ESTABLISHED
	TCPFin time.Duration // tcp_fin_timeout: TCP FIN_WAIT
	UDP    time.Duration // udp_timeout
}

// DaemonState is the sync daemon role (IP_VS_STATE_*).
type DaemonState uint8

const (
	DaemonMaster DaemonState = 1 // IP_VS_STATE_MASTER
	DaemonBackup DaemonState = 2 // IP_VS_STATE_BACKUP
)

// DaemonSpec is a sync daemon (IPVS_DAEMON_ATTR_*). In StartDaemon a zero
// optional field means "kernel default"; in a Snapshot the kernel reports
// the values in use (maxlen, group, port and ttl filled in), and --daemon
// lists each one that is non-zero.
type DaemonSpec struct {
	State      DaemonState
	MCastIfn   string     // mcast_ifn, default "eth0"
	SyncID     uint8      // syncid
	SyncMaxLen uint16     // sync_maxlen
	MCastGroup netip.Addr // mcast_group
	MCastPort  uint16     // mcast_port
	MCastTTL   uint8      // mcast_ttl
}

// Stats are a service's or destination's counters and rates
// (struct ip_vs_stats64 / IPVS_STATS_ATTR_*), as last folded by the
// estimator.
type Stats struct {
	Conns    uint64 // conns: connections scheduled
	InPkts   uint64 // inpkts: packets client -> real server
	OutPkts  uint64 // outpkts: packets real server -> client
	InBytes  uint64 // inbytes
	OutBytes uint64 // outbytes
	CPS      uint64 // cps: connections per second (estimator)
	InPPS    uint64 // inpps
	OutPPS   uint64 // outpps
	InBPS    uint64 // inbps: bytes per second in
	OutBPS   uint64 // outbps
}

// ServiceEntry is one service of a Snapshot (struct ip_vs_service_entry).
type ServiceEntry struct {
	ServiceSpec
	Stats Stats
	// Dests are the destinations in kernel list order (the most recently
	// added first); ipvsadm sorts them unless --nosort.
	Dests []DestEntry
}

// DestEntry is one destination of a ServiceEntry (struct ip_vs_dest_entry).
type DestEntry struct {
	DestSpec
	// ActiveConns is activeconns; InactConns is what the kernel reports as
	// inactconns (inactive connections, never below 0); PersistConns is
	// persistconns (templates pointing at this destination).
	ActiveConns, InactConns, PersistConns uint32
	Stats                                 Stats
}

// Snapshot is everything the listings other than -c read from the kernel.
type Snapshot struct {
	// ConnTabSize is the connection hash table size of the header line
	// (IP_VS_CONN_TAB_SIZE, 4096).
	ConnTabSize int
	// Services are in the kernel's order (hash-bucket order, newest first in
	// a bucket, then the fwmark table); ipvsadm sorts them unless --nosort.
	Services []ServiceEntry
	Timeouts Timeouts
	// Daemons are the running sync daemons, master first.
	Daemons []DaemonSpec
}

// ConnEntry is one line of /proc/net/ip_vs_conn.
type ConnEntry struct {
	// Protocol is the connection's protocol; a fwmark persistence template
	// has ProtoIP.
	Protocol Protocol
	Client   netip.AddrPort // caddr:cport
	// Virtual is vaddr:vport. For a template of a fwmark service the kernel
	// stores the mark here as an address (0.0.0.1 for mark 1) with port 0.
	Virtual netip.AddrPort
	Dest    netip.AddrPort // daddr:dport
	// State is the protocol state name the kernel prints (ESTABLISHED,
	// FIN_WAIT, UDP, NONE, ...).
	State string
	// Expires is the time left on the connection's timer.
	Expires time.Duration
	// Template is set for persistence templates (IP_VS_CONN_F_TEMPLATE).
	Template bool
	// PEName and PEData are the persistence engine's name and its data, for
	// templates of a service with --pe; both empty otherwise.
	PEName, PEData string
}
