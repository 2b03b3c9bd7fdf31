package eval

import (
	"net/netip"

	"github.com/flowhound/flowhound/detect"
)

// RealCapture is the ground truth of one shared real capture, transcribed
// from ../shared/pcaps/MANIFEST.md.
type RealCapture struct {
	File string
	// Category is the manifest's category.
	Category string
	// HomeNets are the internal networks; nil means flowhound's defaults
	// (RFC 1918, 100.64/10, ULA, link-local).
	HomeNets []netip.Prefix
	// Expect lists what a detector should find. A capture with none is
	// benign: every finding on it is a false positive.
	Expect []RealExpect
}

// RealExpect is one expected finding.
type RealExpect struct {
	// Kind is the finding kind; empty (only with Optional) accepts any.
	Kind detect.Kind
	Src  netip.Addr
	// Dsts are the peers; empty means any peer of Src.
	Dsts    []netip.Addr
	DstPort uint16
	FQDN    string
	// Optional marks known-bad or ambiguous activity: a finding on it is
	// neither missed when absent nor a false positive when present.
	Optional bool
	// Note says briefly what it is.
	Note string
	// FromFlows marks addresses read from the capture's flows because the
	// manifest names none.
	FromFlows bool
}

func ip(s string) netip.Addr { return netip.MustParseAddr(s) }

func ips(ss ...string) []netip.Addr {
	out := make([]netip.Addr, len(ss))
	for i, s := range ss {
		out[i] = ip(s)
	}
	return out
}

// RealTruth is the ground truth of the shared captures that have any
// (robustness-only captures are left out). Each entry quotes the manifest.
var RealTruth = []RealCapture{
	// test-cc-capture-1.pcap — "Beacon src 147.32.80.37 -> 141.193.213.21:443
	// (testing.com). Designed period 2 s + curl time. OBSERVED (tshark SYN
	// starts): 297 conns, median 2.2 s, sd 0.2 s, min 2.2, max 4.4 s over
	// 665 s." The capture is from the CTU network, 147.32.0.0/16.
	{File: "test-cc-capture-1.pcap", Category: "C2/beacon", HomeNets: []netip.Prefix{netip.MustParsePrefix("147.32.0.0/16")},
		Expect: []RealExpect{{Kind: detect.KindBeacon, Src: ip("147.32.80.37"), Dsts: ips("141.193.213.21"), DstPort: 443, FQDN: "testing.com",
			Note: "curl loop every ~2.2 s"}}},
	// Example-1-2021-01-06-Emotet-infection.pcap — "Victim 10.1.6.206.
	// Emotet C2 HTTP POST: 5.2.136.90:80 (main beacon), 167.71.4.0:8080, also
	// 46.101.230.194:443. Initial downloads from 89.252.164.58,
	// 66.153.205.191, 173.255.195.246, 103.92.235.25 (port 80). OBSERVED
	// beacon 10.1.6.206->5.2.136.90:80: 7 POST bursts, intervals
	// 960/930/982/917/953/945 s (median 949 s ~15.8 min, sd 21 s, jitter
	// ~±3%). 167.71.4.0:8080 bursts at ~955/932/3796 s."
	{File: "Example-1-2021-01-06-Emotet-infection.pcap", Category: "C2/beacon",
		Expect: []RealExpect{
			{Kind: detect.KindBeacon, Src: ip("10.1.6.206"), Dsts: ips("5.2.136.90"), DstPort: 80, Note: "Emotet C2, ~15.8 min"},
			{Src: ip("10.1.6.206"), Dsts: ips("167.71.4.0", "46.101.230.194"), Optional: true, Note: "other Emotet C2"},
			{Src: ip("10.1.6.206"), Dsts: ips("89.252.164.58", "66.153.205.191", "173.255.195.246", "103.92.235.25"), Optional: true, Note: "malware downloads"},
		}},
	// 2020-06-03-Dridex-infection-traffic.pcap — "Victim 10.6.3.101.
	// Non-Microsoft external TLS peers (candidate Dridex C2 ...):
	// 212.95.153.36:453 (2.6 MB, 18 s), 185.86.148.68:443, 5.101.50.87.
	// OBSERVED: no clean periodic beacon in this 26-min window ... Useful as
	// NEGATIVE for periodicity / positive for odd-port TLS C2."
	{File: "2020-06-03-Dridex-infection-traffic.pcap", Category: "C2/beacon",
		Expect: []RealExpect{
			{Src: ip("10.6.3.101"), Dsts: ips("212.95.153.36", "185.86.148.68", "5.101.50.87"), Optional: true, Note: "Dridex C2 candidates, not periodic"},
		}},
	// cryptowall4_c2.pcapng — "Infected 192.168.122.145 -> C2
	// 184.170.149.44:80 HTTP POSTs. OBSERVED: 3 conns, intervals 15.2 s and
	// 26.2 s (46 s capture - too short for period estimation)."
	{File: "cryptowall4_c2.pcapng", Category: "C2/beacon",
		Expect: []RealExpect{{Src: ip("192.168.122.145"), Dsts: ips("184.170.149.44"), DstPort: 80, Optional: true, Note: "3 check-ins, too short"}}},
	// C2_Foudre_Backdoor_DGA.pcapng — "Victim 10.0.2.15 -> C2
	// 185.56.137.138:80 (HTTP). 28 packets, 108 s."
	{File: "C2_Foudre_Backdoor_DGA.pcapng", Category: "C2/beacon",
		Expect: []RealExpect{{Src: ip("10.0.2.15"), Dsts: ips("185.56.137.138"), DstPort: 80, Optional: true, Note: "one C2 session"}}},
	// trickbot.pcap — "Victim 10.12.29.101 -> 82.118.225.196:7080
	// (Trickbot/Emotet-style C2 port), 8 s only; no periodicity."
	{File: "trickbot.pcap", Category: "C2/beacon",
		Expect: []RealExpect{{Src: ip("10.12.29.101"), Dsts: ips("82.118.225.196"), DstPort: 7080, Optional: true, Note: "8 s of C2"}}},
	// 2023-01-Unit42-Wireshark-quiz.pcap — "Victim 192.168.1.27. Payload
	// download: savory.com.bd 45.56.99.101:80 (691 kB inbound). EXFIL via
	// SMTP AUTH to 204.11.58.28:587 at t=30 s (DATA), session to t=129 s;
	// ~2 kB of client payload (small exfil). Also periodic-ish Microsoft
	// traffic at t~275-300 s (benign)."
	{File: "2023-01-Unit42-Wireshark-quiz.pcap", Category: "exfil/upload",
		Expect: []RealExpect{
			{Kind: detect.KindExfil, Src: ip("192.168.1.27"), Dsts: ips("204.11.58.28"), DstPort: 587, Note: "stolen data by SMTP, ~2 kB"},
			{Src: ip("192.168.1.27"), Dsts: ips("45.56.99.101"), DstPort: 80, Optional: true, Note: "payload download"},
		}},
	// evidence02.pcap — "Sender 192.168.1.159 -> SMTP 64.12.102.142:587;
	// OBSERVED 287,273 bytes client->server TCP payload in 4.1 s (attachment
	// "secretrendezvous.docx" per puzzle solution)."
	{File: "evidence02.pcap", Category: "exfil/upload",
		Expect: []RealExpect{{Kind: detect.KindExfil, Src: ip("192.168.1.159"), Dsts: ips("64.12.102.142"), DstPort: 587, Note: "287 kB attachment by SMTP"}}},
	// dns_exfiltration.pcap — "Client 192.168.220.56 <-> DNS server/tunnel
	// end 192.168.203.167:53; 300 pkts over 60 s; data in long hex labels."
	// (dnscat2: the queries are dnscat.<hex>... with no registered domain, so
	// only the resolver identifies it.)
	{File: "dns_exfiltration.pcap", Category: "exfil/upload",
		Expect: []RealExpect{{Kind: detect.KindDNSExfil, Src: ip("192.168.220.56"), Dsts: ips("192.168.203.167"), DstPort: 53,
			Note: "dnscat2 tunnel"}}},
	// icmp-tunnel.pcap — "192.168.154.131 <-> 192.168.154.132, 863 pkts,
	// ~190 kB, 1122 s; large non-standard echo payloads." Direction unknown.
	{File: "icmp-tunnel.pcap", Category: "exfil/upload",
		Expect: []RealExpect{
			{Src: ip("192.168.154.131"), Dsts: ips("192.168.154.132"), Optional: true, Note: "ICMP tunnel"},
			{Src: ip("192.168.154.132"), Dsts: ips("192.168.154.131"), Optional: true, Note: "ICMP tunnel"},
		}},
	// LM_psexec_smb_dcerpc_epm_svcctl.pcapng — "PsExec lateral movement:
	// SMB2 ADMIN$ file write + DCERPC EPM + SVCCTL service create/start ...
	// OBSERVED top TCP conversations: 172.16.66.1:52445 <-> 172.16.66.36:445;
	// 172.16.66.1:52447 <-> 172.16.66.36:49688; 172.16.66.1:52446 <->
	// 172.16.66.36:135"
	{File: "LM_psexec_smb_dcerpc_epm_svcctl.pcapng", Category: "lateral/recon",
		Expect: []RealExpect{{Kind: detect.KindLateralMovement, Src: ip("172.16.66.1"), Dsts: ips("172.16.66.36"), Note: "PsExec"}}},
	// LM_WMI_ProcessCallCreate.pcapng — "attacker -> target via 135/tcp +
	// high port; 139 pkts, 11.7 s. OBSERVED top TCP conversations:
	// 172.16.66.1:49852 <-> 172.16.66.36:49670; 172.16.66.1:49851 <->
	// 172.16.66.36:135; 172.16.66.1:49667 <-> 172.16.66.36:445"
	{File: "LM_WMI_ProcessCallCreate.pcapng", Category: "lateral/recon",
		Expect: []RealExpect{{Kind: detect.KindLateralMovement, Src: ip("172.16.66.1"), Dsts: ips("172.16.66.36"), Note: "WMI Win32_Process.Create"}}},
	// LM_rdp_sharprdp.pcapng — "attacker -> target 3389/tcp, 1046 pkts,
	// 39 s. OBSERVED top TCP conversations: 192.168.56.1:59285 <->
	// 192.168.56.101:3389; 192.168.56.1:59281 <-> 192.168.56.101:3389"
	{File: "LM_rdp_sharprdp.pcapng", Category: "lateral/recon",
		Expect: []RealExpect{{Kind: detect.KindLateralMovement, Src: ip("192.168.56.1"), Dsts: ips("192.168.56.101"), DstPort: 3389, Note: "SharpRDP"}}},
	// DCSync_krbtgt_dcerpc_smb.pcapng — "workstation -> DC over DCERPC; 22
	// pkts. OBSERVED top TCP conversations: 172.16.66.1:52036 <->
	// 172.16.66.36:49667; 172.16.66.36:60834 <-> 172.16.66.1:445"
	{File: "DCSync_krbtgt_dcerpc_smb.pcapng", Category: "lateral/recon",
		Expect: []RealExpect{
			{Kind: detect.KindLateralMovement, Src: ip("172.16.66.1"), Dsts: ips("172.16.66.36"), Note: "DRSUAPI GetNCChanges"},
			{Src: ip("172.16.66.36"), Dsts: ips("172.16.66.1"), Optional: true, Note: "the DC's SMB back-connection"},
		}},
	// Discovery_dcerp_srvsvc_NetShareEnum.pcapng — "host -> host 445/tcp, 36
	// pkts. OBSERVED top TCP conversations: 172.16.66.1:49815 <->
	// 172.16.66.36:445" (remote share enumeration: recon, not movement).
	{File: "Discovery_dcerp_srvsvc_NetShareEnum.pcapng", Category: "lateral/recon",
		Expect: []RealExpect{{Src: ip("172.16.66.1"), Dsts: ips("172.16.66.36"), DstPort: 445, Optional: true, Note: "NetShareEnum"}}},
	// evidence04.pcap — "Scanner 10.42.42.253 -> targets 10.42.42.50,
	// 10.42.42.56, 10.42.42.25; OBSERVED SYNs to 1000 distinct ports, ~13k
	// pkts over 606 s."
	{File: "evidence04.pcap", Category: "lateral/recon",
		Expect: []RealExpect{{Kind: detect.KindScan, Src: ip("10.42.42.253"), Dsts: ips("10.42.42.50", "10.42.42.56", "10.42.42.25"), Note: "port scans of three hosts"}}},
	// synscan.pcapng — "2011 pkts in 23 s; one scanner, one target (private
	// addresses)." The flows show scanner 172.16.0.8 and target
	// 64.13.134.52 (scanme.nmap.org), which is not private.
	{File: "synscan.pcapng", Category: "lateral/recon",
		Expect: []RealExpect{{Kind: detect.KindScan, Src: ip("172.16.0.8"), Dsts: ips("64.13.134.52"), Note: "nmap SYN scan", FromFlows: true}}},
	// malicious-ssh-bruteforce.pcap — "Attacker 147.32.80.40 -> victim
	// 147.32.80.37:902 (same /24), 1178 pkts in 12.8 s." Traffic: "nmap
	// ssh-brute (1 user x 40 passwords) against SSH on port 902/tcp"; the
	// manifest files it under lateral/recon.
	{File: "malicious-ssh-bruteforce.pcap", Category: "lateral/recon", HomeNets: []netip.Prefix{netip.MustParsePrefix("147.32.0.0/16")},
		Expect: []RealExpect{{Kind: detect.KindLateralMovement, Src: ip("147.32.80.40"), Dsts: ips("147.32.80.37"), DstPort: 902, Note: "SSH brute force"}}},
	// evidence03.pcap — "Client 192.168.1.10 (AppleTV) per puzzle solution;
	// benign."
	{File: "evidence03.pcap", Category: "benign"},
	// http_espn.pcapng — "benign; 956 pkts, 2 s."
	{File: "http_espn.pcapng", Category: "benign"},
	// smb2.pcap — "benign SMB2 client -> server 445. OBSERVED top TCP
	// conversations: 10.0.0.11:49208 <-> 10.0.0.12:445" (a
	// lateral-movement false-positive test).
	{File: "smb2.pcap", Category: "benign"},
	// ssh.pcap — "benign."
	{File: "ssh.pcap", Category: "benign"},
	// NTP_sync.pcap — "benign NTP 123/udp."
	{File: "NTP_sync.pcap", Category: "benign"},
	// NTPv4.pcap — "benign." (a single packet)
	{File: "NTPv4.pcap", Category: "benign"},
	// S7_TP1200_MW100_5s_MW102_10s_Timer_sync.pcapng — "HMI/PLC 192.168.1.35
	// <-> 192.168.1.191:102. OBSERVED request bursts every 1.0 s (sd 0.1 s),
	// 32 bursts; benign." (benign periodic traffic a naive beacon detector
	// would flag)
	{File: "S7_TP1200_MW100_5s_MW102_10s_Timer_sync.pcapng", Category: "benign"},
}
