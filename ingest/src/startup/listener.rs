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
