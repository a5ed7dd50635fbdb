package dataplane

// TCP connection states (ip_vs_proto_tcp.c, spec §3.5). The numbers are the
// kernel's; listings print TCPStateNames.
const (
	TCPNone uint8 = iota
	TCPEstablished
	TCPSynSent
	TCPSynRecv
	TCPFinWait
	TCPTimeWait
	TCPClose
	TCPCloseWait
	TCPLastAck
	TCPListen
	TCPSynAck
	tcpStates
)

// TCPStateNames are the names ipvsadm -lc and /proc/net/ip_vs_conn show.
var TCPStateNames = [tcpStates]string{
	"NONE", "ESTABLISHED", "SYN_SENT", "SYN_RECV", "FIN_WAIT", "TIME_WAIT",
	"CLOSE", "CLOSE_WAIT", "LAST_ACK", "LISTEN", "SYNACK",
}

// defaultTCPTimeouts are the kernel's tcp_timeouts, in seconds.
var defaultTCPTimeouts = [tcpStates]uint32{2, 900, 120, 60, 120, 120, 10, 60, 30, 120, 120}

// tcpActive reports the states counted in ActiveConn (§3.4).
func tcpActive(s uint8) bool {
	return s == TCPEstablished || s == TCPSynSent || s == TCPSynRecv || s == TCPSynAck
}

// TCP flag bits as they appear in the header's flags byte.
const (
	TCPFin uint8 = 0x01
	TCPSyn uint8 = 0x02
	TCPRst uint8 = 0x04
	TCPAck uint8 = 0x10
)

// tcpEvent is the row of the state table a packet selects: RST before SYN
// before FIN before ACK (tcp_state_idx); -1 for none of them.
func tcpEvent(flags uint8) int {
	switch {
	case flags&TCPRst != 0:
		return 3
	case flags&TCPSyn != 0:
		return 0
	case flags&TCPFin != 0:
		return 1
	case flags&TCPAck != 0:
		return 2
	}
	return -1
}

// Table directions (tcp_state_off): the INPUT-ONLY table serves inbound
// packets of connections that have not seen a reply (NOOUTPUT).
const (
	dirInput = iota
	dirOutput
	dirInputOnly
)

const (
	sNO = TCPNone
	sES = TCPEstablished
	sSS = TCPSynSent
	sSR = TCPSynRecv
	sFW = TCPFinWait
	sTW = TCPTimeWait
	sCL = TCPClose
	sCW = TCPCloseWait
	sLA = TCPLastAck
	sLI = TCPListen
	sSA = TCPSynAck
)

// tcpTable is [direction][event syn,fin,ack,rst][current state] → next state.
type tcpTable [3][4][tcpStates]uint8

// tcpStatesNormal is tcp_states of ip_vs_proto_tcp.c.
var tcpStatesNormal = tcpTable{
	dirInput: {
		/*        NO   ES   SS   SR   FW   TW   CL   CW   LA   LI   SA */
		/*syn*/ {sSR, sES, sES, sSR, sSR, sSR, sSR, sSR, sSR, sSR, sSR},
		/*fin*/ {sCL, sCW, sSS, sTW, sTW, sTW, sCL, sCW, sLA, sLI, sTW},
		/*ack*/ {sES, sES, sSS, sES, sFW, sTW, sCL, sCW, sCL, sLI, sES},
		/*rst*/ {sCL, sCL, sCL, sSR, sCL, sCL, sCL, sCL, sLA, sLI, sSR},
	},
	dirOutput: {
		/*syn*/ {sSS, sES, sSS, sSR, sSS, sSS, sSS, sSS, sSS, sLI, sSR},
		/*fin*/ {sTW, sFW, sSS, sTW, sFW, sTW, sCL, sTW, sLA, sLI, sTW},
		/*ack*/ {sES, sES, sSS, sES, sFW, sTW, sCL, sCW, sLA, sES, sES},
		/*rst*/ {sCL, sCL, sSS, sCL, sCL, sTW, sCL, sCL, sCL, sCL, sCL},
	},
	dirInputOnly: {
		/*syn*/ {sSR, sES, sES, sSR, sSR, sSR, sSR, sSR, sSR, sSR, sSR},
		/*fin*/ {sCL, sFW, sSS, sTW, sFW, sTW, sCL, sCW, sLA, sLI, sTW},
		/*ack*/ {sES, sES, sSS, sES, sFW, sTW, sCL, sCW, sCL, sLI, sES},
		/*rst*/ {sCL, sCL, sCL, sSR, sCL, sCL, sCL, sCL, sLA, sLI, sCL},
	},
}

// tcpStatesSecure is tcp_states_dos, used while secure_tcp is on (§6.1).
var tcpStatesSecure = tcpTable{
	dirInput: {
		/*syn*/ {sSR, sES, sES, sSR, sSR, sSR, sSR, sSR, sSR, sSR, sSA},
		/*fin*/ {sCL, sCW, sSS, sTW, sTW, sTW, sCL, sCW, sLA, sLI, sSA},
		/*ack*/ {sES, sES, sSS, sSR, sFW, sTW, sCL, sCW, sCL, sLI, sSA},
		/*rst*/ {sCL, sCL, sCL, sSR, sCL, sCL, sCL, sCL, sLA, sLI, sCL},
	},
	dirOutput: {
		/*syn*/ {sSS, sES, sSS, sSA, sSS, sSS, sSS, sSS, sSS, sLI, sSA},
		/*fin*/ {sTW, sFW, sSS, sTW, sFW, sTW, sCL, sTW, sLA, sLI, sTW},
		/*ack*/ {sES, sES, sSS, sES, sFW, sTW, sCL, sCW, sLA, sES, sES},
		/*rst*/ {sCL, sCL, sSS, sCL, sCL, sTW, sCL, sCL, sCL, sCL, sCL},
	},
	dirInputOnly: {
		/*syn*/ {sSA, sES, sES, sSR, sSA, sSA, sSA, sSA, sSA, sSA, sSA},
		/*fin*/ {sCL, sFW, sSS, sTW, sFW, sTW, sCL, sCW, sLA, sLI, sTW},
		/*ack*/ {sES, sES, sSS, sES, sFW, sTW, sCL, sCW, sCL, sLI, sES},
		/*rst*/ {sCL, sCL, sCL, sSR, sCL, sCL, sCL, sCL, sLA, sLI, sCL},
	},
}
