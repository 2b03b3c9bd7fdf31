package live

import (
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"testing"
)

// TestDropPrivileges builds a small program without cgo (the build that can
// change every thread's capabilities) and checks what is left after
// DropPrivileges: as root switching to nobody, and as nobody holding
// CAP_NET_RAW as an ambient capability, as a systemd service would.
func TestDropPrivileges(t *testing.T) {
	requireRoot(t)
	goCmd, err := exec.LookPath("go")
	if err != nil {
		t.Skip("the go command is needed to build the test program")
	}
	if _, err := user.Lookup("nobody"); err != nil {
		t.Skip("no user nobody to drop privileges to")
	}
	bin := filepath.Join(t.TempDir(), "dropprivs")
	build := exec.Command(goCmd, "build", "-o", bin, "./testdata/dropprivs")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	want := map[string]string{
		"Uid": "65534", "Gid": "65534", "CapEff": "0000000000000000", "CapPrm": "0000000000000000",
		"CapInh": "0000000000000000", "CapAmb": "0000000000000000", "NoNewPrivs": "1",
	}
	run := func(name string, cmd *exec.Cmd, want map[string]string) {
		t.Helper()
		out, err := cmd.Output()
		if err != nil {
			msg := ""
			if ee, ok := err.(*exec.ExitError); ok {
				msg = string(ee.Stderr)
			}
			t.Fatalf("%s: %v: %s", name, err, msg)
		}
		st := map[string]string{}
		for _, l := range strings.Split(string(out), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok {
				st[k] = strings.TrimSpace(v)
			}
		}
		for k, w := range want {
			if got := strings.Fields(st[k]); len(got) == 0 || got[0] != w {
				t.Errorf("%s: %s is %q, want %s", name, k, st[k], w)
			}
		}
	}
	// Root also had CAP_SETPCAP to empty the bounding set, and its groups
	// become nobody's primary group alone.
	rootWant := map[string]string{"CapBnd": "0000000000000000", "Groups": "65534"}
	for k, v := range want {
		rootWant[k] = v
	}
	run("root to nobody", exec.Command(bin, "nobody"), rootWant)

	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		t.Log("setpriv (util-linux) not found: the ambient-capability case is not tested")
		return
	}
	run("nobody with ambient CAP_NET_RAW", exec.Command(setpriv, "--reuid=65534", "--regid=65534", "--clear-groups",
		"--inh-caps=-all,+net_raw", "--ambient-caps=+net_raw", "--bounding-set=-all,+net_raw", bin, "nobody"), want)
}
