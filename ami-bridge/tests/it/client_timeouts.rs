//! Actions that get no answer fail with a typed error, and a silent server is declared stalled
//! within the keepalive window: a server on 127.0.0.1 that logs the client in, then says nothing.

use std::time::{Duration, Instant};

use ami_bridge::{Action, AmiClient, AmiError, ClientConfig, ClientEvent, DisconnectReason};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Accepts connections, answers the Login, then reads and discards everything forever.
async fn mute_server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            tokio::spawn(async move {
                let _ = sock.write_all(b"Asterisk Call Manager/9.0.0\r\n").await;
                let mut buf = vec![0u8; 4096];
                let mut seen = Vec::new();
                loop {
                    match sock.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => seen.extend_from_slice(&buf[..n]),
                    }
                    if seen.windows(4).any(|w| w == b"\r\n\r\n") {
                        break;
                    }
                }
                let _ = sock
                    .write_all(b"Response: Success\r\nActionID: login\r\nMessage: Authentication accepted\r\n\r\n")
                    .await;
                while let Ok(n) = sock.read(&mut buf).await {
                    if n == 0 {
                        return;
                    }
                }
            });
        }
    });
    addr
}

#[tokio::test]
async fn unanswered_action_times_out_with_a_typed_error() {
    let addr = mute_server().await;
    let mut c = ClientConfig::new(addr, "dialer", "dialer");
    c.ping_interval = Duration::from_secs(600);
    let (client, _rx) = AmiClient::connect(c).await.expect("login");
    let t = Instant::now();
    match client
        .send_with_timeout(&Action::ping(), Duration::from_millis(300))
        .await
    {
        Err(AmiError::Timeout { action, timeout }) => {
            assert_eq!(action, "Ping");
            assert_eq!(timeout, Duration::from_millis(300));
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert!(t.elapsed() >= Duration::from_millis(300));
    assert!(t.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn silent_server_is_declared_stalled_within_the_keepalive_window() {
    let addr = mute_server().await;
    let mut c = ClientConfig::new(addr, "dialer", "dialer");
    c.ping_interval = Duration::from_millis(300);
    c.ping_timeout = Duration::from_millis(300);
    c.reconnect = false;
    let (_client, mut rx) = AmiClient::connect(c).await.expect("login");
    let t = Instant::now();
    loop {
        match tokio::time::timeout(Duration::from_secs(10), rx.recv()).await {
            Ok(Some(ClientEvent::Disconnected { reason })) => {
                assert_eq!(reason, DisconnectReason::Stalled);
                break;
            }
            Ok(Some(_)) => {}
            other => panic!("no disconnect reported: {other:?}"),
        }
    }
    // Window: ping interval + ping timeout = 600 ms; generous slack for a loaded machine.
    assert!(
        t.elapsed() >= Duration::from_millis(500),
        "{:?}",
        t.elapsed()
    );
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
}

#[tokio::test]
async fn connect_to_nothing_is_a_clear_error() {
    // Bind then drop to get a port where nobody listens.
    let addr = {
        let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        l.local_addr().expect("addr").to_string()
    };
    let c = ClientConfig::new(addr, "dialer", "dialer");
    assert!(matches!(
        AmiClient::connect(c).await,
        Err(AmiError::Connect { .. })
    ));
}

#[tokio::test]
async fn a_server_that_is_not_asterisk_is_refused() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    tokio::spawn(async move {
        if let Ok((mut sock, _)) = listener.accept().await {
            let _ = sock.write_all(b"SSH-2.0-OpenSSH_9.2\r\n").await;
            tokio::time::sleep(Duration::from_secs(5)).await;
        }
    });
    match AmiClient::connect(ClientConfig::new(addr, "dialer", "dialer")).await {
        Err(AmiError::BadBanner(b)) => assert!(b.starts_with("SSH-2.0")),
        other => panic!("expected BadBanner, got {other:?}"),
    }
}
