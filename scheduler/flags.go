package scheduler

import (
	"fmt"
	"strings"
)

// ParseFlags reads ipvsadm's -b list ("sh-fallback,sh-port") for scheduler
// sched, with ipvsadm's checks and messages: sh-* flags only with sh, mh-*
// only with mh.
func ParseFlags(sched, list string) (uint32, error) {
	var flags uint32
	for _, name := range strings.Split(list, ",") {
		var f uint32
		owner := ""
		switch name {
		case "flag-1":
			f = FlagSched1
		case "flag-2":
			f = FlagSched2
		case "flag-3":
			f = FlagSched3
		case "sh-fallback", "mh-fallback":
			f, owner = FlagSched1, name[:2]
		case "sh-port", "mh-port":
			f, owner = FlagSched2, name[:2]
		default:
			return 0, fmt.Errorf("invalid scheduler flag `%s'", name)
		}
		if owner != "" && owner != sched {
			return 0, fmt.Errorf("incompatible scheduler flag `%s'", name)
		}
		flags |= f
	}
	return flags, nil
}
