package scenarios

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// aliasBomb nests levels of ten aliases each: about 10^levels values
// expanded.
func aliasBomb(levels int) string {
	var b strings.Builder
	b.WriteString("description: &l0 [lol]\nnetworks:\n")
	for i := 1; i <= levels; i++ {
		fmt.Fprintf(&b, "  - &l%d [%s]\n", i, strings.TrimSuffix(strings.Repeat(fmt.Sprintf("*l%d,", i-1), 10), ","))
	}
	return b.String()
}

func TestAliasBombIsRefused(t *testing.T) {
	_, err := Parse("bomb.yaml", []byte(aliasBomb(6)))
	require.Error(t, err)
	// l0 is 2 values, l1 21, l2 211, l3 2111: the aliases of the first three
	// levels add 2340, and the fourth *l3 of level four passes 10000.
	assert.Equal(t, "bomb.yaml:6:22: aliases expand to more than 10000 values (an alias bomb?)", err.Error())
}

func TestAliasesWithinTheBoundDecode(t *testing.T) {
	s, err := Parse("a.yaml", []byte(`
networks: [{name: lan, subnet: 192.168.1.0/24}]
nodes:
  - {name: director, role: director, interfaces: [{network: lan, address: 192.168.1.1}]}
  - {name: rs1, role: realserver, interfaces: [{network: lan, address: 192.168.1.2}]}
  - {name: rs2, role: realserver, interfaces: [{network: lan, address: 192.168.1.3}], server: &srv {port: 80}}
  - {name: rs3, role: realserver, interfaces: [{network: lan, address: 192.168.1.4}], server: *srv}
`))
	require.NoError(t, err)
	assert.Equal(t, 80, s.Nodes[3].Server.Port)
}
