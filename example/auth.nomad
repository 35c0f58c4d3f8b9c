# An image from a registry that needs credentials. The task's auth block wins over
# the plugin's auth block (example/agent.hcl). Credentials never appear in logs or
# task events; keep the password out of version control, e.g. render the job file
# from a secret store, or give the agent a default auth block instead.
#
#   nomad job run example/auth.nomad
#   nomad alloc logs -job auth
job "auth" {
  datacenters = ["dc1"]
  type        = "batch"

  group "auth" {
    task "auth" {
      driver = "containerd-driver"

      config {
        image   = "127.0.0.1:5001/nomad-ctr/private:latest"
        command = "/bin/sh"
        args    = ["-c", "echo pulled with credentials"]

        auth {
          username = "nomadctr"
          password = "REPLACE-WITH-THE-REGISTRY-PASSWORD"
        }
      }

      resources {
        cpu    = 100
        memory = 32
      }
    }
  }
}
