# Run with: nomad job run example/hello.nomad (agent config: example/agent.hcl)
job "hello" {
  datacenters = ["dc1"]
  type        = "service"

  group "hello" {
    task "hello" {
      driver = "containerd-driver"
      # the image's shell loop runs as PID 1 without a SIGTERM handler, so the
      # kernel drops SIGTERM; SIGKILL follows after kill_timeout
      kill_timeout = "2s"

      config {
        # prints a line every 3 seconds
        image = "127.0.0.1:5000/nomad-ctr/hello:latest"
      }

      resources {
        cpu    = 100
        memory = 64
      }
    }
  }
}
