package ipvsadm

import "strings"

// This file is the part of libpopt 1.19 that ipvsadm's command line goes
// through: long options with "=", bundled short options (an argument may
// follow in the same word, after an optional "="; an option without an
// argument followed by "=" is an error, as is "--name=value" for it),
// POPT_ARGFLAG_OPTIONAL
// arguments that are taken only when the next word does not start with
// "-", "--" ending the options, non-option words kept as leftovers, and the
// "!#:+" substitution popt applies to every option argument.

type argKind uint8

const (
	argNone     argKind = iota // POPT_ARG_NONE
	argString                  // POPT_ARG_STRING
	argOptional                // POPT_ARG_STRING | POPT_ARGFLAG_OPTIONAL
)

type poptOption struct {
	long  string
	short byte
	kind  argKind
	val   int
}

// popt error codes and their poptStrerror texts.
const (
	poptErrNoArg       = -10 // POPT_ERROR_NOARG
	poptErrBadOpt      = -11 // POPT_ERROR_BADOPT
	poptErrUnwantedArg = -12 // POPT_ERROR_UNWANTEDARG
)

func poptStrerror(code int) string {
	switch code {
	case poptErrNoArg:
		return "missing argument"
	case poptErrBadOpt:
		return "unknown option"
	case poptErrUnwantedArg:
		return "option does not take an argument"
	}
	return "unknown error"
}

// poptContext walks argv (argv[0] is the program name) like poptGetNextOpt.
type poptContext struct {
	table        []poptOption
	argv         []string
	next         int
	charArg      string // rest of a bundle of short options
	hasCharArg   bool
	restLeftover bool
	leftovers    []string
	nextLeftover int
	used         map[int]bool // words consumed by "!#:+" (popt's argb)
}

func newPoptContext(table []poptOption, argv []string) *poptContext {
	return &poptContext{table: table, argv: argv, next: 1}
}

// nextOpt returns the next option's val and its argument (nil when an
// optional argument is absent), -1 at the end, or a popt error code.
func (c *poptContext) nextOpt() (int, *string) {
	for {
		if !c.hasCharArg && c.next >= len(c.argv) {
			return -1, nil
		}
		var opt *poptOption
		var longArg *string
		if !c.hasCharArg {
			if c.used[c.next] {
				c.next++
				continue
			}
			word := c.argv[c.next]
			c.next++
			if c.restLeftover || word == "" || word[0] != '-' || word == "-" {
				c.leftovers = append(c.leftovers, word)
				continue
			}
			if word == "--" {
				c.restLeftover = true
				continue
			}
			name, oneDash := word[1:], true
			if name[0] == '-' {
				name, oneDash = name[1:], false
			}
			if i := strings.IndexByte(name, '='); i >= 0 {
				arg := name[i+1:]
				name, longArg = name[:i], &arg
			}
			// No ipvsadm option is POPT_ARGFLAG_ONEDASH, so a single dash
			// always starts a bundle of short options.
			if !oneDash {
				opt = c.findLong(name)
				if opt == nil {
					return poptErrBadOpt, nil
				}
			} else {
				c.charArg, c.hasCharArg, longArg = word[1:], true, nil
			}
		}
		if c.hasCharArg {
			bundle := c.charArg
			c.hasCharArg = false
			if bundle == "" {
				return poptErrBadOpt, nil
			}
			opt = c.findShort(bundle[0])
			if opt == nil {
				return poptErrBadOpt, nil
			}
			if rest := bundle[1:]; rest != "" {
				c.charArg, c.hasCharArg = rest, true
			}
		}
		if opt.kind == argNone {
			if longArg != nil || (c.hasCharArg && strings.HasPrefix(c.charArg, "=")) {
				return poptErrUnwantedArg, nil
			}
			return opt.val, nil
		}
		var arg string
		switch {
		case longArg != nil:
			arg = c.expand(*longArg)
		case c.hasCharArg:
			arg = c.expand(strings.TrimPrefix(c.charArg, "="))
			c.hasCharArg = false
		case c.next >= len(c.argv):
			if opt.kind != argOptional {
				return poptErrNoArg, nil
			}
			return opt.val, nil
		case opt.kind == argOptional && strings.HasPrefix(c.argv[c.next], "-"):
			return opt.val, nil
		default:
			c.next++
			arg = c.expand(c.argv[c.next-1])
		}
		return opt.val, &arg
	}
}

func (c *poptContext) findLong(name string) *poptOption {
	for i := range c.table {
		if c.table[i].long != "" && c.table[i].long == name {
			return &c.table[i]
		}
	}
	return nil
}

func (c *poptContext) findShort(s byte) *poptOption {
	for i := range c.table {
		if c.table[i].short != 0 && c.table[i].short == s {
			return &c.table[i]
		}
	}
	return nil
}

// expand is expandNextArg: each "!#:+" is replaced by the next word that
// does not start with "-", which is then no longer seen as a word.
func (c *poptContext) expand(s string) string {
	if !strings.Contains(s, "!#:+") {
		return s
	}
	var b strings.Builder
	var sub *string
	for i := 0; i < len(s); i++ {
		if s[i] == '!' && strings.HasPrefix(s[i+1:], "#:+") {
			if sub == nil {
				sub = c.takeNextWord()
			}
			if sub != nil {
				b.WriteString(*sub)
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func (c *poptContext) takeNextWord() *string {
	for i := c.next; i < len(c.argv); i++ {
		if c.used[i] || strings.HasPrefix(c.argv[i], "-") {
			continue
		}
		if c.used == nil {
			c.used = map[int]bool{}
		}
		c.used[i] = true
		return &c.argv[i]
	}
	return nil
}

// badOption is poptBadOption(POPT_BADOPTION_NOALIAS): the last word read.
func (c *poptContext) badOption() string { return c.argv[c.next-1] }

// arg is poptGetArg: the next leftover word.
func (c *poptContext) arg() (string, bool) {
	if c.nextLeftover >= len(c.leftovers) {
		return "", false
	}
	c.nextLeftover++
	return c.leftovers[c.nextLeftover-1], true
}
