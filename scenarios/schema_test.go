package scenarios

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/goccy/go-yaml"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestSchemaAcceptsTheExamples: every example is valid against the schema
// editors get, and a misspelt key is not.
func TestSchemaAcceptsTheExamples(t *testing.T) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(JSONSchema()))
	require.NoError(t, err)
	c := jsonschema.NewCompiler()
	require.NoError(t, c.AddResource("scenario.json", doc))
	sch, err := c.Compile("scenario.json")
	require.NoError(t, err)
	asJSON := func(src []byte) any {
		var v any
		require.NoError(t, yaml.Unmarshal(src, &v))
		b, err := json.Marshal(v)
		require.NoError(t, err)
		out, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
		require.NoError(t, err)
		return out
	}
	entries, err := Examples.ReadDir("examples")
	require.NoError(t, err)
	for _, e := range entries {
		src, err := Examples.ReadFile("examples/" + e.Name())
		require.NoError(t, err)
		assert.NoError(t, sch.Validate(asJSON(src)), e.Name())
	}
	src, err := Examples.ReadFile("examples/quickstart.yaml")
	require.NoError(t, err)
	bad := strings.Replace(string(src), "rate: 200/s", "rat: 200/s", 1)
	assert.ErrorContains(t, sch.Validate(asJSON([]byte(bad))), "additional properties 'rat' not allowed")
}

// TestFormatHelpNamesEveryField: lvslab help scenario mentions every key
// the parser accepts.
func TestFormatHelpNamesEveryField(t *testing.T) {
	var walk func(reflect.Type)
	seen := map[reflect.Type]bool{}
	walk = func(ty reflect.Type) {
		for ty.Kind() == reflect.Pointer || ty.Kind() == reflect.Slice || ty.Kind() == reflect.Map {
			ty = ty.Elem()
		}
		if ty.Kind() != reflect.Struct || seen[ty] {
			return
		}
		seen[ty] = true
		for key, ft := range structFields(ty) {
			assert.Contains(t, FormatHelp, key, "%s.%s", ty.Name(), key)
			walk(ft)
		}
	}
	walk(reflect.TypeFor[Scenario]())
}
