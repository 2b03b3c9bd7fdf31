// Package testservers starts the real servers that flowhound's integration
// tests run against, and talks to them the way those tests need: the Kafka
// wire-protocol broker of tools/kafkabroker (franz-go's kfake) and InfluxDB
// 1.8.10, each on loopback ports that were free a moment before.
//
// Only tests import it. The binaries come from .bin/ at the repository root,
// where scripts/devservices.sh build (and `make devbins`, which `make test`
// runs first) caches them; a missing one is built on first use, and a test
// whose server cannot be built is skipped with a message saying how to build
// it.
//
// Every server a test starts is stopped when the test ends (SIGTERM, then
// SIGKILL after 15 seconds), its temporary data is removed, and on Linux it
// is killed as well should the test binary die without cleaning up.
//
// Tests that need no server of their own can share one: SharedKafka and
// SharedInflux use the servers named by FLOWHOUND_TEST_KAFKA and
// FLOWHOUND_TEST_INFLUX (scripts/devservices.sh start) when those are set.
package testservers
