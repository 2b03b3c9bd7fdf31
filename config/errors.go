package config

import (
	"strconv"
	"strings"
)

// FieldError is a problem with one setting. Its text is
// "WHERE: PATH: MESSAGE", where WHERE is "file:line" for a value from the
// file, the variable's name for a value from the environment, or the file
// name alone for a default the file did not set.
type FieldError struct {
	Where string // "flowhound.yaml:12", "FLOWHOUND_SENSOR_ID" or ""
	Path  string // "detect.beacon.threshold", "home_nets[2]"; "" for the file as a whole
	Msg   string
}

func (e *FieldError) Error() string {
	var sb strings.Builder
	if e.Where != "" {
		sb.WriteString(e.Where)
		sb.WriteString(": ")
	}
	if e.Path != "" {
		sb.WriteString(e.Path)
		sb.WriteString(": ")
	}
	sb.WriteString(e.Msg)
	return sb.String()
}

// origin is where a setting's value came from.
type origin struct {
	line int    // line in the file
	env  string // or the environment variable
}

// meta remembers where a configuration came from, so that Validate can
// point at the line (or variable) of a bad value.
type meta struct {
	name    string            // the file name as given, for messages
	origins map[string]origin // by setting path
}

func (m *meta) setLine(path string, line int) {
	if m.origins == nil {
		m.origins = map[string]origin{}
	}
	m.origins[path] = origin{line: line}
}

// setEnv records that path (and everything under it) now comes from the
// variable env.
func (m *meta) setEnv(path, env string) {
	if m.origins == nil {
		m.origins = map[string]origin{}
	}
	for p := range m.origins {
		if strings.HasPrefix(p, path+".") || strings.HasPrefix(p, path+"[") {
			delete(m.origins, p)
		}
	}
	m.origins[path] = origin{env: env}
}

// where says where the value at path came from: its own line or variable,
// else that of the nearest enclosing setting, else the file name.
func (m *meta) where(path string) string {
	for p := path; p != ""; p = parentPath(p) {
		if o, ok := m.origins[p]; ok {
			if o.env != "" {
				return o.env
			}
			return lineRef(m.name, o.line)
		}
	}
	return m.name
}

func lineRef(name string, line int) string {
	if name == "" {
		return "line " + strconv.Itoa(line)
	}
	return name + ":" + strconv.Itoa(line)
}

// parentPath strips the last element of a setting path: "a.b[2]" → "a.b",
// "a.b" → "a", "a" → "".
func parentPath(p string) string {
	if strings.HasSuffix(p, "]") {
		if i := strings.LastIndexByte(p, '['); i >= 0 {
			return p[:i]
		}
	}
	if i := strings.LastIndexByte(p, '.'); i >= 0 {
		return p[:i]
	}
	return ""
}

func joinPath(parent, key string) string {
	if parent == "" {
		return key
	}
	return parent + "." + key
}

// suggest returns the candidate closest to s if it is close enough to be a
// likely typo, else "".
func suggest(s string, candidates []string) string {
	best, bestD := "", 3
	for _, c := range candidates {
		if d := editDistance(strings.ToLower(s), strings.ToLower(c)); d < bestD {
			best, bestD = c, d
		}
	}
	if bestD >= len(s) {
		return ""
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
