package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Load reads, parses and validates the configuration file at path. Errors
// name the file, the line and the setting.
//
// Load does not look at the environment; use LoadWithEnv for that, so that
// a setting the file leaves incomplete (a SASL password given only in
// FLOWHOUND_SINKS_KAFKA_SASL_PASSWORD) is validated after the override.
func Load(path string) (*Config, error) { return LoadWithEnv(path, nil) }

// LoadWithEnv reads and parses the file at path, applies the FLOWHOUND_
// variables of environ (os.Environ() form) and validates the result.
func LoadWithEnv(path string, environ []string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, readError(path, err)
	}
	c, err := parse(data, path)
	if err != nil {
		return nil, err
	}
	if err := c.ApplyEnv(environ); err != nil {
		return nil, err
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// Parse parses and validates a configuration. name is the file it came
// from: it names the source in errors, and relative paths in the
// configuration are resolved against its directory ("" or "-" means the
// working directory).
func Parse(data []byte, name string) (*Config, error) {
	c, err := parse(data, name)
	if err != nil {
		return nil, err
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// parse decodes data over Default without validating.
func parse(data []byte, name string) (*Config, error) {
	dir := "."
	if name != "" && name != "-" {
		dir = filepath.Dir(name)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	c := Default()
	c.meta.name = name
	d := &decoder{name: name, dir: abs, meta: &c.meta}

	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if err == io.EOF {
			return c, nil // an empty file: all defaults
		}
		return nil, d.syntaxError(err)
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case err == nil:
		return nil, &FieldError{Where: lineRef(name, extra.Line), Msg: "only one YAML document is allowed"}
	case err != io.EOF:
		return nil, d.syntaxError(err)
	}
	if len(doc.Content) == 0 {
		return c, nil
	}
	d.value(doc.Content[0], reflect.ValueOf(c).Elem(), "", false)
	if len(d.errs) > 0 {
		return nil, errors.Join(d.errs...)
	}
	return c, nil
}

// decoder walks a YAML node tree against the Config struct. Keys are the
// fields' yaml tags; a cfg:"path" tag marks a file name to resolve.
type decoder struct {
	name  string
	dir   string // absolute directory that relative paths are resolved against
	meta  *meta
	errs  []error
	nodes int // values visited, aliases expanded
}

const (
	maxErrors = 20
	// maxNodes stops aliases that expand a small file into a huge one.
	maxNodes = 100000
)

var yamlLineError = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

func (d *decoder) syntaxError(err error) error {
	if m := yamlLineError.FindStringSubmatch(err.Error()); m != nil {
		line, _ := strconv.Atoi(m[1])
		return &FieldError{Where: lineRef(d.name, line), Msg: m[2]}
	}
	return &FieldError{Where: d.name, Msg: strings.TrimPrefix(err.Error(), "yaml: ")}
}

func (d *decoder) fail(n *yaml.Node, path, format string, args ...any) {
	switch {
	case len(d.errs) < maxErrors:
		d.errs = append(d.errs, &FieldError{Where: lineRef(d.name, n.Line), Path: path, Msg: fmt.Sprintf(format, args...)})
	case len(d.errs) == maxErrors:
		d.errs = append(d.errs, &FieldError{Where: d.name, Msg: "too many errors"})
	}
}

var (
	durationType = reflect.TypeFor[time.Duration]()
	byteSizeType = reflect.TypeFor[ByteSize]()
)

// defaulter is implemented by list elements that start from defaults.
type defaulter interface{ setDefaults() }

// shorthand is implemented by structs that may be written as one scalar.
type shorthand interface{ setScalar(string) }

// value decodes n into v, the setting at path.
func (d *decoder) value(n *yaml.Node, v reflect.Value, path string, isPath bool) {
	if d.nodes++; d.nodes > maxNodes {
		if d.nodes == maxNodes+1 {
			d.errs = append(d.errs, &FieldError{Where: lineRef(d.name, n.Line), Path: path,
				Msg: fmt.Sprintf("too many values (aliases expand to more than %d)", maxNodes)})
		}
		return
	}
	at := n // an alias is reported at its own line, not its anchor's
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return // an empty value keeps the default
	}
	d.meta.setLine(path, at.Line)
	switch {
	case v.Kind() == reflect.Struct:
		if n.Kind == yaml.ScalarNode {
			if s, ok := v.Addr().Interface().(shorthand); ok {
				s.setScalar(n.Value)
				return
			}
		}
		d.mapping(n, v, path)
	case v.Kind() == reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.fail(at, path, "want a list, got %s", describe(n))
			return
		}
		s := reflect.MakeSlice(v.Type(), 0, len(n.Content))
		for i, item := range n.Content {
			e := reflect.New(v.Type().Elem()).Elem()
			if df, ok := e.Addr().Interface().(defaulter); ok {
				df.setDefaults()
			}
			d.value(item, e, fmt.Sprintf("%s[%d]", path, i), isPath)
			s = reflect.Append(s, e)
		}
		v.Set(s)
	default:
		if n.Kind != yaml.ScalarNode {
			d.fail(at, path, "want %s, got %s", kindName(v.Type()), describe(n))
			return
		}
		if err := setScalar(v, n.Value, n.ShortTag()); err != nil {
			d.fail(at, path, "%v", err)
			return
		}
		if isPath {
			v.SetString(resolve(d.dir, v.String()))
		}
	}
}

// mapping decodes a YAML mapping into the struct v.
func (d *decoder) mapping(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.fail(n, path, "want a mapping of settings, got %s", describe(n))
		return
	}
	fields := fieldsOf(v.Type())
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if d.nodes > maxNodes {
			return
		}
		d.nodes++
		if k.Kind != yaml.ScalarNode {
			d.fail(k, path, "want a setting name, got %s", describe(k))
			continue
		}
		key := k.Value
		p := joinPath(path, key)
		if key == "<<" {
			d.fail(k, path, "merge keys (<<) are not supported")
			continue
		}
		f, ok := findField(fields, key)
		if !ok {
			msg := "unknown setting"
			if s := suggest(key, fieldNames(fields)); s != "" {
				msg += fmt.Sprintf(" (did you mean %s?)", s)
			}
			d.fail(k, p, "%s", msg)
			continue
		}
		if first, dup := seen[key]; dup {
			d.fail(k, p, "set twice (first at line %d)", first)
			continue
		}
		seen[key] = k.Line
		d.value(val, v.Field(f.index), p, f.isPath)
	}
}

// setScalar parses s into v. tag is the node's YAML tag, or "" for text
// from the environment, which is parsed by the field's type alone.
func setScalar(v reflect.Value, s, tag string) error {
	switch v.Type() {
	case durationType:
		if tag != "" && tag != "!!str" && tag != "!!int" {
			return fmt.Errorf("want a duration such as 30s, 10m or 1h30m, got %s", quote(s))
		}
		dur, err := parseDuration(s)
		if err != nil {
			return err
		}
		v.SetInt(int64(dur))
		return nil
	case byteSizeType:
		if tag != "" && tag != "!!str" && tag != "!!int" {
			return fmt.Errorf("want a byte size such as 100MB, 20MiB or 1048576, got %s", quote(s))
		}
		b, err := ParseByteSize(s)
		if err != nil {
			return err
		}
		v.SetUint(uint64(b))
		return nil
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(s)
	case reflect.Bool:
		b, err := strconv.ParseBool(strings.TrimSpace(s))
		if err != nil || (tag != "" && tag != "!!bool") {
			return fmt.Errorf("want true or false, got %s", quote(s))
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if tag != "" && tag != "!!int" {
			return fmt.Errorf("want an integer, got %s", quote(s))
		}
		bits := v.Type().Bits()
		i, err := strconv.ParseInt(strings.ReplaceAll(strings.TrimSpace(s), "_", ""), 0, bits)
		if err != nil {
			if errors.Is(err, strconv.ErrRange) {
				return fmt.Errorf("%s is out of range", s)
			}
			return fmt.Errorf("want an integer, got %s", quote(s))
		}
		v.SetInt(i)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		bits := v.Type().Bits()
		u, err := strconv.ParseUint(strings.ReplaceAll(strings.TrimSpace(s), "_", ""), 0, bits)
		if err != nil || (tag != "" && tag != "!!int") {
			return fmt.Errorf("want an integer between 0 and %d, got %s", uint64(1)<<bits-1, quote(s))
		}
		v.SetUint(u)
	case reflect.Float32, reflect.Float64:
		f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil || (tag != "" && tag != "!!int" && tag != "!!float") || math.IsNaN(f) || math.IsInf(f, 0) {
			return fmt.Errorf("want a number, got %s", quote(s))
		}
		v.SetFloat(f)
	default:
		return fmt.Errorf("cannot hold a %s", v.Type())
	}
	return nil
}

// resolve makes a relative file name absolute against dir; "-" (standard
// input or output) and "" are left alone.
func resolve(dir, p string) string {
	if p == "" || p == "-" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(dir, p)
}

type field struct {
	name   string
	index  int
	isPath bool // a file name, resolved against the configuration's directory
	isURL  bool // a URL, printed without its password
}

func fieldsOf(t reflect.Type) []field {
	var fs []field
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		name := sf.Tag.Get("yaml")
		if !sf.IsExported() || name == "" {
			continue
		}
		opt := sf.Tag.Get("cfg")
		fs = append(fs, field{name: name, index: i, isPath: opt == "path", isURL: opt == "url"})
	}
	return fs
}

func findField(fs []field, name string) (field, bool) {
	for _, f := range fs {
		if f.name == name {
			return f, true
		}
	}
	return field{}, false
}

func fieldNames(fs []field) []string {
	names := make([]string, len(fs))
	for i, f := range fs {
		names[i] = f.name
	}
	return names
}

// kindName says what a setting of type t looks like, for messages.
func kindName(t reflect.Type) string {
	switch t {
	case durationType:
		return "a duration"
	case byteSizeType:
		return "a byte size"
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Struct:
		return "a mapping of settings"
	case reflect.Slice:
		return "a list"
	}
	return "an integer"
}

// describe says what a node is, for messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	return quote(n.Value)
}

// quote quotes a value for a message, shortening long ones.
func quote(s string) string {
	if r := []rune(s); len(r) > 40 {
		s = string(r[:37]) + "..."
	}
	return strconv.Quote(s)
}
