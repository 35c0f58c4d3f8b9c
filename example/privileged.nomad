# A privileged task with a device and a read-only bind mount of a host file.
# Needs allow_privileged = true in the plugin config (the default).
#
#   nomad job run example/privileged.nomad
#   nomad alloc logs <alloc> privileged
job "privileged" {
  datacenters = ["dc1"]
  type        = "service"

  group "privileged" {
    task "privileged" {
      driver       = "containerd-driver"
      kill_timeout = "5s"

      config {
        image      = "127.0.0.1:5000/nomad-ctr/plain:latest"
        privileged = true
        devices    = ["/dev/loop0"]

        mounts = [
          {
            type    = "bind"
            source  = "/etc/os-release"
            target  = "/host/os-release"
            options = ["rbind", "ro"]
          }
        ]

        command = "/bin/sh"
        args = [
          "-c",
          <<-EOT
            grep ^CapBnd /proc/self/status
            ls -l /dev/loop0
            head -n 2 /host/os-release
            echo x >> /host/os-release 2>&1 || echo "the host file is read-only"
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
