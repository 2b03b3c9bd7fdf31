package config

import (
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
)

// EnvPrefix starts every variable that ApplyEnv reads.
const EnvPrefix = "FLOWHOUND_"

// envSetting is one leaf setting that a variable can override.
type envSetting struct {
	path   string
	index  []int // field indexes from Config down to the setting
	isPath bool
}

// envSettings lists every overridable setting by variable name.
func envSettings() map[string]envSetting {
	m := map[string]envSetting{}
	var walk func(t reflect.Type, path string, index []int)
	walk = func(t reflect.Type, path string, index []int) {
		for _, f := range fieldsOf(t) {
			p := joinPath(path, f.name)
			idx := append(append([]int{}, index...), f.index)
			ft := t.Field(f.index).Type
			if ft.Kind() == reflect.Struct {
				walk(ft, p, idx)
				continue
			}
			m[envName(p)] = envSetting{path: p, index: idx, isPath: f.isPath}
		}
	}
	walk(reflect.TypeFor[Config](), "", nil)
	return m
}

// envName is the variable for a setting path: sinks.kafka.brokers is
// FLOWHOUND_SINKS_KAFKA_BROKERS.
func envName(path string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(path, ".", "_"))
}

// ApplyEnv overrides settings from the FLOWHOUND_ variables in environ
// (os.Environ() form; other variables are ignored). Lists are
// comma-separated; an empty value sets an empty list. Relative file names
// are resolved against the working directory. An unknown FLOWHOUND_
// variable (other than FLOWHOUND_TEST_*, which the test servers use) or a
// value that does not parse is an error naming the variable;
// values are not range-checked until Validate.
func (c *Config) ApplyEnv(environ []string) error {
	settings := envSettings()
	vars := make([][2]string, 0, len(environ))
	for _, kv := range environ {
		k, v, _ := strings.Cut(kv, "=")
		// FLOWHOUND_TEST_* belong to the test servers (scripts/devservices.sh), not to the configuration.
		if strings.HasPrefix(k, EnvPrefix) && !strings.HasPrefix(k, EnvPrefix+"TEST_") {
			vars = append(vars, [2]string{k, v})
		}
	}
	sort.Slice(vars, func(i, j int) bool { return vars[i][0] < vars[j][0] })
	var errs []error
	for _, kv := range vars {
		name, value := kv[0], kv[1]
		s, ok := settings[name]
		if !ok {
			msg := "no such setting"
			names := make([]string, 0, len(settings))
			for n := range settings {
				names = append(names, n)
			}
			sort.Strings(names)
			if sug := suggest(name, names); sug != "" {
				msg += fmt.Sprintf(" (did you mean %s?)", sug)
			}
			errs = append(errs, &FieldError{Where: name, Msg: msg})
			continue
		}
		if err := setEnv(reflect.ValueOf(c).Elem().FieldByIndex(s.index), value, s.isPath); err != nil {
			errs = append(errs, &FieldError{Where: name, Path: s.path, Msg: err.Error()})
			continue
		}
		c.meta.setEnv(s.path, name)
	}
	return errors.Join(errs...)
}

// setEnv parses a variable's value into v.
func setEnv(v reflect.Value, value string, isPath bool) error {
	if v.Kind() != reflect.Slice {
		if err := setScalar(v, value, ""); err != nil {
			return err
		}
		if isPath {
			return absPath(v)
		}
		return nil
	}
	et := v.Type().Elem()
	if _, ok := reflect.New(et).Interface().(shorthand); et.Kind() == reflect.Struct && !ok {
		return fmt.Errorf("cannot be set from the environment; use the configuration file")
	}
	s := reflect.MakeSlice(v.Type(), 0, 4)
	for _, item := range strings.Split(value, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		e := reflect.New(v.Type().Elem()).Elem()
		if df, ok := e.Addr().Interface().(defaulter); ok {
			df.setDefaults()
		}
		if sh, ok := e.Addr().Interface().(shorthand); ok {
			sh.setScalar(item)
		} else if err := setScalar(e, item, ""); err != nil {
			return err
		}
		if isPath {
			if err := absPath(e); err != nil {
				return err
			}
		}
		s = reflect.Append(s, e)
	}
	v.Set(s)
	return nil
}

// absPath makes the file name in v absolute against the working directory.
func absPath(v reflect.Value) error {
	p := v.String()
	if p == "" || p == "-" || filepath.IsAbs(p) {
		return nil
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		return err
	}
	v.SetString(abs)
	return nil
}
