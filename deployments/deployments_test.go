// Package deployments holds the systemd, Docker, Compose and Kubernetes
// deployment files. No container engine runs where these tests run, so they
// check what can be checked without one: every file parses, has the kinds
// and fields that matter, and every flowhound configuration in it passes
// the real validator (config.LoadWithEnv) with the environment the
// deployment gives it.
package deployments

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/flowhound/flowhound/config"
)

// ---- helpers ---------------------------------------------------------------

// yamlDocs parses every document of a YAML file.
func yamlDocs(t *testing.T, path string) []map[string]any {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var docs []map[string]any
	for {
		var d map[string]any
		err := dec.Decode(&d)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if d != nil {
			docs = append(docs, d)
		}
	}
	if len(docs) == 0 {
		t.Fatalf("%s: no YAML document", path)
	}
	return docs
}

// get walks a path of map keys and list indexes through decoded YAML.
func get(t *testing.T, v any, path ...any) any {
	t.Helper()
	for i, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				t.Fatalf("%v: not a mapping at %q", path[:i], k)
			}
			if v, ok = m[k]; !ok {
				t.Fatalf("%v: no key %q", path[:i], k)
			}
		case int:
			l, ok := v.([]any)
			if !ok || k >= len(l) {
				t.Fatalf("%v: no item %d", path[:i], k)
			}
			v = l[k]
		}
	}
	return v
}

func strList(t *testing.T, v any) []string {
	t.Helper()
	l, ok := v.([]any)
	if !ok {
		t.Fatalf("want a list, got %T %v", v, v)
	}
	var out []string
	for _, e := range l {
		out = append(out, stringOf(e))
	}
	return out
}

func stringOf(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// loadConfig validates data as a flowhound configuration named name with
// the FLOWHOUND_ variables of environ applied, as `flowhound sense -config`
// and `check-config` do. When the file exists it is loaded from there, so
// relative paths resolve as they would in place.
func loadConfig(t *testing.T, data []byte, name string, environ []string) *config.Config {
	t.Helper()
	path := name
	if _, err := os.Stat(name); err != nil {
		path = filepath.Join(t.TempDir(), filepath.Base(name))
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	c, err := config.LoadWithEnv(path, environ)
	if err != nil {
		t.Fatalf("%s is not a valid flowhound configuration (env %q):\n%v", name, environ, err)
	}
	return c
}

var composeVar = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}`)

// composeDefault substitutes ${VAR:-default} as docker compose does when
// VAR is unset.
func composeDefault(s string) string {
	return composeVar.ReplaceAllString(s, "$2")
}

// jsonlDirEnv returns an override of sinks.jsonl.path into a temporary
// directory when the configuration's log directory does not exist on this
// machine (the validator requires it; systemd's LogsDirectory= creates it).
func jsonlDirEnv(t *testing.T, path string) []string {
	if path == "" || path == "-" {
		return nil
	}
	if _, err := os.Stat(filepath.Dir(path)); err == nil {
		return nil
	}
	t.Logf("%s does not exist here: validating with sinks.jsonl.path in a temporary directory", filepath.Dir(path))
	return []string{"FLOWHOUND_SINKS_JSONL_PATH=" + filepath.Join(t.TempDir(), filepath.Base(path))}
}

// ---- systemd ---------------------------------------------------------------

type unitFile map[string]map[string][]string

func parseUnit(t *testing.T, path string) unitFile {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	u := unitFile{}
	var sec string
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			sec = line[1 : len(line)-1]
			u[sec] = map[string][]string{}
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || sec == "" {
				t.Fatalf("%s:%d: not a key=value line in a section: %q", path, n, line)
			}
			u[sec][k] = append(u[sec][k], v)
		}
	}
	return u
}

func (u unitFile) one(t *testing.T, sec, key string) string {
	t.Helper()
	v := u[sec][key]
	if len(v) != 1 {
		t.Fatalf("[%s] %s: want exactly one, got %q", sec, key, v)
	}
	return v[0]
}

func TestSystemdUnit(t *testing.T) {
	u := parseUnit(t, "systemd/flowhound.service")
	want := map[string]string{
		"ExecStart":               "/usr/local/bin/flowhound sense -config /etc/flowhound/flowhound.yaml -user flowhound",
		"User":                    "flowhound",
		"AmbientCapabilities":     "CAP_NET_RAW",
		"CapabilityBoundingSet":   "CAP_NET_RAW",
		"EnvironmentFile":         "-/etc/flowhound/flowhound.env",
		"NoNewPrivileges":         "yes",
		"ProtectSystem":           "strict",
		"ProtectHome":             "yes",
		"PrivateTmp":              "yes",
		"ProtectKernelTunables":   "yes",
		"ProtectKernelModules":    "yes",
		"ProtectKernelLogs":       "yes",
		"RestrictAddressFamilies": "AF_PACKET AF_INET AF_INET6 AF_UNIX AF_NETLINK",
		"MemoryDenyWriteExecute":  "yes",
		"LockPersonality":         "yes",
		"SystemCallFilter":        "@system-service",
		"SystemCallArchitectures": "native",
		"Restart":                 "on-failure",
		"LogsDirectory":           "flowhound",
		"KillSignal":              "SIGTERM",
		"RestrictSUIDSGID":        "yes",
		"RestrictNamespaces":      "yes",
		"PrivateDevices":          "yes",
		"ProtectControlGroups":    "yes",
		"SystemCallErrorNumber":   "EPERM",
		"RestartSec":              "5s",
		"TimeoutStopSec":          "30s",
		"ExecStartPre":            "/usr/local/bin/flowhound check-config -q /etc/flowhound/flowhound.yaml",
		"RestrictRealtime":        "yes",
		"ProtectClock":            "yes",
		"ProtectHostname":         "yes",
		"ProtectProc":             "invisible",
		"DevicePolicy":            "closed",
		"UMask":                   "0027",
		"Type":                    "exec",
		"Group":                   "flowhound",
		"LogsDirectoryMode":       "0750",
		"RemoveIPC":               "yes",
		"KeyringMode":             "private",
	}
	for k, v := range want {
		if got := u.one(t, "Service", k); got != v {
			t.Errorf("[Service] %s = %q, want %q", k, got, v)
		}
	}
	// Settings that would break capture from the host's interfaces.
	for _, k := range []string{"PrivateNetwork", "PrivateUsers", "IPAddressDeny", "NetworkNamespacePath", "ProcSubset"} {
		if v, ok := u["Service"][k]; ok {
			t.Errorf("[Service] %s=%q breaks AF_PACKET capture or privilege dropping", k, v)
		}
	}
	if got := u["Service"]["ExecReload"]; !slices.Equal(got, []string{
		"/usr/local/bin/flowhound check-config -q /etc/flowhound/flowhound.yaml", "/bin/kill -HUP $MAINPID"}) {
		t.Errorf("[Service] ExecReload = %q, want check-config then SIGHUP", got)
	}
	if u.one(t, "Install", "WantedBy") != "multi-user.target" {
		t.Error("[Install] WantedBy: want multi-user.target")
	}
}

// envFile parses KEY=VALUE lines (comments and blank lines skipped).
func envFile(t *testing.T, path string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var env []string
	for n, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, _, ok := strings.Cut(line, "=")
		if !ok || !strings.HasPrefix(k, config.EnvPrefix) {
			t.Errorf("%s:%d: want FLOWHOUND_NAME=value, got %q", path, n+1, line)
			continue
		}
		env = append(env, line)
	}
	return env
}

func TestSystemdConfigAndEnv(t *testing.T) {
	const name = "systemd/flowhound.yaml"
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	// The file alone is incomplete on purpose: the SASL password comes
	// from the environment file.
	if _, err := config.Parse(data, name); err == nil || !strings.Contains(err.Error(), "sinks.kafka.sasl.password") {
		t.Errorf("without the environment, want a missing sinks.kafka.sasl.password error, got %v", err)
	}
	env := envFile(t, "systemd/flowhound.env.example")
	if len(env) == 0 {
		t.Fatal("flowhound.env.example sets no variable")
	}
	// Every variable name is a real setting: ApplyEnv rejects unknown ones.
	c := config.Default()
	if err := c.ApplyEnv(env); err != nil {
		t.Fatalf("flowhound.env.example: %v", err)
	}
	if !slices.ContainsFunc(env, func(kv string) bool { return strings.HasPrefix(kv, "FLOWHOUND_SINKS_KAFKA_SASL_PASSWORD=") }) {
		t.Error("flowhound.env.example does not show FLOWHOUND_SINKS_KAFKA_SASL_PASSWORD")
	}

	// The file as the service sees it: with the example environment.
	raw := loadRawJSONLPath(t, data)
	if want := "/var/log/flowhound/"; !strings.HasPrefix(raw, want) {
		t.Errorf("sinks.jsonl.path = %q, want it under the unit's LogsDirectory %s", raw, want)
	}
	full := append(append([]string{}, env...), jsonlDirEnv(t, raw)...)
	cfg := loadConfig(t, data, name, full)
	if pw, err := cfg.Sinks.Kafka.SASL.PasswordValue(); err != nil || pw != "change-me" {
		t.Errorf("SASL password from the env file: %q, %v", pw, err)
	}
	if len(cfg.Capture.Interfaces) != 1 || cfg.Capture.Interfaces[0].Name != "eth1" {
		t.Errorf("capture.interfaces = %+v, want eth1", cfg.Capture.Interfaces)
	}
	// And with only the secret set, as a minimal env file would have it.
	loadConfig(t, data, name, append([]string{"FLOWHOUND_SINKS_KAFKA_SASL_PASSWORD=dummy"}, jsonlDirEnv(t, raw)...))
}

// loadRawJSONLPath returns sinks.jsonl.path as written in the file.
func loadRawJSONLPath(t *testing.T, data []byte) string {
	t.Helper()
	var doc struct {
		Sinks struct {
			JSONL struct {
				Path string `yaml:"path"`
			} `yaml:"jsonl"`
		} `yaml:"sinks"`
	}
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	return doc.Sinks.JSONL.Path
}

// buildFlowhound builds ./cmd/flowhound into a temporary directory.
func buildFlowhound(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "flowhound")
	cmd := exec.Command("go", "build", "-trimpath", "-o", bin, "github.com/flowhound/flowhound/cmd/flowhound")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// TestSystemdVerify runs systemd-analyze verify on a copy of the unit whose
// binary path points at a fresh build, and runs the unit's ExecStartPre
// (check-config) with the example environment.
func TestSystemdVerify(t *testing.T) {
	if testing.Short() {
		t.Skip("builds flowhound")
	}
	unit, err := os.ReadFile("systemd/flowhound.service")
	if err != nil {
		t.Fatal(err)
	}
	bin := buildFlowhound(t)

	// The CLI's own check, as ExecStartPre runs it, with the env file.
	data, err := os.ReadFile("systemd/flowhound.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cc := exec.Command(bin, "check-config", "-q", "systemd/flowhound.yaml")
	cc.Env = append(envFile(t, "systemd/flowhound.env.example"), jsonlDirEnv(t, loadRawJSONLPath(t, data))...)
	if out, err := cc.CombinedOutput(); err != nil {
		t.Errorf("flowhound check-config: %v\n%s", err, out)
	}

	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not installed: the unit was checked textually only")
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "flowhound.service")
	if err := os.WriteFile(path, bytes.ReplaceAll(unit, []byte("/usr/local/bin/flowhound"), []byte(bin)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", "--man=no", path).CombinedOutput()
	t.Logf("systemd-analyze verify (ExecStart=%s):\n%s", bin, out)
	if err != nil {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
	// Anything it prints about our unit is a problem (unknown settings,
	// bad values); lines about other units are not ours.
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if strings.Contains(line, "flowhound.service") {
			t.Errorf("systemd-analyze verify: %s", line)
		}
	}
	// The exposure score, for the report (offline: the unit is not loaded).
	if sec, err := exec.Command(analyze, "security", "--offline=true", "--no-pager", path).CombinedOutput(); err == nil || len(sec) > 0 {
		lines := strings.Split(strings.TrimSpace(string(sec)), "\n")
		t.Logf("systemd-analyze security --offline: %s", lines[len(lines)-1])
	}
}

// ---- Docker ----------------------------------------------------------------

type stage struct {
	from, name string
	instr      [][2]string // instruction, arguments
}

// parseDockerfile splits a Dockerfile into stages (continuations joined,
// comments dropped) and returns the global ARG defaults.
func parseDockerfile(t *testing.T, path string) ([]stage, map[string]string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var stages []stage
	args := map[string]string{}
	var cur strings.Builder
	flush := func() {
		line := strings.TrimSpace(cur.String())
		cur.Reset()
		if line == "" {
			return
		}
		ins, rest, _ := strings.Cut(line, " ")
		ins, rest = strings.ToUpper(ins), strings.TrimSpace(rest)
		switch {
		case ins == "FROM":
			f := strings.Fields(rest)
			s := stage{from: f[0]}
			if len(f) == 3 && strings.EqualFold(f[1], "AS") {
				s.name = f[2]
			}
			stages = append(stages, s)
		case len(stages) == 0 && ins == "ARG":
			k, v, _ := strings.Cut(rest, "=")
			args[k] = v
		case len(stages) == 0:
			t.Fatalf("%s: %s before the first FROM", path, ins)
		default:
			s := &stages[len(stages)-1]
			s.instr = append(s.instr, [2]string{ins, rest})
		}
	}
	for _, line := range strings.Split(string(data), "\n") {
		trim := strings.TrimSpace(line)
		if strings.HasPrefix(trim, "#") {
			continue
		}
		if strings.HasSuffix(trim, "\\") {
			cur.WriteString(strings.TrimSuffix(trim, "\\") + " ")
			continue
		}
		cur.WriteString(trim)
		flush()
	}
	flush()
	return stages, args
}

func (s stage) last(ins string) string {
	v := ""
	for _, i := range s.instr {
		if i[0] == ins {
			v = i[1]
		}
	}
	return v
}

func TestDockerfile(t *testing.T) {
	stages, args := parseDockerfile(t, "docker/Dockerfile")
	byName := map[string]stage{}
	for _, s := range stages {
		s.from = os.Expand(s.from, func(k string) string { return args[k] })
		byName[s.name] = s
	}
	build, ok := byName["build"]
	if !ok || build.from != "golang:1.26" {
		t.Fatalf("want a build stage FROM golang:1.26, got %+v", build)
	}
	var run string
	for _, i := range build.instr {
		if i[0] == "RUN" && strings.Contains(i[1], "go build") {
			run = i[1]
		}
	}
	for _, w := range []string{"CGO_ENABLED=0", "-trimpath", "./cmd/flowhound", "-o /out/flowhound"} {
		if !strings.Contains(run, w) {
			t.Errorf("build stage's go build lacks %q: %q", w, run)
		}
	}
	final := stages[len(stages)-1]
	if !strings.HasPrefix(final.from, "gcr.io/distroless/static") {
		t.Errorf("default (last) stage is FROM %s, want distroless static", final.from)
	}
	if _, ok := byName["tcpdump"]; !ok {
		t.Error("no tcpdump stage (the image for capture filters)")
	}
	for _, s := range stages {
		if s.name == "build" {
			continue
		}
		t.Run(s.name, func(t *testing.T) {
			user := s.last("USER")
			uid, _, _ := strings.Cut(user, ":")
			if uid == "" || uid == "0" || uid == "root" {
				t.Errorf("USER %q: want a non-root user", user)
			}
			var ep, cmd []string
			if err := json.Unmarshal([]byte(s.last("ENTRYPOINT")), &ep); err != nil || len(ep) != 1 || filepath.Base(ep[0]) != "flowhound" {
				t.Errorf("ENTRYPOINT %q: want [\".../flowhound\"] (%v)", s.last("ENTRYPOINT"), err)
			}
			if err := json.Unmarshal([]byte(s.last("CMD")), &cmd); err != nil || strings.Join(cmd, " ") != "sense -config /etc/flowhound/flowhound.yaml" {
				t.Errorf("CMD %q: want sense -config /etc/flowhound/flowhound.yaml (%v)", s.last("CMD"), err)
			}
			// The health check runs the binary itself (no shell, no curl).
			hc := s.last("HEALTHCHECK")
			_, hcCmd, _ := strings.Cut(hc, "CMD ")
			var hcArgv []string
			if err := json.Unmarshal([]byte(hcCmd), &hcArgv); err != nil || len(ep) != 1 ||
				strings.Join(hcArgv, " ") != ep[0]+" healthcheck -q -config /etc/flowhound/flowhound.yaml" {
				t.Errorf("HEALTHCHECK %q: want CMD [%q, \"healthcheck\", \"-q\", \"-config\", \"/etc/flowhound/flowhound.yaml\"] (%v)", hc, ep, err)
			}
			for _, i := range s.instr {
				if i[0] != "COPY" {
					continue
				}
				f := strings.Fields(i[1])
				if strings.HasPrefix(f[0], "--from=") {
					if from := strings.TrimPrefix(f[0], "--from="); from != "build" {
						t.Errorf("COPY --from=%s: no such stage", from)
					}
					continue
				}
				// Sources are relative to the build context, the repository root.
				for _, src := range f[:len(f)-1] {
					if _, err := os.Stat(filepath.Join("..", src)); err != nil {
						t.Errorf("COPY %s: %v", src, err)
					}
				}
			}
		})
	}
	// The configuration baked into the image.
	data, err := os.ReadFile("docker/flowhound.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := config.Parse(data, "docker/flowhound.yaml"); err != nil {
		t.Errorf("docker/flowhound.yaml: %v", err)
	}
	if _, err := os.Stat("docker/Dockerfile.dockerignore"); err != nil {
		t.Error(err)
	}
}

// ---- Compose ---------------------------------------------------------------

func TestCompose(t *testing.T) {
	doc := yamlDocs(t, "compose/docker-compose.yml")[0]
	services, _ := get(t, doc, "services").(map[string]any)
	for _, s := range []string{"flowhound", "kafka", "influxdb"} {
		if _, ok := services[s]; !ok {
			t.Fatalf("no service %q", s)
		}
	}
	fh := services["flowhound"]
	if get(t, fh, "network_mode") != "host" {
		t.Error("flowhound: want network_mode host")
	}
	if got := strList(t, get(t, fh, "cap_add")); !slices.Equal(got, []string{"NET_RAW"}) {
		t.Errorf("flowhound cap_add = %v, want [NET_RAW]", got)
	}
	if got := strList(t, get(t, fh, "cap_drop")); !slices.Equal(got, []string{"ALL"}) {
		t.Errorf("flowhound cap_drop = %v, want [ALL]", got)
	}
	if get(t, fh, "read_only") != true {
		t.Error("flowhound: want read_only true")
	}
	if df := get(t, fh, "build", "dockerfile"); df != "deployments/docker/Dockerfile" {
		t.Errorf("build.dockerfile = %v", df)
	}
	if ctx := stringOf(get(t, fh, "build", "context")); filepath.Clean(filepath.Join("compose", ctx)) != ".." {
		t.Errorf("build.context %s is not the repository root", ctx)
	}

	// Kafka in KRaft mode, single node.
	kenv, _ := get(t, services["kafka"], "environment").(map[string]any)
	if !strings.HasPrefix(stringOf(get(t, services["kafka"], "image")), "apache/kafka:") {
		t.Error("kafka: want the apache/kafka image")
	}
	for k, v := range map[string]string{"KAFKA_PROCESS_ROLES": "broker,controller", "KAFKA_NODE_ID": "1",
		"KAFKA_CONTROLLER_QUORUM_VOTERS": "1@localhost:9093", "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR": "1"} {
		if got := stringOf(kenv[k]); got != v {
			t.Errorf("kafka %s = %q, want %q", k, got, v)
		}
	}
	// InfluxDB 2 initialised with an org, a bucket and a token.
	ienv, _ := get(t, services["influxdb"], "environment").(map[string]any)
	if !strings.HasPrefix(stringOf(get(t, services["influxdb"], "image")), "influxdb:2") {
		t.Error("influxdb: want an influxdb:2 image")
	}
	for _, k := range []string{"DOCKER_INFLUXDB_INIT_MODE", "DOCKER_INFLUXDB_INIT_ORG", "DOCKER_INFLUXDB_INIT_BUCKET",
		"DOCKER_INFLUXDB_INIT_ADMIN_TOKEN", "DOCKER_INFLUXDB_INIT_USERNAME", "DOCKER_INFLUXDB_INIT_PASSWORD"} {
		if ienv[k] == nil {
			t.Errorf("influxdb: %s not set", k)
		}
	}

	// The sensor's configuration, with the sensor's environment (compose
	// defaults substituted), must be valid and point at these services.
	var environ []string
	fenv, _ := get(t, fh, "environment").(map[string]any)
	for k, v := range fenv {
		environ = append(environ, k+"="+composeDefault(stringOf(v)))
	}
	vols := strList(t, get(t, fh, "volumes"))
	if !slices.Contains(vols, "./flowhound.yaml:/etc/flowhound/flowhound.yaml:ro") {
		t.Errorf("the config is not mounted at /etc/flowhound/flowhound.yaml: %v", vols)
	}
	data, err := os.ReadFile("compose/flowhound.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg := loadConfig(t, data, "compose/flowhound.yaml", environ)
	if got := cfg.Sinks.Kafka.Brokers; !slices.Equal(got, []string{"127.0.0.1:9092"}) {
		t.Errorf("kafka brokers %v", got)
	}
	if adv := stringOf(kenv["KAFKA_ADVERTISED_LISTENERS"]); adv != "PLAINTEXT://127.0.0.1:9092" {
		t.Errorf("kafka advertises %s, the sensor (host network) dials 127.0.0.1:9092", adv)
	}
	if ports := strList(t, get(t, services["kafka"], "ports")); !slices.Contains(ports, "127.0.0.1:9092:9092") {
		t.Errorf("kafka does not publish 127.0.0.1:9092: %v", ports)
	}
	if ports := strList(t, get(t, services["influxdb"], "ports")); !slices.Contains(ports, "127.0.0.1:8086:8086") {
		t.Errorf("influxdb does not publish 127.0.0.1:8086: %v", ports)
	}
	x := cfg.Sinks.InfluxDB
	if x.URL != "http://127.0.0.1:8086" || x.Org != composeDefault(stringOf(ienv["DOCKER_INFLUXDB_INIT_ORG"])) ||
		x.Bucket != composeDefault(stringOf(ienv["DOCKER_INFLUXDB_INIT_BUCKET"])) {
		t.Errorf("influxdb sink %s org %q bucket %q does not match the initialised server", x.URL, x.Org, x.Bucket)
	}
	if tok, err := x.TokenValue(); err != nil || tok == "" || tok != composeDefault(stringOf(ienv["DOCKER_INFLUXDB_INIT_ADMIN_TOKEN"])) {
		t.Errorf("influxdb token %q (%v) is not the initialised admin token", tok, err)
	}
	if len(cfg.Capture.Interfaces) != 1 || cfg.Capture.Interfaces[0].Name != "eth0" {
		t.Errorf("capture.interfaces = %+v", cfg.Capture.Interfaces)
	}
	// The health check asks the sensor's own /healthz, which it serves
	// only with metrics.listen set.
	hc := strList(t, get(t, fh, "healthcheck", "test"))
	if strings.Join(hc, " ") != "CMD /usr/local/bin/flowhound healthcheck -q -config /etc/flowhound/flowhound.yaml" {
		t.Errorf("flowhound healthcheck test %q", hc)
	}
	if cfg.Metrics.Listen == "" {
		t.Error("compose/flowhound.yaml: metrics.listen is empty, the health check would fail")
	}
}

// ---- Kubernetes ------------------------------------------------------------

func TestKubernetesDaemonSet(t *testing.T) {
	docs := yamlDocs(t, "kubernetes/daemonset.yaml")
	byKind := map[string]map[string]any{}
	for _, d := range docs {
		kind := stringOf(get(t, d, "kind"))
		if byKind[kind] != nil {
			t.Fatalf("two %s documents", kind)
		}
		byKind[kind] = d
		if get(t, d, "apiVersion") == nil || get(t, d, "metadata", "name") == nil {
			t.Errorf("%s without apiVersion or name", kind)
		}
	}
	for _, k := range []string{"Namespace", "ServiceAccount", "Secret", "ConfigMap", "DaemonSet"} {
		if byKind[k] == nil {
			t.Fatalf("no %s", k)
		}
	}
	ds := byKind["DaemonSet"]
	if get(t, ds, "apiVersion") != "apps/v1" {
		t.Error("DaemonSet: want apps/v1")
	}
	pod := get(t, ds, "spec", "template", "spec")
	if get(t, pod, "hostNetwork") != true {
		t.Error("hostNetwork must be true")
	}
	if get(t, pod, "dnsPolicy") != "ClusterFirstWithHostNet" {
		t.Error("dnsPolicy must be ClusterFirstWithHostNet")
	}
	sel, _ := get(t, ds, "spec", "selector", "matchLabels").(map[string]any)
	labels, _ := get(t, ds, "spec", "template", "metadata", "labels").(map[string]any)
	for k, v := range sel {
		if labels[k] != v {
			t.Errorf("selector %s=%v does not match the pod labels", k, v)
		}
	}
	tolerateAll := false
	for _, tol := range get(t, pod, "tolerations").([]any) {
		m := tol.(map[string]any)
		if m["operator"] == "Exists" && m["key"] == nil && m["effect"] == nil {
			tolerateAll = true
		}
	}
	if !tolerateAll {
		t.Error("no toleration {operator: Exists}: the sensor would skip tainted nodes")
	}

	ctr := get(t, pod, "containers", 0)
	sc := get(t, ctr, "securityContext")
	if got := strList(t, get(t, sc, "capabilities", "add")); !slices.Equal(got, []string{"NET_RAW"}) {
		t.Errorf("capabilities.add = %v, want [NET_RAW]", got)
	}
	if got := strList(t, get(t, sc, "capabilities", "drop")); !slices.Equal(got, []string{"ALL"}) {
		t.Errorf("capabilities.drop = %v, want [ALL]", got)
	}
	if get(t, sc, "allowPrivilegeEscalation") != false || get(t, sc, "readOnlyRootFilesystem") != true || get(t, sc, "privileged") != false {
		t.Error("want allowPrivilegeEscalation false, readOnlyRootFilesystem true, privileged false")
	}
	for _, k := range []string{"requests", "limits"} {
		r, _ := get(t, ctr, "resources", k).(map[string]any)
		if r["cpu"] == nil || r["memory"] == nil {
			t.Errorf("resources.%s: want cpu and memory", k)
		}
	}

	// The Secret carries the password into FLOWHOUND_SINKS_KAFKA_SASL_PASSWORD.
	var environ []string
	secretRef := false
	for _, e := range get(t, ctr, "env").([]any) {
		name := stringOf(get(t, e, "name"))
		m := e.(map[string]any)
		switch {
		case m["value"] != nil:
			// The kubelet expands $(NAME) from the variables before.
			v := stringOf(m["value"])
			for _, kv := range environ {
				k, val, _ := strings.Cut(kv, "=")
				v = strings.ReplaceAll(v, "$("+k+")", val)
			}
			environ = append(environ, name+"="+v)
		default:
			vf, _ := m["valueFrom"].(map[string]any)
			if ref, ok := vf["fieldRef"].(map[string]any); ok && ref["fieldPath"] == "status.hostIP" {
				environ = append(environ, name+"=192.0.2.10")
				continue
			}
			if ref, ok := vf["secretKeyRef"].(map[string]any); ok {
				sec := byKind["Secret"]
				if ref["name"] != get(t, sec, "metadata", "name") {
					t.Errorf("%s: secret %v is not the one defined here", name, ref["name"])
				}
				data, _ := get(t, sec, "stringData").(map[string]any)
				if data[stringOf(ref["key"])] == nil {
					t.Errorf("%s: secret has no key %v", name, ref["key"])
				}
				secretRef = secretRef || name == "FLOWHOUND_SINKS_KAFKA_SASL_PASSWORD"
			}
			environ = append(environ, name+"=dummy-"+strings.ToLower(strings.TrimPrefix(name, config.EnvPrefix)))
		}
	}
	if !secretRef {
		t.Error("FLOWHOUND_SINKS_KAFKA_SASL_PASSWORD is not taken from the Secret")
	}

	// The ConfigMap is mounted where the args look, and its configuration
	// is valid with the pod's environment (and only with it).
	cm := byKind["ConfigMap"]
	args := strList(t, get(t, ctr, "args"))
	if strings.Join(args, " ") != "sense -config /etc/flowhound/flowhound.yaml" {
		t.Errorf("args = %v", args)
	}
	mount := get(t, ctr, "volumeMounts", 0)
	vol := get(t, pod, "volumes", 0)
	if get(t, mount, "name") != get(t, vol, "name") || get(t, vol, "configMap", "name") != get(t, cm, "metadata", "name") ||
		get(t, mount, "mountPath") != "/etc/flowhound" {
		t.Errorf("the ConfigMap is not mounted at /etc/flowhound: %v %v", mount, vol)
	}
	text := stringOf(get(t, cm, "data", "flowhound.yaml"))
	if _, err := config.Parse([]byte(text), "flowhound.yaml"); err == nil || !strings.Contains(err.Error(), "sinks.kafka.sasl.password") {
		t.Errorf("without the pod's environment, want a missing sinks.kafka.sasl.password error, got %v", err)
	}
	cfg := loadConfig(t, []byte(text), "configmap-flowhound.yaml", environ)
	if cfg.Sensor.ID != "dummy-sensor_id" {
		t.Errorf("sensor.id = %q, want it from FLOWHOUND_SENSOR_ID", cfg.Sensor.ID)
	}
	// Metrics listen on the node's address, where the liveness probe and
	// the scrape annotation look.
	if cfg.Metrics.Listen != "192.0.2.10:9750" {
		t.Errorf("metrics.listen = %q, want the node's address (HOST_IP) and port 9750", cfg.Metrics.Listen)
	}
	probe := get(t, ctr, "livenessProbe", "httpGet")
	if get(t, probe, "path") != "/healthz" || get(t, probe, "port") != "metrics" ||
		get(t, ctr, "ports", 0, "name") != "metrics" || get(t, ctr, "ports", 0, "containerPort") != 9750 {
		t.Errorf("livenessProbe %v and ports %v: want /healthz on the metrics port 9750", probe, get(t, ctr, "ports"))
	}
	if ann, _ := get(t, ds, "spec", "template", "metadata", "annotations").(map[string]any); ann["prometheus.io/port"] != "9750" {
		t.Errorf("pod annotations %v: want prometheus.io/port 9750", ann)
	}
	if ns := stringOf(get(t, byKind["Namespace"], "metadata", "name")); ns != get(t, ds, "metadata", "namespace") ||
		ns != get(t, cm, "metadata", "namespace") || ns != get(t, byKind["Secret"], "metadata", "namespace") {
		t.Error("the objects are not all in the Namespace defined here")
	}
}
