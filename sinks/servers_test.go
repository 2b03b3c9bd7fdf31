package sinks

// The integration tests run against real servers started by
// internal/testservers. FLOWHOUND_TEST_KAFKA and FLOWHOUND_TEST_INFLUX point
// the tests that need no server of their own at servers already running
// (scripts/devservices.sh start); otherwise those tests share one influxd
// for the whole test binary and start a broker each.

import (
	"os"
	"testing"

	"github.com/flowhound/flowhound/internal/testservers"
)

// sharedInflux serves the tests that call sharedInflux.URL.
var sharedInflux testservers.SharedInflux

func TestMain(m *testing.M) {
	code := m.Run()
	sharedInflux.Stop()
	os.Exit(code)
}
