# A Nomad client agent that loads the containerd-driver plugin.
# Install the plugin where plugin_dir points, e.g.
#   ln -s "$(command -v containerd-driver)" /opt/nomad/plugins/containerd-driver
data_dir   = "/var/lib/nomad"
plugin_dir = "/opt/nomad/plugins"

client {
  enabled = true
}

plugin "containerd-driver" {
  config {
    enabled            = true
    containerd_runtime = "io.containerd.runc.v2"
    stats_interval     = "5s"
    # address   = "/run/containerd/containerd.sock"  (default)
    # namespace = "nomad"                             (default)
  }
}
