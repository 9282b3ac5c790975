//! Source addresses and ports: where a VU's connections come from when `source_addrs` is set.
//!
//! Past about 14,000 connections from one address to one target, Linux's own choice of source port gets slow: at
//! `connect` it tries the even half of the ephemeral range first and, once that half is used up, scans all of it
//! again for every new connection; at `bind` to port 0 it searches the bind buckets of every address (both
//! measured with `perf` during a 60,000-VU start, where they took most of the segments' CPU). So each VU asks for
//! a port of its own: VU `k·n + i` of `n` addresses binds address `i`, port `low + k` of the ephemeral range
//! (wrapping). VU ids are global, so the segments of one split run never ask for the same address and port. When
//! that port cannot be had (another program holds it, or the VU already has a connection to that target from it),
//! the kernel chooses, at `connect`, as it does without source addresses.

use std::io;
use std::net::{IpAddr, SocketAddr};

use tokio::net::{TcpSocket, TcpStream};

/// The local end a VU's connections start from: an address, and the port it asks for first (0: any).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Source {
    pub(crate) addr: IpAddr,
    pub(crate) port: u16,
}

/// The ephemeral port range (`net.ipv4.ip_local_port_range`), or Linux's default when it cannot be read.
pub(crate) fn ephemeral_range() -> (u16, u16) {
    const DEFAULT: (u16, u16) = (32768, 60999);
    let Ok(text) = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range") else {
        return DEFAULT;
    };
    let mut it = text.split_whitespace().map(str::parse::<u16>);
    match (it.next(), it.next()) {
        (Some(Ok(low)), Some(Ok(high))) if 0 < low && low <= high => (low, high),
        _ => DEFAULT,
    }
}

/// The source of the VU with this id among `addrs`, with its own port in `range` (none without addresses).
pub(crate) fn for_vu(addrs: &[IpAddr], range: (u16, u16), vu_id: u64) -> Option<Source> {
    let n = addrs.len() as u64;
    if n == 0 {
        return None;
    }
    let span = u64::from(range.1 - range.0) + 1;
    let port = u64::from(range.0) + (vu_id / n) % span;
    Some(Source { addr: addrs[(vu_id % n) as usize], port: port as u16 })
}

/// A TCP connection to `addr` from `source` (any local address when `None`): from the source's own port when it
/// can be had, else from one the kernel chooses.
pub(crate) async fn connect(addr: SocketAddr, source: Option<Source>) -> io::Result<TcpStream> {
    let Some(source) = source else {
        return TcpStream::connect(addr).await;
    };
    if source.port != 0 {
        match connect_from_port(addr, source).await {
            Err(e) if port_taken(&e) => {}
            done => return done,
        }
    }
    let socket = new_socket(source.addr)?;
    bind_port_at_connect(&socket)?;
    socket.bind(SocketAddr::new(source.addr, 0))?;
    socket.connect(addr).await
}

/// Binds the source's own port (`SO_REUSEADDR`, so that the VU's earlier connections from it, open or closing,
/// do not stand in the way) and connects.
async fn connect_from_port(addr: SocketAddr, source: Source) -> io::Result<TcpStream> {
    let socket = new_socket(source.addr)?;
    socket.set_reuseaddr(true)?;
    socket.bind(SocketAddr::new(source.addr, source.port))?;
    socket.connect(addr).await
}

/// The errors that mean "this address and port cannot be used for this connection": try another port.
fn port_taken(e: &io::Error) -> bool {
    matches!(e.kind(), io::ErrorKind::AddrInUse | io::ErrorKind::AddrNotAvailable)
}

fn new_socket(addr: IpAddr) -> io::Result<TcpSocket> {
    if addr.is_ipv4() { TcpSocket::new_v4() } else { TcpSocket::new_v6() }
}

/// Asks the kernel to choose the source port at `connect` rather than at `bind` (`IP_BIND_ADDRESS_NO_PORT`): at
/// `connect` only the four-tuple must be unique, so one port serves many targets, and the search resumes where
/// the last one ended instead of scanning every address's bind buckets.
#[cfg(target_os = "linux")]
fn bind_port_at_connect(socket: &TcpSocket) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let on: libc::c_int = 1;
    // SAFETY: the descriptor is the socket's own and open for the call; the option value is a c_int that
    // outlives the call, and its size is passed with it.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_IP,
            libc::IP_BIND_ADDRESS_NO_PORT,
            (&raw const on).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 { Ok(()) } else { Err(io::Error::last_os_error()) }
}

/// Elsewhere the port is chosen at `bind`.
#[cfg(not(target_os = "linux"))]
fn bind_port_at_connect(_: &TcpSocket) -> io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_vu_gets_its_own_address_and_port() {
        let a: IpAddr = "127.0.0.2".parse().unwrap();
        let b: IpAddr = "127.0.0.3".parse().unwrap();
        let range = (40000, 40002);
        let got: Vec<_> = (0..8).map(|id| for_vu(&[a, b], range, id).unwrap()).collect();
        let want = [(a, 40000), (b, 40000), (a, 40001), (b, 40001), (a, 40002), (b, 40002), (a, 40000), (b, 40000)];
        let want: Vec<_> = want.iter().map(|&(addr, port)| Source { addr, port }).collect();
        assert_eq!(got, want);
        assert_eq!(for_vu(&[], range, 3), None);
    }

    #[test]
    fn the_range_is_read_or_defaulted() {
        let (low, high) = ephemeral_range();
        assert!(0 < low && low <= high, "{low}..{high}");
    }
}
