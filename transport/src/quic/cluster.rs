//! A cluster's certificates: one CA per cluster (`weft cluster init DIR`),
//! one certificate per node signed by it (`weft cluster add-node DIR
//! NAME`). Nodes trust exactly the cluster CA, in both directions (mutual
//! TLS), so a peer without a certificate from it is refused.
//!
//! Files in DIR: `ca.pem`, `ca.key` (keep it where new nodes are made),
//! `NAME.pem` and `NAME.key` per node. Keys are written owner-only.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("{0}: {1}")]
    Io(PathBuf, std::io::Error),
    #[error("certificate: {0}")]
    Certificate(#[from] rcgen::Error),
    #[error("`{0}` is not a node name (letters, digits, `-`, at most 63)")]
    BadName(String),
    #[error("{0} exists already")]
    Exists(PathBuf),
}

/// The CA's parameters; rebuilt identically to sign node certificates, so
/// no certificate parser is needed.
fn ca_params() -> Result<CertificateParams, rcgen::Error> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, "weft cluster CA");
    params.distinguished_name = name;
    Ok(params)
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !name.starts_with('-')
}

fn write(path: &Path, contents: &str, secret: bool) -> Result<(), ClusterError> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    if secret {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = secret;
    let mut file = options.open(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::AlreadyExists => ClusterError::Exists(path.to_path_buf()),
        _ => ClusterError::Io(path.to_path_buf(), e),
    })?;
    file.write_all(contents.as_bytes())
        .map_err(|e| ClusterError::Io(path.to_path_buf(), e))
}

fn read(path: &Path) -> Result<String, ClusterError> {
    std::fs::read_to_string(path).map_err(|e| ClusterError::Io(path.to_path_buf(), e))
}

/// Creates a cluster CA in `dir`.
pub fn init(dir: &Path) -> Result<(), ClusterError> {
    std::fs::create_dir_all(dir).map_err(|e| ClusterError::Io(dir.to_path_buf(), e))?;
    let key = KeyPair::generate()?;
    let cert = ca_params()?.self_signed(&key)?;
    write(&dir.join("ca.key"), &key.serialize_pem(), true)?;
    write(&dir.join("ca.pem"), &cert.pem(), false)
}

/// Signs a certificate for node `name` with the CA in `dir`.
pub fn add_node(dir: &Path, name: &str) -> Result<(), ClusterError> {
    if !valid_name(name) || name == "ca" {
        return Err(ClusterError::BadName(name.into()));
    }
    let ca_key = KeyPair::from_pem(&read(&dir.join("ca.key"))?)?;
    let issuer = Issuer::new(ca_params()?, ca_key);
    // Every node also answers to `NODE_ALIAS`, so a peer can be named by
    // its address alone (any certificate of the cluster CA is trusted).
    let mut params = CertificateParams::new(vec![name.to_string(), super::NODE_ALIAS.to_string()])?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, name);
    params.distinguished_name = dn;
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, &issuer)?;
    write(&dir.join(format!("{name}.key")), &key.serialize_pem(), true)?;
    write(&dir.join(format!("{name}.pem")), &cert.pem(), false)
}
