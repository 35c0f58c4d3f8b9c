# The group's DNS settings become the container's /etc/resolv.conf; sysctl sets
# namespaced kernel parameters in the container's own network namespace.
#
#   nomad job run example/dns.nomad
#   nomad alloc logs <alloc> dns
job "dns" {
  datacenters = ["dc1"]
  type        = "service"

  group "dns" {
    network {
      dns {
        servers  = ["127.0.0.1", "127.0.0.2"]
        searches = ["internal.corp"]
        options  = ["ndots:2"]
      }
    }

    task "dns" {
      driver       = "containerd-driver"
      kill_timeout = "5s"

      config {
        image = "127.0.0.1:5000/nomad-ctr/plain:latest"

        # values may be strings or numbers
        sysctl = {
          "net.core.somaxconn"  = "16384"
          "net.ipv4.ip_forward" = 1
        }

        command = "/bin/sh"
        args = [
          "-c",
          <<-EOT
            cat /etc/resolv.conf
            echo "somaxconn=$(cat /proc/sys/net/core/somaxconn)"
            echo "ip_forward=$(cat /proc/sys/net/ipv4/ip_forward)"
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
