# A single-node Nomad agent (server and client) that loads the containerd-driver
# plugin, for trying the jobs in this directory:
#
#   ln -s "$(command -v containerd-driver)" /opt/nomad/plugins/containerd-driver
#   mkdir -p /tmp/host_volume/s1 && echo hello > /tmp/host_volume/s1/bind.txt
#   nomad agent -config example/agent.hcl
#
# Run it as root: the plugin talks to containerd's socket and creates cgroups,
# mounts and network namespaces.
data_dir   = "/var/lib/nomad"
plugin_dir = "/opt/nomad/plugins"
bind_addr  = "127.0.0.1"

server {
  enabled          = true
  bootstrap_expect = 1
}

client {
  enabled = true

  # used by example/volume_mount.nomad
  host_volume "s1" {
    path      = "/tmp/host_volume/s1"
    read_only = false
  }
}

plugin "containerd-driver" {
  config {
    enabled            = true
    containerd_runtime = "io.containerd.runc.v2"
    stats_interval     = "5s"

    # privileged = true tasks (example/privileged.nomad); false refuses them
    allow_privileged = true

    # registries pulled over plain HTTP (localhost and 127.0.0.1 always are)
    # insecure_registries = ["registry.internal:5000"]

    # address   = "/run/containerd/containerd.sock"   (default)
    # namespace = "nomad"                             (default)

    # default registry credentials, used when a task has no auth block; registry
    # pins them to that one host (without it any registry a job names may get them)
    # auth {
    #   username = "nomadctr"
    #   password = "..."
    #   registry = "registry.internal:5000"
    # }
  }
}
