# A template renders local/app.conf in the task dir; a bind mount with a relative
# source (resolved against the task dir) puts it where the program expects it.
#
#   nomad job run example/template.nomad
#   nomad alloc exec -task app <alloc> cat /etc/app/app.conf
job "template" {
  datacenters = ["dc1"]
  type        = "service"

  group "app" {
    task "app" {
      driver       = "containerd-driver"
      kill_timeout = "5s"

      template {
        destination = "local/app.conf"
        change_mode = "restart"
        data        = <<-EOT
          # rendered by Nomad for {{ env "NOMAD_JOB_NAME" }}
          listen = 0.0.0.0:8080
          alloc  = {{ env "NOMAD_ALLOC_ID" }}
        EOT
      }

      config {
        image = "127.0.0.1:5000/nomad-ctr/plain:latest"

        mounts = [
          {
            type    = "bind"
            source  = "local/app.conf"
            target  = "/etc/app/app.conf"
            options = ["rbind", "ro"]
          }
        ]

        command = "/bin/sh"
        args = [
          "-c",
          <<-EOT
            cat /etc/app/app.conf
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
