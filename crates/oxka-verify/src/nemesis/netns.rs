//! Real network partitions: every node in its own network namespace, its
//! `eth0` a veth whose other end sits on a bridge in the checker's
//! namespace; addresses 10.X.Y.(10 + node id)/24 that exist only there.
//! A partition is a pair of blackhole routes (each side drops what it
//! sends to the other: packets vanish as on a cut link, no error comes
//! back); healing deletes them. The checker's clients reach every node
//! through the bridge (10.X.Y.1), so a node cut off from its peers still
//! answers clients (Kafka's zombie-leader case).
//!
//! Needs root and iproute2 (`ip`). Names carry the checker's pid
//! (`oxv<pid>n<id>`, bridge `oxv<pid>br`), so everything a run made is
//! removed when it ends, and what a killed run left behind is removed by
//! the next one (`sweep_stale`).

use std::net::Ipv4Addr;
use std::process::Command;

use thiserror::Error;

#[derive(Debug, Error)]
pub enum NetError {
    #[error("network faults need root (ip netns); skipped")]
    NotRoot,
    #[error("network faults need iproute2's `ip`: {0}")]
    NoIp(String),
    #[error("`ip {args}` failed: {stderr}")]
    Ip { args: String, stderr: String },
}

pub struct Net {
    tag: String,
    base: [u8; 2],
    nodes: Vec<i32>,
}

fn ip(args: &[&str]) -> Result<String, NetError> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| NetError::NoIp(e.to_string()))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(NetError::Ip {
            args: args.join(" "),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }
}

/// Whether this process may make namespaces.
pub fn available() -> Result<(), NetError> {
    // SAFETY: geteuid has no preconditions and touches no memory.
    if unsafe { libc::geteuid() } != 0 {
        return Err(NetError::NotRoot);
    }
    ip(&["-V"]).map(|_| ())
}

/// Removes namespaces and bridges of runs whose process is gone.
pub fn sweep_stale() {
    let Ok(list) = ip(&["netns", "list"]) else {
        return;
    };
    let mut tags = std::collections::BTreeSet::new();
    for name in list.lines().filter_map(|l| l.split_whitespace().next()) {
        if let Some(rest) = name.strip_prefix("oxv") {
            if let Some((pid, _)) = rest.split_once('n') {
                if pid.parse::<u32>().is_ok()
                    && !std::path::Path::new(&format!("/proc/{pid}")).exists()
                {
                    let _ = ip(&["netns", "del", name]);
                    tags.insert(format!("oxv{pid}"));
                }
            }
        }
    }
    for t in tags {
        let _ = ip(&["link", "del", &format!("{t}br")]);
    }
}

impl Net {
    /// Makes the bridge and one namespace per node.
    pub fn create(nodes: &[i32]) -> Result<Net, NetError> {
        available()?;
        sweep_stale();
        let pid = std::process::id();
        // a /24 no other interface here uses (runs side by side each get
        // their own)
        let used = ip(&["-4", "addr", "show"])?;
        let base = (0..50 * 256u32)
            .map(|k| (pid + k) % (50 * 256))
            .map(|k| [200 + (k % 50) as u8, (k / 50) as u8])
            .find(|b| !used.contains(&format!("10.{}.{}.", b[0], b[1])))
            .ok_or_else(|| NetError::Ip {
                args: "addr show".into(),
                stderr: "no free 10.200-249.x.0/24 subnet".into(),
            })?;
        let net = Net {
            tag: format!("oxv{pid}"),
            base,
            nodes: nodes.to_vec(),
        };
        let br = net.bridge();
        ip(&["link", "add", &br, "type", "bridge"])?;
        ip(&["addr", "add", &format!("{}/24", net.gateway()), "dev", &br])?;
        ip(&["link", "set", &br, "up"])?;
        for id in nodes {
            let ns = net.ns(*id);
            let veth = ns.clone();
            ip(&["netns", "add", &ns])?;
            ip(&[
                "link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns", &ns,
            ])?;
            ip(&["link", "set", &veth, "master", &br])?;
            ip(&["link", "set", &veth, "up"])?;
            ip(&[
                "-n",
                &ns,
                "addr",
                "add",
                &format!("{}/24", net.addr(*id)),
                "dev",
                "eth0",
            ])?;
            ip(&["-n", &ns, "link", "set", "eth0", "up"])?;
            ip(&["-n", &ns, "link", "set", "lo", "up"])?;
        }
        Ok(net)
    }

    fn bridge(&self) -> String {
        format!("{}br", self.tag)
    }

    pub fn ns(&self, id: i32) -> String {
        format!("{}n{id}", self.tag)
    }

    fn gateway(&self) -> Ipv4Addr {
        Ipv4Addr::new(10, self.base[0], self.base[1], 1)
    }

    /// Node `id`'s address.
    pub fn addr(&self, id: i32) -> Ipv4Addr {
        Ipv4Addr::new(10, self.base[0], self.base[1], 10 + id as u8)
    }

    /// Cuts the link between `a` and `b`, both ways.
    pub fn cut(&self, a: i32, b: i32) -> Result<(), NetError> {
        for (from, to) in [(a, b), (b, a)] {
            let route = format!("{}/32", self.addr(to));
            match ip(&["-n", &self.ns(from), "route", "add", "blackhole", &route]) {
                Err(NetError::Ip { stderr, .. }) if stderr.contains("File exists") => {}
                r => r.map(|_| ())?,
            }
        }
        Ok(())
    }

    /// Every link whole again.
    pub fn heal(&self) -> Result<(), NetError> {
        for id in &self.nodes {
            ip(&["-n", &self.ns(*id), "route", "flush", "type", "blackhole"])?;
        }
        Ok(())
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for id in &self.nodes {
            let _ = ip(&["netns", "del", &self.ns(*id)]);
        }
        let _ = ip(&["link", "del", &self.bridge()]);
    }
}
