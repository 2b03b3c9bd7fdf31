module github.com/flowhound/flowhound

go 1.26.8

require github.com/google/gopacket v1.1.19 // indirect
