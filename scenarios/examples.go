package scenarios

import "embed"

// Examples holds the example scenarios users start from, embedded in the
// binary: examples/NAME.yaml.
//
//go:embed examples/*.yaml
var Examples embed.FS

// LoadExample parses the embedded example called name (file name without .yaml).
func LoadExample(name string) (*Scenario, error) {
	path := "examples/" + name + ".yaml"
	b, err := Examples.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, b)
}
