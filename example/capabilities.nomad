# Capabilities and a read-only root filesystem.
#
#   nomad job run example/capabilities.nomad
#   nomad alloc logs <alloc> caps
# The log shows the effective capability mask (CAP_SYS_ADMIN is bit 21 and set,
# CAP_CHOWN is bit 0 and cleared) and that writing to / fails.
job "capabilities" {
  datacenters = ["dc1"]
  type        = "service"

  group "caps" {
    task "caps" {
      driver       = "containerd-driver"
      kill_timeout = "5s"

      config {
        image           = "127.0.0.1:5000/nomad-ctr/plain:latest"
        readonly_rootfs = true
        cap_add         = ["SYS_ADMIN", "IPC_OWNER", "IPC_LOCK"]
        cap_drop        = ["CHOWN", "SYS_CHROOT", "DAC_OVERRIDE"]
        command         = "/bin/sh"
        args = [
          "-c",
          <<-EOT
            grep ^Cap /proc/self/status
            touch /probe 2>&1 || echo "rootfs is read-only"
            touch "$NOMAD_TASK_DIR/probe" && echo "task dir is writable"
            trap 'exit 0' TERM
            while true; do sleep 1 & wait $!; done
          EOT
        ]
      }

      resources {
        cpu    = 100
        memory = 32
      }
    }
  }
}
