//! The listening socket. A burst of a thousand connections at once overflowed the default
//! accept queue of 128 and connection attempts timed out in the kernel, unseen by the
//! service; the queue is `AFFILYNC_LISTEN_BACKLOG` long (the kernel caps it at
//! `net.core.somaxconn`, 4096 on current Linux).

use std::io;
use std::net::{SocketAddr, TcpListener};

use socket2::{Domain, Protocol, Socket, Type};

pub fn bind(address: SocketAddr, backlog: u32) -> io::Result<TcpListener> {
    let socket = Socket::new(
        Domain::for_address(address),
        Type::STREAM,
        Some(Protocol::TCP),
    )?;
    // A restart must not wait for the last run's connections in TIME_WAIT.
    socket.set_reuse_address(true)?;
    socket.bind(&address.into())?;
    socket.listen(i32::try_from(backlog).unwrap_or(i32::MAX))?;
    Ok(socket.into())
}

#[cfg(test)]
mod tests {
    use std::net::TcpStream;
    use std::time::Duration;

    use super::bind;

    /// More connections than the kernel's old default of 128 wait unaccepted: each finishes
    /// its handshake, because the queue is as long as asked. With a queue of 128 the rest
    /// would have their SYNs dropped and time out.
    #[test]
    fn a_burst_longer_than_128_waits_in_the_accept_queue() {
        let somaxconn: u32 = std::fs::read_to_string("/proc/sys/net/core/somaxconn")
            .ok()
            .and_then(|text| text.trim().parse().ok())
            .unwrap_or(4096);
        let burst = 300;
        assert!(somaxconn > burst, "net.core.somaxconn is {somaxconn}");
        let listener = bind("127.0.0.1:0".parse().unwrap(), 1024).unwrap();
        let address = listener.local_addr().unwrap();
        let waiting: Vec<TcpStream> = (0..burst)
            .map(|n| {
                TcpStream::connect_timeout(&address, Duration::from_secs(3))
                    .unwrap_or_else(|error| panic!("connection {n}: {error}"))
            })
            .collect();
        assert_eq!(waiting.len(), burst as usize);
    }
}
