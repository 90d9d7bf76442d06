module github.com/digitalocean/go-libvirt

go 1.24.0
