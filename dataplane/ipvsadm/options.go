package ipvsadm

// Commands, in ipvsadm's CMD_* order (cmdnames).
type command int

const (
	cmdNone command = iota
	cmdAdd
	cmdEdit
	cmdDel
	cmdFlush
	cmdList
	cmdAddDest
	cmdDelDest
	cmdEditDest
	cmdTimeout
	cmdStartDaemon
	cmdStopDaemon
	cmdRestore
	cmdSave
	cmdZero
)

var cmdNames = [...]string{
	cmdAdd:         "add-service",
	cmdEdit:        "edit-service",
	cmdDel:         "delete-service",
	cmdFlush:       "flush",
	cmdList:        "list",
	cmdAddDest:     "add-server",
	cmdDelDest:     "delete-server",
	cmdEditDest:    "edit-server",
	cmdTimeout:     "set",
	cmdStartDaemon: "start-daemon",
	cmdStopDaemon:  "stop-daemon",
	cmdRestore:     "restore",
	cmdSave:        "save",
	cmdZero:        "zero",
}

// Options, in ipvsadm's OPTC_* order: the bit index in an option set and
// the column of the validity matrix.
type option uint

const (
	optNumeric option = iota
	optConnection
	optService
	optScheduler
	optPersistent
	optNetmask
	optServer
	optForward
	optWeight
	optUThreshold
	optLThreshold
	optMcast
	optTimeout
	optDaemon
	optStats
	optRate
	optThresholds
	optPersistentConn
	optNoSort
	optSyncID
	optExact
	optOnePacket
	optPE
	optSchedFlags
	optMcastGroup
	optMcastPort
	optMcastTTL
	optSyncMaxLen
	optTunInfo
	optTunType
	optTunPort
	optTunNoCsum
	optTunCsum
	optTunRemCsum
	numOptions
)

var optNames = [numOptions]string{
	"numeric", "connection", "service-address", "scheduler", "persistent",
	"netmask", "real-server", "forwarding-method", "weight", "u-threshold",
	"l-threshold", "mcast-interface", "timeout", "daemon", "stats", "rate",
	"thresholds", "persistent-conn", "nosort", "syncid", "exact", "ops", "pe",
	"sched-flags", "mcast-group", "mcast-port", "mcast-ttl", "sync-maxlen",
	"tun-info", "tun-type", "tun-port", "tun-nocsum", "tun-csum", "tun-remcsum",
}

type optionSet uint64

func (s optionSet) has(o option) bool { return s&(1<<o) != 0 }

// validity is commands_v_options: '+' required, 'x' illegal, '1' at most
// one of the '1' options, ' ' optional. Columns follow the option order:
//
//	-n -c svc -s -p -M -r fwd -w -x -y -mc tot dmn -st -rt thr -pc srt sid -ex ops -pe -b grp port ttl size tinf type tprt nocs csum remc
var validity = [...]string{
	cmdAdd:         "xx+   xxxxxxxxxxxxxxx   xxxxxxxxxx",
	cmdEdit:        "xx+   xxxxxxxxxxxxxxx   xxxxxxxxxx",
	cmdDel:         "xx+xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
	cmdFlush:       "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
	cmdList:        " 11xxxxxxxxx11       xxxxxxx xxxxx",
	cmdAddDest:     "xx+xxx+    xxxxxxxxxxxxxxxxxx     ",
	cmdDelDest:     "xx+xxx+xxxxxxxxxxxxxxxxxxxxxxxxxxx",
	cmdEditDest:    "xx+xxx+    xxxxxxxxxxxxxxxxxx     ",
	cmdTimeout:     "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
	cmdStartDaemon: "xxxxxxxxxxx xxxxxxx xxxx    xxxxxx",
	cmdStopDaemon:  "xxxxxxxxxxxxxxxxxxx xxxxxxxxxxxxxx",
	cmdRestore:     "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
	cmdSave:        " xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
	cmdZero:        "xx xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
}

// Tunnel types and the options each allows (tunnel_types_v_options), over
// the columns tun-port, tun-nocsum, tun-csum, tun-remcsum.
var (
	tunNames       = [...]string{"ipip", "gue", "gre"}
	tunOptions     = [...]option{optTunPort, optTunNoCsum, optTunCsum, optTunRemCsum}
	tunnelValidity = [...]string{"xxxx", "+111", "x11x"}
)

// Option vals: short option letters, and tags above the ASCII range for
// long-only options (ipvsadm's TAG_*).
const (
	tagSet = 128 + iota
	tagStartDaemon
	tagStopDaemon
	tagMcastInterface
	tagTimeout
	tagDaemon
	tagStats
	tagRate
	tagThresholds
	tagPersistentConn
	tagSort
	tagNoSort
	tagPE
	tagSCTPService
	tagMcastGroup
	tagMcastPort
	tagMcastTTL
	tagSyncMaxLen
	tagTunInfo
	tagTunType
	tagTunPort
	tagTunNoCsum
	tagTunCsum
	tagTunRemCsum
)

// optionTable is ipvsadm's poptOption table, in its order.
var optionTable = []poptOption{
	{"add-service", 'A', argNone, 'A'},
	{"edit-service", 'E', argNone, 'E'},
	{"delete-service", 'D', argNone, 'D'},
	{"clear", 'C', argNone, 'C'},
	{"list", 'L', argNone, 'L'},
	{"list", 'l', argNone, 'l'},
	{"zero", 'Z', argNone, 'Z'},
	{"add-server", 'a', argNone, 'a'},
	{"edit-server", 'e', argNone, 'e'},
	{"delete-server", 'd', argNone, 'd'},
	{"set", 0, argNone, tagSet},
	{"help", 'h', argNone, 'h'},
	{"version", 'v', argNone, 'v'},
	{"restore", 'R', argNone, 'R'},
	{"save", 'S', argNone, 'S'},
	{"start-daemon", 0, argString, tagStartDaemon},
	{"stop-daemon", 0, argString, tagStopDaemon},
	{"tcp-service", 't', argString, 't'},
	{"udp-service", 'u', argString, 'u'},
	{"sctp-service", 0, argString, tagSCTPService},
	{"fwmark-service", 'f', argString, 'f'},
	{"scheduler", 's', argString, 's'},
	{"persistent", 'p', argOptional, 'p'},
	{"netmask", 'M', argString, 'M'},
	{"real-server", 'r', argString, 'r'},
	{"masquerading", 'm', argNone, 'm'},
	{"ipip", 'i', argNone, 'i'},
	{"gatewaying", 'g', argNone, 'g'},
	{"weight", 'w', argString, 'w'},
	{"u-threshold", 'x', argString, 'x'},
	{"l-threshold", 'y', argString, 'y'},
	{"numeric", 'n', argNone, 'n'},
	{"connection", 'c', argNone, 'c'},
	{"mcast-interface", 0, argString, tagMcastInterface},
	{"syncid", 0, argString, 'I'},
	{"timeout", 0, argNone, tagTimeout},
	{"daemon", 0, argNone, tagDaemon},
	{"stats", 0, argNone, tagStats},
	{"rate", 0, argNone, tagRate},
	{"thresholds", 0, argNone, tagThresholds},
	{"persistent-conn", 0, argNone, tagPersistentConn},
	{"nosort", 0, argNone, tagNoSort},
	{"sort", 0, argNone, tagSort},
	{"exact", 'X', argNone, 'X'},
	{"ipv6", '6', argNone, '6'},
	{"ops", 'o', argNone, 'o'},
	{"pe", 0, argString, tagPE},
	{"sched-flags", 'b', argString, 'b'},
	{"mcast-group", 0, argString, tagMcastGroup},
	{"mcast-port", 0, argString, tagMcastPort},
	{"mcast-ttl", 0, argString, tagMcastTTL},
	{"sync-maxlen", 0, argString, tagSyncMaxLen},
	{"tun-info", 0, argNone, tagTunInfo},
	{"tun-type", 0, argString, tagTunType},
	{"tun-port", 0, argString, tagTunPort},
	{"tun-nocsum", 0, argNone, tagTunNoCsum},
	{"tun-csum", 0, argNone, tagTunCsum},
	{"tun-remcsum", 0, argNone, tagTunRemCsum},
}

// Listing formats (FMT_*).
type format uint

const (
	fmtNumeric format = 1 << iota
	fmtRule
	fmtStats
	fmtRate
	fmtThresholds
	fmtPersistentConn
	fmtNoSort
	fmtExact
	fmtTunInfo
)
