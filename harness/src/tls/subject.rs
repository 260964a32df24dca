//! The subject common name (CN) of a DER certificate, for reports: a small
//! bounded DER walk (no X.509 parser dependency). Anything unexpected gives
//! `None`, never a panic.

/// One DER TLV at the start of `b`: (tag, contents, rest).
fn tlv(b: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, b) = b.split_first()?;
    let (&first, mut b) = b.split_first()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 {
            return None;
        }
        let len = b
            .get(..n)?
            .iter()
            .fold(0usize, |a, &x| (a << 8) | usize::from(x));
        b = b.get(n..)?;
        len
    };
    Some((tag, b.get(..len)?, b.get(len..)?))
}

/// The elements of a DER SEQUENCE or SET body (at most `max`).
fn elements(mut body: &[u8], max: usize) -> Option<Vec<(u8, &[u8])>> {
    let mut out = Vec::new();
    while !body.is_empty() && out.len() < max {
        let (t, c, rest) = tlv(body)?;
        out.push((t, c));
        body = rest;
    }
    Some(out)
}

/// OID 2.5.4.3 (commonName), DER contents.
const CN_OID: [u8; 3] = [0x55, 0x04, 0x03];

/// The last CN of the certificate's subject, printable (control characters
/// dropped, at most 64 characters).
pub fn common_name(cert: &[u8]) -> Option<String> {
    let (_, cert, _) = tlv(cert)?;
    let (_, tbs, _) = tlv(cert)?;
    let fields = elements(tbs, 7)?;
    // [0] version (optional), serial, signature, issuer, validity, subject.
    let skip = usize::from(fields.first()?.0 == 0xa0);
    let (_, subject) = *fields.get(skip + 4)?;
    let mut cn = None;
    for (_, rdn) in elements(subject, 64)? {
        for (_, atv) in elements(rdn, 16)? {
            let (_, oid, value) = tlv(atv)?;
            if oid == CN_OID {
                let (_, v, _) = tlv(value)?;
                cn = Some(printable(v));
            }
        }
    }
    cn
}

fn printable(v: &[u8]) -> String {
    String::from_utf8_lossy(v)
        .chars()
        .filter(|c| !c.is_control())
        .take(64)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn der(name: &str) -> Vec<u8> {
        let path = crate::tls::fixture(&crate::project::root(), name);
        let certs = super::super::pem::certs(&path, "certificate file").expect("fixture");
        certs[0].as_ref().to_vec()
    }

    #[test]
    fn reads_the_subject_cn_not_the_issuer_cn() {
        assert_eq!(
            common_name(&der("client.pem")).as_deref(),
            Some("device-001")
        );
        assert_eq!(
            common_name(&der("wrong-client.pem")).as_deref(),
            Some("device-002")
        );
    }

    #[test]
    fn garbage_and_truncation_give_none() {
        let d = der("client.pem");
        for n in [0, 1, 2, 10, d.len() / 2, d.len() - 1] {
            let _ = common_name(&d[..n]);
        }
        assert_eq!(common_name(&d[..d.len() / 2]), None);
        assert_eq!(common_name(b"\x30\x84\xff\xff\xff\xff"), None);
        assert_eq!(common_name(b"\x30\x85\x01\x01\x01\x01\x01"), None);
        assert_eq!(common_name(&[]), None);
    }
}
