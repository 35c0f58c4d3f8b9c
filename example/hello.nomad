# Run with: nomad job run example/hello.nomad (agent config: example/agent.hcl)
job "hello" {
  datacenters = ["dc1"]
  type        = "service"

  group "hello" {
    task "hello" {
      driver = "containerd-driver"

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
