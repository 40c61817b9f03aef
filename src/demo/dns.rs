//! The demo's name server: a small authoritative DNS server on 127.0.0.1 (UDP) for the demo's
//! zone, so the install's DNS checks run for real (RFC 1035 messages through hickory-proto).
//!
//! Names under the demo base (`*.core.digibee.demo.test`, …) answer A 127.0.0.1; every other
//! question about the reserved `.test` domain (RFC 6761) — AAAA, CAA while the CAA check climbs to
//! the root — is answered NOERROR without records; anything else is REFUSED.

use std::net::Ipv4Addr;

use hickory_resolver::proto::op::{Message, MessageType, ResponseCode};
use hickory_resolver::proto::rr::rdata::A;
use hickory_resolver::proto::rr::{RData, Record, RecordType};

/// The answer to one query message (pure).
pub fn answer(query: &[u8], base: &str) -> Option<Vec<u8>> {
    let q = Message::from_vec(query).ok()?;
    if q.metadata.message_type != MessageType::Query {
        return None;
    }
    let mut r = Message::response(q.metadata.id, q.metadata.op_code);
    r.metadata.recursion_desired = q.metadata.recursion_desired;
    r.metadata.authoritative = true;
    let base = format!(".{}.", base.trim_end_matches('.'));
    for question in &q.queries {
        r.add_query(question.clone());
        let name = question.name().to_ascii().to_ascii_lowercase();
        if !(name.ends_with(".test.") || name == "test.") {
            r.metadata.response_code = ResponseCode::Refused;
            continue;
        }
        if question.query_type() == RecordType::A && name.ends_with(&base) {
            r.add_answer(Record::from_rdata(
                question.name().clone(),
                60,
                RData::A(A(Ipv4Addr::LOCALHOST)),
            ));
        }
    }
    r.to_vec().ok()
}

/// Starts the server on 127.0.0.1 (any free port) on the current runtime; returns its port. It
/// runs until the runtime ends.
pub async fn start(base: &str) -> std::io::Result<u16> {
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await?;
    let port = socket.local_addr()?.port();
    let base = base.to_owned();
    tokio::spawn(async move {
        let mut buf = [0u8; 1500];
        while let Ok((n, from)) = socket.recv_from(&mut buf).await {
            if let Some(reply) = answer(&buf[..n], &base) {
                let _ = socket.send_to(&reply, from).await;
            }
        }
    });
    Ok(port)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_resolver::proto::op::Query;
    use hickory_resolver::proto::rr::Name;
    use std::str::FromStr;

    fn ask(name: &str, t: RecordType) -> Message {
        let mut q = Message::query();
        q.add_query(Query::query(Name::from_str(name).unwrap(), t));
        Message::from_vec(&answer(&q.to_vec().unwrap(), "digibee.demo.test").unwrap()).unwrap()
    }

    #[test]
    fn the_zone_answers_names_under_the_base_and_nothing_else() {
        let r = ask("x1.core.digibee.demo.test.", RecordType::A);
        assert_eq!(r.metadata.response_code, ResponseCode::NoError);
        assert_eq!(r.answers.len(), 1);
        let caa = ask("core.digibee.demo.test.", RecordType::CAA);
        assert_eq!(
            (caa.metadata.response_code, caa.answers.len()),
            (ResponseCode::NoError, 0)
        );
        let up = ask("test.", RecordType::CAA);
        assert_eq!(up.metadata.response_code, ResponseCode::NoError);
        let other = ask("example.com.", RecordType::A);
        assert_eq!(other.metadata.response_code, ResponseCode::Refused);
    }
}
