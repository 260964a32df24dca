//! Writes the test PKI used by the TLS tests into `fixtures/tls/` (or the
//! directory given as the first argument):
//!
//!     cargo run -p mqtt-conformance --example gen-pki [DIR]
//!
//! Files (PEM): `ca` (the suite's test CA), `server` (localhost + 127.0.0.1,
//! signed by `ca`), `client` (a device, CN `device-001`, signed by `ca`),
//! `wrong-ca` (an unrelated CA), `wrong-server` (localhost + 127.0.0.1, signed
//! by `wrong-ca`), `wrong-client` (a device signed by `wrong-ca`),
//! `expired-server` (signed by `ca`, expired in 2021) and `wronghost-server`
//! (signed by `ca`, for `wrong.example` only). Each has `NAME.pem` and
//! `NAME.key`. Valid from 2025-01-01 to 2036-01-01.
//!
//! The private keys are test fixtures, not secrets: they are checked in.

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use std::path::{Path, PathBuf};
use time::macros::datetime;
use time::OffsetDateTime;

type Res<T> = Result<T, Box<dyn std::error::Error>>;

const NOT_BEFORE: OffsetDateTime = datetime!(2025-01-01 0:00 UTC);
const NOT_AFTER: OffsetDateTime = datetime!(2036-01-01 0:00 UTC);

fn main() {
    let dir = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("..")
                .join("fixtures")
                .join("tls")
        });
    if let Err(e) = generate(&dir) {
        eprintln!("gen-pki: {e}");
        std::process::exit(1);
    }
    let shown = dir.canonicalize().unwrap_or(dir);
    println!("test PKI written to {}", shown.display());
}

fn generate(dir: &Path) -> Res<()> {
    std::fs::create_dir_all(dir)?;
    let ca = new_ca(dir, "ca", "mqtt-conformance test CA")?;
    let wrong = new_ca(dir, "wrong-ca", "mqtt-conformance unrelated CA")?;
    let server_names = ["localhost".to_string(), "127.0.0.1".to_string()];
    leaf(dir, "server", &ca, &server_names, Kind::Server, None)?;
    leaf(
        dir,
        "client",
        &ca,
        &["device-001".into()],
        Kind::Client,
        None,
    )?;
    leaf(
        dir,
        "wrong-server",
        &wrong,
        &server_names,
        Kind::Server,
        None,
    )?;
    leaf(
        dir,
        "wrong-client",
        &wrong,
        &["device-002".into()],
        Kind::Client,
        None,
    )?;
    let expired = (
        datetime!(2020-01-01 0:00 UTC),
        datetime!(2021-01-01 0:00 UTC),
    );
    leaf(
        dir,
        "expired-server",
        &ca,
        &server_names,
        Kind::Server,
        Some(expired),
    )?;
    leaf(
        dir,
        "wronghost-server",
        &ca,
        &["wrong.example".into()],
        Kind::Server,
        None,
    )?;
    Ok(())
}

fn write(dir: &Path, name: &str, cert_pem: &str, key: &KeyPair) -> Res<()> {
    std::fs::write(dir.join(format!("{name}.pem")), cert_pem)?;
    std::fs::write(dir.join(format!("{name}.key")), key.serialize_pem())?;
    Ok(())
}

fn new_ca(dir: &Path, name: &str, cn: &str) -> Res<Issuer<'static, KeyPair>> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, cn);
    params
        .distinguished_name
        .push(DnType::OrganizationName, "mqtt-conformance");
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
    ];
    params.not_before = NOT_BEFORE;
    params.not_after = NOT_AFTER;
    let key = KeyPair::generate()?;
    let cert = params.self_signed(&key)?;
    write(dir, name, &cert.pem(), &key)?;
    Ok(Issuer::new(params, key))
}

enum Kind {
    Server,
    Client,
}

fn leaf(
    dir: &Path,
    name: &str,
    issuer: &Issuer<'static, KeyPair>,
    names: &[String],
    kind: Kind,
    validity: Option<(OffsetDateTime, OffsetDateTime)>,
) -> Res<()> {
    let mut params = match kind {
        Kind::Server => CertificateParams::new(names.to_vec())?,
        Kind::Client => CertificateParams::new(Vec::<String>::new())?,
    };
    let cn = names.first().map(String::as_str).unwrap_or(name);
    params.distinguished_name.push(DnType::CommonName, cn);
    params
        .distinguished_name
        .push(DnType::OrganizationName, "mqtt-conformance");
    params.use_authority_key_identifier_extension = true;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![match kind {
        Kind::Server => ExtendedKeyUsagePurpose::ServerAuth,
        Kind::Client => ExtendedKeyUsagePurpose::ClientAuth,
    }];
    let (from, to) = validity.unwrap_or((NOT_BEFORE, NOT_AFTER));
    params.not_before = from;
    params.not_after = to;
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, issuer)?;
    write(dir, name, &cert.pem(), &key)?;
    Ok(())
}
