//! Loading certificates and keys from PEM files, with bounded reads and
//! errors that name the file.

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::io::Read;
use std::path::Path;

/// Largest PEM file read (certificate chains and keys are a few KiB).
const MAX_PEM_BYTES: u64 = 1 << 20;

fn read_bounded(path: &Path, what: &str) -> Result<Vec<u8>, String> {
    let f = std::fs::File::open(path)
        .map_err(|e| format!("cannot read {what} {}: {e}", path.display()))?;
    let mut buf = Vec::new();
    f.take(MAX_PEM_BYTES + 1)
        .read_to_end(&mut buf)
        .map_err(|e| format!("cannot read {what} {}: {e}", path.display()))?;
    if buf.len() as u64 > MAX_PEM_BYTES {
        return Err(format!(
            "{what} {} is larger than {MAX_PEM_BYTES} bytes: not a PEM file",
            path.display()
        ));
    }
    Ok(buf)
}

/// Every certificate in a PEM file (at least one).
pub(super) fn certs(path: &Path, what: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let bytes = read_bounded(path, what)?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{what} {} is not valid PEM: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "{what} {} holds no certificate (expected -----BEGIN CERTIFICATE-----)",
            path.display()
        ));
    }
    Ok(certs)
}

/// The private key in a PEM file (PKCS#8, PKCS#1 or SEC1).
pub(super) fn key(path: &Path) -> Result<PrivateKeyDer<'static>, String> {
    let bytes = read_bounded(path, "private key file")?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| {
        format!(
            "private key file {} holds no usable private key: {e}",
            path.display()
        )
    })
}

/// A root store with every certificate of a CA file.
pub(super) fn roots(path: &Path) -> Result<rustls::RootCertStore, String> {
    let mut store = rustls::RootCertStore::empty();
    for c in certs(path, "CA file")? {
        store
            .add(c)
            .map_err(|e| format!("CA file {}: unusable certificate: {e}", path.display()))?;
    }
    Ok(store)
}
