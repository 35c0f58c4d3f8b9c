# Nomad's bridge network: the group gets its own network namespace and a mapped
# port; busybox httpd listens on 8080 inside it.
#
#   nomad job run example/bridge.nomad
#   nomad alloc status <alloc>              # shows the host port mapped to 8080
#   curl http://<host ip>:<host port>/      # hello from a bridge network
job "bridge" {
  datacenters = ["dc1"]
  type        = "service"

  group "web" {
    network {
      mode = "bridge"

      port "http" {
        to = 8080
      }
    }

    task "web" {
      driver       = "containerd-driver"
      kill_timeout = "10s"

      config {
        image   = "127.0.0.1:5000/nomad-ctr/plain:latest"
        command = "/bin/sh"
        args = [
          "-c",
          <<-EOT
            mkdir -p /tmp/www && echo 'hello from a bridge network' > /tmp/www/index.html
            httpd -f -p 8080 -h /tmp/www &
            trap 'kill $!; exit 0' TERM INT
            echo "listening on :8080 (host port $NOMAD_HOST_PORT_http)"
            wait
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
