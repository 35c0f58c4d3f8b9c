# Replaces the image's entrypoint and prints a few lines, then exits 0.
#
#   nomad job run example/entrypoint.nomad
#   nomad alloc logs -job entrypoint        # container1, container2, done
job "entrypoint" {
  datacenters = ["dc1"]
  type        = "batch"

  group "entrypoint" {
    task "entrypoint" {
      driver = "containerd-driver"

      config {
        # this image's own ENTRYPOINT is ["/bin/sh", "-c"] with CMD ["echo configured"]
        image      = "127.0.0.1:5000/nomad-ctr/configured:latest"
        entrypoint = ["/bin/sh"]
        args       = ["-c", "for name in container1 container2; do echo $name; sleep 1; done; echo done"]
      }

      resources {
        cpu    = 100
        memory = 32
      }
    }
  }
}
