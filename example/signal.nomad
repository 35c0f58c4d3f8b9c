# Prints each signal it receives.
#
#   nomad job run example/signal.nomad
#   nomad alloc signal -s SIGHUP <alloc> signal
#   nomad alloc signal -s SIGUSR1 <alloc> signal
#   nomad alloc logs -f <alloc> signal      # received SIGHUP / received SIGUSR1
#   nomad job stop signal                   # received SIGTERM, exits 0
job "signal" {
  datacenters = ["dc1"]
  type        = "service"

  group "signal" {
    task "signal" {
      driver       = "containerd-driver"
      kill_signal  = "SIGTERM"
      kill_timeout = "10s"

      config {
        image   = "127.0.0.1:5000/nomad-ctr/plain:latest"
        command = "/bin/sh"
        # `sleep & wait` so a trap runs as soon as the signal arrives
        args = [
          "-c",
          <<-EOT
            for sig in HUP INT QUIT USR1 USR2 WINCH; do
              trap "echo received SIG$sig" $sig
            done
            trap 'echo received SIGTERM; exit 0' TERM
            echo "ready for signals"
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
