package scenarios

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
)

// Error is one problem in a scenario file, at a position.
type Error struct {
	File      string
	Line, Col int
	Object    string // `node "rs4"`; empty when the problem is the file's shape
	Msg       string
}

func (e *Error) Error() string {
	if e.Object == "" {
		return fmt.Sprintf("%s:%d:%d: %s", e.File, e.Line, e.Col, e.Msg)
	}
	return fmt.Sprintf("%s:%d:%d: %s: %s", e.File, e.Line, e.Col, e.Object, e.Msg)
}

// Errors is every problem found in a file, in file order, one per line.
type Errors []*Error

func (es Errors) Error() string {
	s := make([]string, len(es))
	for i, e := range es {
		s[i] = e.Error()
	}
	return strings.Join(s, "\n")
}

// Load reads and parses a scenario file.
func Load(path string) (*Scenario, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, b)
}

// Parse parses a scenario from src; file names it in errors. It returns the
// scenario, or Errors listing every problem found.
func Parse(file string, src []byte) (*Scenario, error) {
	f, err := parser.ParseBytes(src, 0)
	if err != nil {
		return nil, Errors{yamlError(file, err)}
	}
	s := &source{file: file, ast: f, text: src}
	if len(f.Docs) != 1 || f.Docs[0].Body == nil {
		return nil, Errors{{File: file, Line: 1, Col: 1, Msg: "a scenario file holds exactly one YAML document"}}
	}
	body := f.Docs[0].Body
	if e := checkAliases(file, body); e != nil {
		return nil, Errors{e}
	}
	var es Errors
	checkKeys(s, body, reflect.TypeFor[Scenario](), &es)
	if len(es) > 0 {
		return nil, es.sorted()
	}
	sc := &Scenario{src: s}
	if err := yaml.NodeToValue(body, sc); err != nil {
		return nil, Errors{yamlError(file, err)}
	}
	if sc.Name == "" {
		sc.Name = strings.TrimSuffix(filepath.Base(file), filepath.Ext(file))
	}
	sc.addSorryServers()
	sc.lab = sc.translate()
	es = append(sc.lab.errs, sc.checkTimeline()...)
	if len(es) == 0 {
		es = sc.checkDirector()
	}
	if len(es) > 0 {
		return nil, es.sorted()
	}
	return sc, nil
}

func (es Errors) sorted() Errors {
	sort.SliceStable(es, func(i, j int) bool {
		if es[i].Line != es[j].Line {
			return es[i].Line < es[j].Line
		}
		return es[i].Col < es[j].Col
	})
	return es
}

// source keeps the parsed file so that problems found later, by path, get
// their position.
type source struct {
	file string
	ast  *ast.File
	text []byte
}

// indent is the number of spaces that start line (1-based) of the file.
func (s *source) indent(line int) int {
	lines := strings.Split(string(s.text), "\n")
	if line < 1 || line > len(lines) {
		return 0
	}
	l := lines[line-1]
	return len(l) - len(strings.TrimLeft(l, " "))
}

// errorAt returns an Error at path ("nodes[3].interfaces[0].address"). When
// the path names a key the file leaves out, the closest enclosing value that
// exists gives the position.
func (s *source) errorAt(path, object, msg string) *Error {
	e := &Error{File: s.file, Line: 1, Col: 1, Object: object, Msg: msg}
	for p := path; ; {
		if n := s.node(p); n != nil {
			pos := n.GetToken().Position
			e.Line, e.Col = pos.Line, pos.Column
			return e
		}
		i := strings.LastIndexAny(p, ".[")
		if i <= 0 {
			return e
		}
		p = p[:i]
	}
}

func (s *source) node(path string) ast.Node {
	p, err := yaml.PathString("$." + path)
	if err != nil {
		return nil
	}
	n, err := p.FilterFile(s.ast)
	if err != nil || n == nil {
		return nil
	}
	if mv, ok := n.(*ast.MappingValueNode); ok {
		return mv.Value
	}
	return n
}

// yamlError turns a go-yaml error into a positioned Error.
func yamlError(file string, err error) *Error {
	var ye yaml.Error
	if errors.As(err, &ye) && ye.GetToken() != nil {
		tk := ye.GetToken()
		msg := ye.GetMessage()
		var te *yaml.TypeError
		if errors.As(err, &te) {
			msg = fmt.Sprintf("%q is not %s", tk.Value, kindName(te.DstType))
		}
		return &Error{File: file, Line: tk.Position.Line, Col: tk.Position.Column, Msg: msg}
	}
	return &Error{File: file, Line: 1, Col: 1, Msg: err.Error()}
}

// checkKeys walks node next to the Go type t and reports, at its position,
// every mapping key t does not declare and every value of the wrong shape
// (a list where a mapping belongs). Known keys are the yaml tags of t's
// fields, inline fields included, so new parts of the format are checked as
// soon as their fields exist.
func checkKeys(s *source, node ast.Node, t reflect.Type, es *Errors) {
	node = unwrap(node)
	if node == nil {
		return
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	at := func(n ast.Node, format string, args ...any) {
		pos := n.GetToken().Position
		*es = append(*es, &Error{File: s.file, Line: pos.Line, Col: pos.Column, Msg: fmt.Sprintf(format, args...)})
	}
	if _, null := node.(*ast.NullNode); null {
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		entries, ok := mapEntries(node)
		if !ok {
			at(node, "expected a mapping with keys %s", strings.Join(knownKeys(t), ", "))
			return
		}
		fields := structFields(t)
		for _, mv := range entries {
			key := mv.Key.GetToken().Value
			if key == "<<" {
				continue // merge key: its content is checked where the anchor is
			}
			ft, ok := fields[key]
			if !ok {
				at(mv.Key, "unknown field %q (expected one of %s)", key, strings.Join(knownKeys(t), ", "))
				continue
			}
			checkKeys(s, mv.Value, ft, es)
		}
	case reflect.Slice:
		seq, ok := node.(*ast.SequenceNode)
		if !ok && t == reflect.TypeFor[OneOrMore]() {
			checkKeys(s, node, t.Elem(), es) // one value
			return
		}
		if !ok {
			at(node, "expected a list")
			return
		}
		for _, v := range seq.Values {
			checkKeys(s, v, t.Elem(), es)
		}
	case reflect.Map:
		entries, ok := mapEntries(node)
		if !ok {
			at(node, "expected a mapping")
			return
		}
		for _, mv := range entries {
			checkKeys(s, mv.Value, t.Elem(), es)
		}
	default:
		switch node.(type) {
		case *ast.MappingNode, *ast.MappingValueNode, *ast.SequenceNode:
			at(node, "expected a single value, not a %s", strings.ToLower(strings.TrimSuffix(node.Type().String(), "Type")))
		}
	}
}

func unwrap(n ast.Node) ast.Node {
	for {
		switch v := n.(type) {
		case *ast.AnchorNode:
			n = v.Value
		case *ast.TagNode:
			n = v.Value
		case *ast.AliasNode:
			return nil // checked where the anchor is
		default:
			return n
		}
	}
}

func mapEntries(n ast.Node) ([]*ast.MappingValueNode, bool) {
	switch v := n.(type) {
	case *ast.MappingNode:
		return v.Values, true
	case *ast.MappingValueNode:
		return []*ast.MappingValueNode{v}, true
	}
	return nil, false
}

// structFields maps each yaml key of t (inline structs flattened) to its type.
func structFields(t reflect.Type) map[string]reflect.Type {
	m := map[string]reflect.Type{}
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if strings.Contains(opts, "inline") {
			for k, v := range structFields(f.Type) {
				m[k] = v
			}
			continue
		}
		if name == "-" {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		m[name] = f.Type
	}
	return m
}

func knownKeys(t reflect.Type) []string {
	var keys []string
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		switch {
		case strings.Contains(opts, "inline"):
			keys = append(keys, knownKeys(f.Type)...)
		case name == "-":
		case name == "":
			keys = append(keys, strings.ToLower(f.Name))
		default:
			keys = append(keys, name)
		}
	}
	return keys
}

// kindName says in words what a value of type t looks like.
func kindName(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Bool:
		return "true or false"
	case reflect.String:
		return "a string"
	case reflect.Slice:
		return "a list"
	}
	return "a mapping"
}
