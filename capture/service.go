package capture

import "github.com/flowhound/flowhound/flow"

// guessService names the application protocol of a flow from what the
// application hints saw, falling back to the responder's well-known port.
// It is a hint for analysts and detectors, not a protocol identification.
func guessService(r *flow.Record) string {
	if a := r.App; a != nil {
		switch {
		case a.DNSQuery != "":
			return "dns"
		case a.TLSSNI != "":
			return "tls"
		case a.HTTPMethod != "":
			return "http"
		}
	}
	if !r.Proto.HasPorts() {
		return ""
	}
	udp := r.Proto == flow.ProtoUDP
	switch r.RespPort {
	case 53:
		return "dns"
	case 80, 8080, 8000:
		if !udp {
			return "http"
		}
	case 443, 8443:
		if udp {
			return "quic"
		}
		return "tls"
	case 22:
		return "ssh"
	case 23:
		return "telnet"
	case 21:
		return "ftp"
	case 25, 587, 465:
		return "smtp"
	case 110, 995:
		return "pop3"
	case 143, 993:
		return "imap"
	case 88:
		return "krb"
	case 123:
		if udp {
			return "ntp"
		}
	case 135:
		return "dce_rpc"
	case 137:
		return "netbios-ns"
	case 139, 445:
		if !udp {
			return "smb"
		}
	case 161, 162:
		return "snmp"
	case 389, 636, 3268, 3269:
		return "ldap"
	case 514:
		return "syslog"
	case 1433:
		return "mssql"
	case 3306:
		return "mysql"
	case 5432:
		return "postgresql"
	case 3389:
		return "rdp"
	case 5985, 5986:
		return "winrm"
	case 5353:
		return "mdns"
	case 5355:
		return "llmnr"
	case 67, 68:
		return "dhcp"
	case 102:
		return "s7comm"
	case 502:
		return "modbus"
	case 1194:
		return "openvpn"
	case 51820:
		return "wireguard"
	}
	return ""
}
