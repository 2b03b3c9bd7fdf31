package config

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse feeds arbitrary files to the parser: it must not panic, and
// whatever it accepts must print and parse back to the same settings.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.yml")
	files = append(files, "../flowhound.example.yaml")
	for _, name := range files {
		if b, err := os.ReadFile(name); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := parse(data, "testdata/fuzz.yml")
		if err != nil {
			return
		}
		_ = c.Validate()
		back, err := parse([]byte(c.String()), "testdata/fuzz.yml")
		if err != nil {
			t.Fatalf("String() output does not parse: %v\n%s", err, c)
		}
		want := *c
		redact(&want)
		if !sameConfig(&want, back) {
			t.Fatalf("round trip differs: %s", firstDiff(&want, back))
		}
	})
}
