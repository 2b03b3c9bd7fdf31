// Package apphint extracts application hints from the first payload bytes of
// a flow: the question and answers of a DNS message, the server name of a TLS
// ClientHello, and the method, target and Host of an HTTP/1.x request.
//
// The parsers read bytes straight off the network, so they treat every length
// field as hostile: they never read outside the input, every loop is bounded
// by the input length, and nothing is allocated on the hot path. Results are
// written into caller-owned values ([DNS], [Hello], [HTTPRequest]) that are
// meant to be reused from packet to packet; byte slices in those results alias
// either the input or a fixed buffer inside the result value, so they are valid
// only until the input is modified or the value is reused. Copy them to keep
// them.
//
// The package keeps no state between calls. A result value must not be used by
// two goroutines at once; distinct values may be used concurrently.
package apphint
