package scenarios

import (
	"encoding/json"
	"reflect"
)

// JSONSchema returns a JSON Schema (draft 2020-12) of the scenario format
// for editors: derived from the same Go types the parser checks keys
// against, so the two cannot drift apart. It says which keys exist and the
// shape of their values; the meaning (addresses in their network, known
// schedulers) is lvslab validate's.
func JSONSchema() []byte {
	s := schemaOf(reflect.TypeFor[Scenario]())
	s["$schema"] = "https://json-schema.org/draft/2020-12/schema"
	s["title"] = "lvslab scenario"
	b, _ := json.MarshalIndent(s, "", "  ")
	return append(b, '\n')
}

func schemaOf(t reflect.Type) map[string]any {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == reflect.TypeFor[OneOrMore]() {
		one := schemaOf(t.Elem())
		return map[string]any{"anyOf": []any{one, map[string]any{"type": "array", "items": one}}}
	}
	switch t.Kind() {
	case reflect.Struct:
		props := map[string]any{}
		for key, ft := range structFields(t) {
			props[key] = schemaOf(ft)
		}
		return map[string]any{"type": "object", "properties": props, "additionalProperties": false}
	case reflect.Slice:
		return map[string]any{"type": "array", "items": schemaOf(t.Elem())}
	case reflect.Map:
		return map[string]any{"type": "object", "additionalProperties": schemaOf(t.Elem())}
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return map[string]any{"type": "integer"}
	case reflect.Float32, reflect.Float64:
		return map[string]any{"type": "number"}
	}
	// Strings: YAML writes many of them bare (80, 10s), so a number is
	// accepted where the parser reads a string.
	return map[string]any{"type": []string{"string", "number"}}
}
