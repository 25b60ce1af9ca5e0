//! Debian's nginx as a load balancer for several `edgekeep-server` instances on loopback: TLS
//! terminated with the data folder's certificate and again at each instance (verified against
//! the folder's CA), round robin, failed connections retried on the next instance. Shared by
//! the several-instance test and `loadgen --instances N`. Stopped (SIGTERM, its workers too)
//! when dropped.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running nginx.
pub struct Balancer {
    child: Child,
    port: u16,
}

impl Drop for Balancer {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

/// Debian's nginx binary, if installed.
pub fn nginx() -> Option<PathBuf> {
    let path = PathBuf::from("/usr/sbin/nginx");
    path.exists().then_some(path)
}

/// A free loopback port.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .unwrap_or(0)
}

impl Balancer {
    /// Starts nginx on `port`, its files in `dir`, in front of the instances on `instances`,
    /// with the TLS files of the data folder `data`. `pinned` routes exact paths to one
    /// instance (by index) instead of round robin.
    pub fn start(
        nginx: &Path,
        dir: &Path,
        data: &Path,
        port: u16,
        instances: &[u16],
        pinned: &[(&str, usize)],
    ) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let tls = data.join("tls");
        let servers: String = instances
            .iter()
            .map(|p| format!("server 127.0.0.1:{p} max_fails=1 fail_timeout=30s; "))
            .collect();
        let mut upstreams = format!("upstream all {{ {servers} keepalive 64; }}\n");
        let mut locations = String::new();
        for (n, (path, index)) in pinned.iter().enumerate() {
            upstreams += &format!(
                "upstream pinned{n} {{ server 127.0.0.1:{}; }}\n",
                instances[*index]
            );
            locations += &format!("location = {path} {{ proxy_pass https://pinned{n}; }}\n");
        }
        let user = if is_root() { "user root;" } else { "" };
        let config = format!(
            "{user}
            daemon off;
            worker_processes 1;
            pid {dir}/nginx.pid;
            error_log {dir}/error.log warn;
            events {{ worker_connections 2048; }}
            http {{
                access_log off;
                client_body_temp_path {dir}/body;
                proxy_temp_path {dir}/proxy;
                fastcgi_temp_path {dir}/fastcgi;
                uwsgi_temp_path {dir}/uwsgi;
                scgi_temp_path {dir}/scgi;
                {upstreams}
                server {{
                    listen 127.0.0.1:{port} ssl;
                    ssl_certificate {cert};
                    ssl_certificate_key {key};
                    client_max_body_size 64m;
                    proxy_http_version 1.1;
                    proxy_set_header Connection \"\";
                    proxy_set_header X-Forwarded-For $remote_addr;
                    proxy_ssl_server_name on;
                    proxy_ssl_name localhost;
                    proxy_ssl_verify on;
                    proxy_ssl_trusted_certificate {ca};
                    proxy_ssl_session_reuse on;
                    proxy_next_upstream error timeout http_502 non_idempotent;
                    {locations}
                    location / {{ proxy_pass https://all; }}
                }}
            }}",
            dir = dir.display(),
            cert = tls.join("cert.pem").display(),
            key = tls.join("key.pem").display(),
            ca = tls.join("ca.pem").display(),
        );
        let conf = dir.join("nginx.conf");
        std::fs::write(&conf, config)?;
        let child = Command::new(nginx)
            .arg("-p")
            .arg(dir)
            .arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let balancer = Self { child, port };
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                let log = std::fs::read_to_string(dir.join("error.log")).unwrap_or_default();
                return Err(std::io::Error::other(format!("nginx did not start: {log}")));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(balancer)
    }

    /// `https://127.0.0.1:<port>`.
    pub fn base_url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}
