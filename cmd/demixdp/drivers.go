package main

// driverInfo is what docs/nics.md says about a driver's XDP support.
type driverInfo struct {
	native   string // first kernel with native (driver) XDP
	zeroCopy string // first kernel with AF_XDP zero-copy, "" if none
	note     string
}

// drivers is the table of docs/nics.md; keep the two in step.
var drivers = map[string]driverInfo{
	"i40e":       {"4.13", "4.18", "Intel XL710/X710 (Intel's first AF_XDP zero-copy driver)"},
	"ixgbe":      {"4.12", "4.20", "Intel 82599/X520/X540/X550"},
	"ice":        {"5.5", "5.5", "Intel E810"},
	"igc":        {"5.13", "5.14", "Intel I225/I226 2.5G"},
	"igb":        {"5.10", "6.14", "Intel I210/I211/I350 1G"},
	"mlx5_core":  {"4.9", "5.3", "NVIDIA/Mellanox ConnectX-4 and later"},
	"mlx4_en":    {"4.8", "", "Mellanox ConnectX-3: native XDP, no AF_XDP zero-copy"},
	"ena":        {"5.5", "", "AWS ENA: native XDP, copy mode"},
	"virtio_net": {"4.10", "6.11", "virtio-net in VMs: native XDP needs enough queues from the host; zero-copy since 6.11"},
	"veth":       {"4.19", "", "veth pairs: native XDP, AF_XDP in copy mode only"},
	"tun":        {"4.14", "", "tun/tap: native XDP, copy mode only"},
	"bnxt_en":    {"4.11", "", "Broadcom NetXtreme-C/E: native XDP, copy mode"},
	"nfp":        {"4.10", "", "Netronome Agilio: native XDP (and offload), copy mode"},
	"stmmac":     {"5.13", "5.13", "Synopsys DesignWare (embedded SoCs)"},
	"igbvf":      {"", "", "Intel VF: no native XDP (generic mode only)"},
	"e1000e":     {"", "", "Intel 1G desktop NICs: no native XDP (generic mode only)"},
	"r8169":      {"", "", "Realtek: no native XDP (generic mode only)"},
}
