# The host's network namespace, with extra /etc/hosts entries.
#
#   nomad job run example/extra_hosts.nomad
#   nomad alloc exec -task hosts <alloc> cat /etc/hosts
job "extra_hosts" {
  datacenters = ["dc1"]
  type        = "service"

  group "hosts" {
    task "hosts" {
      driver       = "containerd-driver"
      kill_timeout = "5s"

      config {
        image        = "127.0.0.1:5000/nomad-ctr/plain:latest"
        host_network = true
        extra_hosts  = ["postgres:127.0.1.1", "redis:127.0.1.2"]
        command      = "/bin/sh"
        args = [
          "-c",
          <<-EOT
            cat /etc/hosts
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
