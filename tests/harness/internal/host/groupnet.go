package host

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/nomad-ctr/nomad_ctr/tests/harness/internal/nomadfile"
	"github.com/nomad-ctr/nomad_ctr/tests/harness/pb/drivers"
)

// GroupNet is the network namespace the client made for a group in bridge mode
// (Nomad: /var/run/netns/<alloc_id>, CNI bridge + portmap), torn down after the
// task was destroyed, as at alloc postrun.
type GroupNet struct {
	AllocID   string
	NetnsPath string
	IP        string
	Ports     []*drivers.PortMapping
}

// portHostIP is where allocated ports are published: tests only talk to loopback.
const portHostIP = "127.0.0.1"

// groupNetHelper runs tests/harness/groupnet.py (nomad_ctr.net) with the
// interpreter from NOMAD_HARNESS_PYTHON (default python3). The script is found
// next to the harness binary or at NOMAD_HARNESS_GROUPNET.
func groupNetHelper(args ...string) ([]byte, error) {
	script := os.Getenv("NOMAD_HARNESS_GROUPNET")
	if script == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, err
		}
		script = filepath.Join(filepath.Dir(exe), "groupnet.py")
	}
	py := os.Getenv("NOMAD_HARNESS_PYTHON")
	if py == "" {
		py = "python3"
	}
	var stderr bytes.Buffer
	cmd := exec.Command(py, append([]string{script}, args...)...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("groupnet.py %s: %v: %s", args[0], err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

// freePort picks a free TCP port on 127.0.0.1, as the client picks dynamic ports.
func freePort() (int64, error) {
	l, err := net.Listen("tcp", portHostIP+":0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return int64(l.Addr().(*net.TCPAddr).Port), nil
}

// allocatePorts gives every port of the group network a host port and returns
// the mappings plus the NOMAD_* port variables the client sets.
func allocatePorts(n *nomadfile.Network) ([]*drivers.PortMapping, map[string]string, error) {
	var out []*drivers.PortMapping
	env := map[string]string{}
	for _, p := range n.Ports {
		value := p.Static
		if value == 0 {
			var err error
			if value, err = freePort(); err != nil {
				return nil, nil, fmt.Errorf("port %q: %v", p.Label, err)
			}
		}
		to := p.To
		if to <= 0 {
			to = value
		}
		out = append(out, &drivers.PortMapping{Label: p.Label, Value: int32(value), To: int32(to), HostIp: portHostIP})
		hp, tp := strconv.FormatInt(value, 10), strconv.FormatInt(to, 10)
		env["NOMAD_HOST_PORT_"+p.Label] = hp
		env["NOMAD_HOST_IP_"+p.Label] = portHostIP
		env["NOMAD_HOST_ADDR_"+p.Label] = portHostIP + ":" + hp
		env["NOMAD_PORT_"+p.Label] = tp
		env["NOMAD_ALLOC_PORT_"+p.Label] = tp
		env["NOMAD_IP_"+p.Label] = portHostIP
		env["NOMAD_ADDR_"+p.Label] = portHostIP + ":" + hp
	}
	return out, env, nil
}

// setupGroupNet creates the alloc's namespace and attaches it to the test bridge.
func setupGroupNet(allocID string, ports []*drivers.PortMapping) (*GroupNet, error) {
	type mapping struct {
		HostPort int32  `json:"host_port"`
		To       int32  `json:"to"`
		HostIP   string `json:"host_ip"`
	}
	ms := []mapping{}
	for _, p := range ports {
		ms = append(ms, mapping{p.GetValue(), p.GetTo(), p.GetHostIp()})
	}
	arg, _ := json.Marshal(ms)
	out, err := groupNetHelper("setup", allocID, string(arg))
	if err != nil {
		return nil, err
	}
	var res struct {
		NetnsPath string `json:"netns_path"`
		IP        string `json:"ip"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		return nil, fmt.Errorf("groupnet.py setup: %v: %q", err, out)
	}
	return &GroupNet{AllocID: allocID, NetnsPath: res.NetnsPath, IP: res.IP, Ports: ports}, nil
}

// TeardownGroupNet removes the namespace of alloc allocID; idempotent.
func TeardownGroupNet(allocID string) error {
	_, err := groupNetHelper("teardown", allocID)
	return err
}

// ReleaseNetwork tears down t's group network (if any), as at alloc postrun.
func (t *Task) ReleaseNetwork() error {
	if t.GroupNet != nil {
		return TeardownGroupNet(t.GroupNet.AllocID)
	}
	spec := t.Config.GetNetworkIsolationSpec()
	if spec == nil || spec.GetMode() != drivers.NetworkIsolationSpec_GROUP {
		return nil
	}
	return TeardownGroupNet(t.Config.GetAllocId())
}

// JSON is the group network as the harness reports it.
func (g *GroupNet) JSON() map[string]any {
	ports := []any{}
	for _, p := range g.Ports {
		ports = append(ports, map[string]any{"label": p.GetLabel(), "value": p.GetValue(), "to": p.GetTo(), "host_ip": p.GetHostIp()})
	}
	return map[string]any{"alloc_id": g.AllocID, "netns_path": g.NetnsPath, "ip": g.IP, "ports": ports}
}
