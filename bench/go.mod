module github.com/demixdp/demixdp/bench

go 1.26.0

replace github.com/demixdp/demixdp => ../

require (
	github.com/asavie/xdp v0.3.3
	github.com/demixdp/demixdp v0.0.0
	golang.org/x/sys v0.50.0
	gvisor.dev/gvisor v0.0.0-20250205023644-9414b50a5633
)

require (
	github.com/cilium/ebpf v0.22.0 // indirect
	github.com/google/btree v1.1.2 // indirect
	github.com/vishvananda/netlink v1.3.1 // indirect
	github.com/vishvananda/netns v0.0.5 // indirect
	golang.org/x/time v0.7.0 // indirect
)
