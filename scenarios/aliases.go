package scenarios

import (
	"fmt"

	"github.com/goccy/go-yaml/ast"
)

// maxAliasValues bounds how many values the aliases of a file may stand for
// once expanded. A scenario reuses a block now and then; a file whose
// aliases nest into millions of values (an alias bomb) is refused before
// decoding expands them, since go-yaml has no limit of its own.
const maxAliasValues = 10000

// aliasExpansion walks a document in order, sizing each anchor's value
// (its aliases counted at their anchors' sizes) and adding each alias's
// size to the total; the alias that takes the total over maxAliasValues is
// the error.
type aliasExpansion struct {
	anchors map[string]int
	total   int
	over    ast.Node
}

func checkAliases(file string, body ast.Node) *Error {
	x := aliasExpansion{anchors: map[string]int{}}
	x.size(body)
	if x.over == nil {
		return nil
	}
	pos := x.over.GetToken().Position
	return &Error{File: file, Line: pos.Line, Col: pos.Column,
		Msg: fmt.Sprintf("aliases expand to more than %d values (an alias bomb?)", maxAliasValues)}
}

// size is the number of values n stands for, aliases expanded, capped just
// above the bound so that sums cannot overflow.
func (x *aliasExpansion) size(n ast.Node) int {
	if n == nil || x.over != nil {
		return 0
	}
	sum := func(ns ...ast.Node) int {
		s := 1
		for _, c := range ns {
			s = min(s+x.size(c), maxAliasValues+1)
		}
		return s
	}
	switch v := n.(type) {
	case *ast.AliasNode:
		s := max(x.anchors[v.Value.GetToken().Value], 1)
		if x.total += s; x.total > maxAliasValues {
			x.over = v
		}
		return s
	case *ast.AnchorNode:
		s := x.size(v.Value)
		x.anchors[v.Name.GetToken().Value] = s
		return s
	case *ast.TagNode:
		return x.size(v.Value)
	case *ast.MappingKeyNode:
		return x.size(v.Value)
	case *ast.MappingValueNode:
		return sum(v.Key, v.Value)
	case *ast.MappingNode:
		s := 1
		for _, mv := range v.Values {
			s = min(s+x.size(mv), maxAliasValues+1)
		}
		return s
	case *ast.SequenceNode:
		return sum(v.Values...)
	}
	return 1
}
