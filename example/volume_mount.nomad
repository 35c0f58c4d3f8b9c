# Nomad host volume "s1" (declared in example/agent.hcl) mounted read-write and
# read-only through volume_mount.
#
#   mkdir -p /tmp/host_volume/s1 && echo hello > /tmp/host_volume/s1/bind.txt
#   nomad job run example/volume_mount.nomad
#   nomad alloc logs <alloc> volumes
job "volume_mount" {
  datacenters = ["dc1"]
  type        = "service"

  group "volumes" {
    volume "s1" {
      type      = "host"
      source    = "s1"
      read_only = false
    }

    task "volumes" {
      driver       = "containerd-driver"
      kill_timeout = "5s"

      volume_mount {
        volume      = "s1"
        destination = "/tmp/t1"
      }

      volume_mount {
        volume      = "s1"
        destination = "/tmp/read_only_target"
        read_only   = true
      }

      config {
        image   = "127.0.0.1:5000/nomad-ctr/plain:latest"
        command = "/bin/sh"
        args = [
          "-c",
          <<-EOT
            cat /tmp/t1/bind.txt /tmp/read_only_target/bind.txt
            touch /tmp/read_only_target/ro.txt 2>&1 || echo "read-only target refuses writes"
            touch /tmp/t1/rw.txt && echo "wrote rw.txt to the host volume"
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
