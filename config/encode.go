package config

import (
	"bytes"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

var secretType = reflect.TypeFor[Secret]()

// String returns the configuration as YAML, every setting included, with
// secrets replaced by Redacted. Parse reads it back to an equal
// configuration, except that a redacted secret does not validate.
func (c *Config) String() string {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(encode(reflect.ValueOf(c).Elem())); err != nil {
		return "# cannot print the configuration: " + err.Error() + "\n"
	}
	enc.Close()
	return buf.String()
}

func scalarNode(tag, value string) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: tag, Value: value}
}

// redactURL masks a password in a URL's user information (which Validate
// rejects, but String may print an invalid configuration).
func redactURL(s string) string {
	u, err := url.Parse(s)
	switch {
	case err != nil && strings.Contains(s, "@"):
		return Redacted
	case err == nil && u.User != nil:
		return u.Redacted()
	}
	return s
}

// encode turns a configuration value into a YAML node.
func encode(v reflect.Value) *yaml.Node {
	switch v.Type() {
	case durationType:
		return scalarNode("!!str", formatDuration(time.Duration(v.Int())))
	case byteSizeType:
		s := ByteSize(v.Uint()).String()
		if _, err := strconv.ParseUint(s, 10, 64); err == nil {
			return scalarNode("!!int", s)
		}
		return scalarNode("!!str", s)
	case secretType:
		return scalarNode("!!str", Secret(v.String()).String())
	}
	switch v.Kind() {
	case reflect.Struct:
		n := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
		for _, f := range fieldsOf(v.Type()) {
			val := encode(v.Field(f.index))
			if f.isURL {
				val.Value = redactURL(val.Value)
			}
			n.Content = append(n.Content, scalarNode("!!str", f.name), val)
		}
		return n
	case reflect.Slice:
		n := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
		if k := v.Type().Elem().Kind(); v.Len() == 0 || k >= reflect.Int && k <= reflect.Uint64 {
			n.Style = yaml.FlowStyle
		}
		for i := 0; i < v.Len(); i++ {
			n.Content = append(n.Content, encode(v.Index(i)))
		}
		return n
	case reflect.String:
		return scalarNode("!!str", v.String())
	case reflect.Bool:
		return scalarNode("!!bool", strconv.FormatBool(v.Bool()))
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return scalarNode("!!int", strconv.FormatInt(v.Int(), 10))
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return scalarNode("!!int", strconv.FormatUint(v.Uint(), 10))
	case reflect.Float32, reflect.Float64:
		return scalarNode("!!float", strconv.FormatFloat(v.Float(), 'g', -1, 64))
	}
	return scalarNode("!!null", "")
}
