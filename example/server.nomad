# A small web server, like Roblox's redis.nomad: hostname, seccomp, cwd, and memory
# with memory_max (oversubscription must be enabled in the scheduler config for
# memory_max to take effect: nomad operator scheduler set-config -memory-oversubscription=true).
#
#   nomad job run example/server.nomad
#   nomad alloc exec -task server <alloc> hostname            # web-1
#   nomad alloc exec -task server <alloc> pwd                 # /srv/www
#   nomad alloc exec -task server <alloc> wget -qO- localhost:8080   # hello from nomad-ctr
#   nomad alloc exec -i -t -task server <alloc> /bin/sh
job "server" {
  datacenters = ["dc1"]
  type        = "service"

  group "server" {
    task "server" {
      driver       = "containerd-driver"
      kill_timeout = "10s"

      config {
        image    = "127.0.0.1:5000/nomad-ctr/plain:latest"
        hostname = "web-1"
        seccomp  = true
        cwd      = "/srv/www"
        command  = "/bin/sh"
        # busybox httpd serves the working directory; sh stays PID 1 so SIGTERM
        # (ignored by a PID 1 without a handler) stops the server promptly
        args = [
          "-c",
          <<-EOT
            echo 'hello from nomad-ctr' > index.html
            httpd -f -v -p 8080 &
            trap 'kill $!; exit 0' TERM INT
            echo "serving $(pwd) on :8080 as $(hostname)"
            wait
          EOT
        ]
      }

      resources {
        cpu        = 200
        memory     = 64  # the reservation (soft limit)
        memory_max = 128 # the hard limit
      }
    }
  }
}
