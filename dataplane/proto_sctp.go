package dataplane

// SCTP connection states (ip_vs_proto_sctp.c, spec §3.7).
const (
	SCTPNone uint8 = iota
	SCTPInit1
	SCTPInit
	SCTPCookieSent
	SCTPCookieReplied
	SCTPCookieWait
	SCTPCookie
	SCTPCookieEchoed
	SCTPEstablished
	SCTPShutdownSent
	SCTPShutdownReceived
	SCTPShutdownAckSent
	SCTPRejected
	SCTPClosed
	sctpStates
)

// SCTPStateNames are the names listings show.
var SCTPStateNames = [sctpStates]string{
	"NONE", "INIT1", "INIT", "C-SENT", "C-REPLIED", "C-WAIT", "COOKIE", "C-ECHOED",
	"ESTABLISHED", "S-SENT", "S-RECEIVED", "S-ACK-SENT", "REJECTED", "CLOSED",
}

var defaultSCTPTimeouts = [sctpStates]uint32{2, 4, 61, 61, 61, 61, 61, 61, 900, 61, 61, 61, 4, 61}

// SCTP chunk types that select a state-table row; everything else is a
// data-like event.
const (
	SCTPChunkData             uint8 = 0
	SCTPChunkInit             uint8 = 1
	SCTPChunkInitAck          uint8 = 2
	SCTPChunkAbort            uint8 = 6
	SCTPChunkShutdown         uint8 = 7
	SCTPChunkShutdownAck      uint8 = 8
	SCTPChunkError            uint8 = 9
	SCTPChunkCookieEcho       uint8 = 10
	SCTPChunkCookieAck        uint8 = 11
	SCTPChunkShutdownComplete uint8 = 14
)

// sctpEvent maps the first chunk type to a table row.
func sctpEvent(chunk uint8) int {
	switch chunk {
	case SCTPChunkInit:
		return 1
	case SCTPChunkInitAck:
		return 2
	case SCTPChunkCookieEcho:
		return 3
	case SCTPChunkCookieAck:
		return 4
	case SCTPChunkShutdown:
		return 5
	case SCTPChunkShutdownAck:
		return 6
	case SCTPChunkShutdownComplete:
		return 7
	case SCTPChunkError:
		return 8
	case SCTPChunkAbort:
		return 9
	}
	return 0
}

const (
	cNO = SCTPNone
	cI1 = SCTPInit1
	cIN = SCTPInit
	cCS = SCTPCookieSent
	cCR = SCTPCookieReplied
	cCW = SCTPCookieWait
	cCO = SCTPCookie
	cCE = SCTPCookieEchoed
	cES = SCTPEstablished
	cSS = SCTPShutdownSent
	cSR = SCTPShutdownReceived
	cSA = SCTPShutdownAckSent
	cRJ = SCTPRejected
	cCL = SCTPClosed
)

// sctpTable is [direction][event][state] → next state (sctp_states).
var sctpTable = [3][10][sctpStates]uint8{
	dirInput: {
		/*          NO   I1   IN   CS   CR   CW   CO   CE   ES   SS   SR   SA   RJ   CL */
		/*d  */ {cES, cI1, cIN, cCS, cCR, cCW, cCO, cCE, cES, cSS, cSR, cSA, cRJ, cCL},
		/*i  */ {cI1, cIN, cIN, cCS, cCR, cCW, cCO, cCE, cES, cSS, cSR, cSA, cIN, cIN},
		/*i_a*/ {cCW, cCW, cCW, cCS, cCR, cCO, cCO, cCE, cES, cSS, cSR, cSA, cRJ, cCL},
		/*c_e*/ {cCR, cIN, cIN, cCR, cCR, cCW, cCO, cCE, cES, cSS, cSR, cSA, cRJ, cCL},
		/*c_a*/ {cES, cI1, cIN, cCS, cCR, cCW, cCO, cES, cES, cSS, cSR, cSA, cRJ, cCL},
		/*s  */ {cSR, cI1, cIN, cCS, cCR, cCW, cCO, cCE, cSR, cSS, cSR, cSA, cRJ, cCL},
		/*s_a*/ {cCL, cIN, cIN, cCS, cCR, cCW, cCO, cCE, cES, cCL, cSR, cCL, cRJ, cCL},
		/*s_c*/ {cCL, cCL, cCL, cCS, cCR, cCW, cCO, cCE, cES, cSS, cSR, cCL, cRJ, cCL},
		/*err*/ {cCL, cI1, cIN, cCS, cCR, cCW, cCO, cCL, cES, cSS, cSR, cSA, cRJ, cCL},
		/*ab */ {cCL, cCL, cCL, cCL, cCL, cRJ, cCL, cCL, cCL, cCL, cCL, cCL, cCL, cCL},
	},
	dirOutput: {
		/*d  */ {cES, cI1, cIN, cCS, cCR, cCW, cCO, cCE, cES, cSS, cSR, cSA, cRJ, cCL},
		/*i  */ {cCW, cCW, cCW, cCW, cCW, cCW, cCW, cCW, cES, cCW, cCW, cCW, cCW, cCW},
		/*i_a*/ {cCS, cCS, cCS, cCS, cCR, cCW, cCO, cCE, cES, cSS, cSR, cSA, cRJ, cCL},
		/*c_e*/ {cCE, cCE, cCE, cCE, cCE, cCE, cCE, cCE, cES, cSS, cSR, cSA, cRJ, cCL},
		/*c_a*/ {cES, cES, cES, cES, cES, cES, cES, cES, cES, cSS, cSR, cSA, cRJ, cCL},
		/*s  */ {cSS, cSS, cSS, cSS, cSS, cSS, cSS, cSS, cSS, cSS, cSR, cSA, cRJ, cCL},
		/*s_a*/ {cSA, cSA, cSA, cSA, cSA, cCW, cCO, cCE, cES, cSA, cSA, cSA, cRJ, cCL},
		/*s_c*/ {cCL, cI1, cIN, cCS, cCR, cCW, cCO, cCE, cES, cSS, cSR, cSA, cRJ, cCL},
		/*err*/ {cCL, cCL, cCL, cCL, cCL, cCW, cCO, cCE, cES, cSS, cSR, cSA, cRJ, cCL},
		/*ab */ {cCL, cRJ, cCL, cCL, cCL, cCL, cCL, cCL, cCL, cCL, cCL, cCL, cCL, cCL},
	},
	dirInputOnly: {
		/*d  */ {cES, cI1, cIN, cCS, cCR, cES, cCO, cCE, cES, cSS, cSR, cSA, cRJ, cCL},
		/*i  */ {cI1, cIN, cIN, cIN, cIN, cIN, cCO, cCE, cES, cSS, cSR, cSA, cIN, cIN},
		/*i_a*/ {cCE, cCE, cCE, cCE, cCE, cCE, cCO, cCE, cES, cSS, cSR, cSA, cRJ, cCL},
		/*c_e*/ {cES, cES, cES, cES, cES, cES, cCO, cCE, cES, cSS, cSR, cSA, cRJ, cCL},
		/*c_a*/ {cES, cI1, cIN, cES, cES, cCW, cES, cES, cES, cSS, cSR, cSA, cRJ, cCL},
		/*s  */ {cSR, cI1, cIN, cCS, cCR, cCW, cCO, cCE, cSR, cSS, cSR, cSA, cRJ, cCL},
		/*s_a*/ {cCL, cIN, cIN, cCS, cCR, cCW, cCO, cCE, cCL, cCL, cSR, cCL, cRJ, cCL},
		/*s_c*/ {cCL, cCL, cCL, cCL, cCL, cCW, cCO, cCE, cES, cSS, cCL, cCL, cRJ, cCL},
		/*err*/ {cCL, cI1, cIN, cCS, cCR, cCW, cCO, cCE, cES, cSS, cSR, cSA, cRJ, cCL},
		/*ab */ {cCL, cCL, cCL, cCL, cCL, cRJ, cCL, cCL, cCL, cCL, cCL, cCL, cCL, cCL},
	},
}
