# Run with: nomad job run example/hello.nomad (agent config: example/agent.hcl)
job "hello" {
  datacenters = ["dc1"]
  type        = "service"

  group "hello" {
    task "hello" {
      driver = "containerd-driver"
      # the image's loop traps SIGTERM (Nomad's default kill_signal) and exits 0;
      # a task still running after kill_timeout gets SIGKILL
      kill_timeout = "5s"

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
