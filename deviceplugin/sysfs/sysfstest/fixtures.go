package sysfstest

import "fmt"

// Addresses of the TwoNICs fixture.
const (
	IntelPF    = "0000:3b:00.0" // ens1f0, 8086:1572, i40e, NUMA 0
	MellanoxPF = "0000:af:00.0" // ens2f0, 15b3:1018, mlx5_core, infiniband, NUMA 1
)

// TwoNICs writes the node most tests use: an Intel X710 PF ens1f0 (8086:1572 on i40e, NUMA
// node 0) with 8 VFs 0000:3b:02.0-7 (154c on iavf, netdevs ens1f0v0-7), of which VFs 6 and 7
// are bound to vfio-pci (IOMMU groups 106, 107, no netdev); and a Mellanox PF ens2f0
// (15b3:1018 on mlx5_core, link type infiniband, NUMA node 1) with 8 RDMA-capable VFs
// 0000:af:00.2-7 and 0000:af:01.0-1 (netdevs ens2f0v0-7), of which VF 7 (0000:af:01.1) is
// bound to vfio-pci (IOMMU group 207).
func TwoNICs(root string) (*Tree, error) {
	t, err := New(root)
	if err != nil {
		return nil, err
	}
	intel := PF{Address: IntelPF, Vendor: "8086", Device: "1572", VFDevice: "154c", Driver: "i40e", VFDriver: "iavf", NUMANode: 0, IfName: "ens1f0", TotalVFs: 64}
	for i := range 8 {
		vf := VF{Address: fmt.Sprintf("0000:3b:02.%d", i), IfName: fmt.Sprintf("ens1f0v%d", i)}
		if i >= 6 {
			vf = VF{Address: vf.Address, Driver: "vfio-pci", VFIOGroup: 100 + i}
		}
		intel.VFs = append(intel.VFs, vf)
	}
	mlx := PF{Address: MellanoxPF, Vendor: "15b3", Device: "1018", Driver: "mlx5_core", NUMANode: 1, IfName: "ens2f0", LinkType: "infiniband", TotalVFs: 16}
	for i := range 8 {
		fn := i + 2
		vf := VF{Address: fmt.Sprintf("0000:af:%02d.%d", fn/8, fn%8), IfName: fmt.Sprintf("ens2f0v%d", i), RDMA: true}
		if i == 7 {
			vf = VF{Address: vf.Address, Driver: "vfio-pci", VFIOGroup: 207}
		}
		mlx.VFs = append(mlx.VFs, vf)
	}
	if err := t.AddPF(intel); err != nil {
		return nil, err
	}
	if err := t.AddPF(mlx); err != nil {
		return nil, err
	}
	return t, nil
}
