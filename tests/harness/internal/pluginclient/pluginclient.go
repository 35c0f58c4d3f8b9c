// Package pluginclient launches a task-driver plugin the way the Nomad agent
// does, through go-plugin: same handshake config, gRPC only, plugin-map names
// "base" and "driver", health check after the handshake, and go-plugin's Kill
// (GRPCController.Shutdown, 2 s grace, then SIGKILL) to stop it.
package pluginclient

import (
	"context"
	"errors"
	"fmt"
	"os/exec"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/nomad-ctr/nomad_ctr/tests/harness/pb/base"
	"github.com/nomad-ctr/nomad_ctr/tests/harness/pb/drivers"
)

// Handshake is Nomad's go-plugin handshake config.
var Handshake = plugin.HandshakeConfig{
	ProtocolVersion:  2,
	MagicCookieKey:   "NOMAD_PLUGIN_MAGIC_COOKIE",
	MagicCookieValue: "e4327c2e01eabfd75a8a67adb114fb34a757d57eee7728d857a8cec6e91a7255",
}

// Base is what dispensing "base" yields.
type Base struct {
	Base base.BasePluginClient
}

// Driver is what dispensing "driver" yields: a driver is also a base plugin.
type Driver struct {
	Base   base.BasePluginClient
	Driver drivers.DriverClient
}

// clientOnly rejects serving: the harness only ever plays the host side.
type clientOnly struct{ plugin.NetRPCUnsupportedPlugin }

func (clientOnly) GRPCServer(*plugin.GRPCBroker, *grpc.Server) error {
	return errors.New("the harness does not serve plugins")
}

type basePlugin struct{ clientOnly }

func (basePlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, c *grpc.ClientConn) (interface{}, error) {
	return &Base{Base: base.NewBasePluginClient(c)}, nil
}

type driverPlugin struct{ clientOnly }

func (driverPlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, c *grpc.ClientConn) (interface{}, error) {
	return &Driver{Base: base.NewBasePluginClient(c), Driver: drivers.NewDriverClient(c)}, nil
}

// Instance is one running plugin process.
type Instance struct {
	Client *plugin.Client
	Driver *Driver
	Pid    int
}

// Launch execs path with args, performs the go-plugin handshake, health-checks
// the plugin and dispenses the driver client.
func Launch(path string, args []string, logger hclog.Logger) (*Instance, error) {
	c := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  Handshake,
		Plugins:          map[string]plugin.Plugin{"base": basePlugin{}, "driver": driverPlugin{}},
		Cmd:              exec.Command(path, args...),
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		Logger:           logger,
	})
	rpc, err := c.Client()
	if err != nil {
		c.Kill()
		return nil, fmt.Errorf("go-plugin handshake with %s: %w", path, err)
	}
	if err := rpc.Ping(); err != nil {
		c.Kill()
		return nil, fmt.Errorf("health check (grpc.health.v1 service \"plugin\"): %w", err)
	}
	raw, err := rpc.Dispense("driver")
	if err != nil {
		c.Kill()
		return nil, fmt.Errorf("dispense driver: %w", err)
	}
	inst := &Instance{Client: c, Driver: raw.(*Driver)}
	if rc := c.ReattachConfig(); rc != nil {
		inst.Pid = rc.Pid
	}
	return inst, nil
}
