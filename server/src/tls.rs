//! TLS with rustls (ring provider): a certificate chain and key from PEM files, or a
//! self-signed certificate generated at start for development. ALPN offers HTTP/2 first.

use crate::config::TlsMode;
use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Names the self-signed development certificate is valid for.
pub const SELF_SIGNED_NAMES: [&str; 2] = ["localhost", "127.0.0.1"];

/// ALPN protocols offered, in order of preference.
const ALPN_PROTOCOLS: [&[u8]; 2] = [b"h2", b"http/1.1"];

/// Why the TLS configuration could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read TLS certificate file {} (tls.cert)", path.display())]
    ReadCert {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read TLS key file {} (tls.key)", path.display())]
    ReadKey {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("TLS certificate file {} (tls.cert) is not a PEM certificate chain: {reason}", path.display())]
    BadCert { path: PathBuf, reason: String },
    #[error("TLS key file {} (tls.key) does not hold one PEM private key: {reason}", path.display())]
    BadKey { path: PathBuf, reason: String },
    #[error("cannot generate a self-signed certificate")]
    SelfSigned(#[from] rcgen::Error),
    #[error("the TLS certificate and key do not form a usable configuration")]
    Rustls(#[from] rustls::Error),
}

/// Installs ring as the process's rustls crypto provider. Idempotent: a provider installed
/// earlier (by a previous call, or by a test harness) is kept.
pub fn install_crypto_provider() {
    // `install_default` fails only when a provider is already installed, which is what we want.
    let _already_installed = rustls::crypto::ring::default_provider().install_default();
}

/// The rustls server configuration for `mode`, or `None` for plain HTTP. Blocking: reads files
/// and, for a self-signed certificate, generates a key.
pub fn server_config(mode: &TlsMode) -> Result<Option<Arc<ServerConfig>>, TlsError> {
    let (chain, key) = match mode {
        TlsMode::Off => return Ok(None),
        TlsMode::Files { cert, key } => (read_chain(cert)?, read_key(key)?),
        TlsMode::SelfSigned => self_signed()?,
    };
    install_crypto_provider();
    let mut config = ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    config.alpn_protocols = ALPN_PROTOCOLS
        .iter()
        .map(|protocol| protocol.to_vec())
        .collect();
    Ok(Some(Arc::new(config)))
}

fn read_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = std::fs::read(path).map_err(|source| TlsError::ReadCert {
        path: path.to_owned(),
        source,
    })?;
    let chain = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| TlsError::BadCert {
            path: path.to_owned(),
            reason: error.to_string(),
        })?;
    if chain.is_empty() {
        return Err(TlsError::BadCert {
            path: path.to_owned(),
            reason: "no CERTIFICATE section found".to_owned(),
        });
    }
    Ok(chain)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem = std::fs::read(path).map_err(|source| TlsError::ReadKey {
        path: path.to_owned(),
        source,
    })?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|error| TlsError::BadKey {
        path: path.to_owned(),
        reason: error.to_string(),
    })
}

fn self_signed() -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsError> {
    let names: Vec<String> = SELF_SIGNED_NAMES
        .iter()
        .map(|name| (*name).to_owned())
        .collect();
    let certified = rcgen::generate_simple_self_signed(names)?;
    let key = PrivateKeyDer::try_from(certified.signing_key.serialize_der()).map_err(|reason| {
        TlsError::BadKey {
            path: PathBuf::from("<generated>"),
            reason: reason.to_owned(),
        }
    })?;
    Ok((vec![certified.cert.der().clone()], key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn self_signed_config_offers_h2_first() {
        let config = server_config(&TlsMode::SelfSigned)
            .expect("self-signed")
            .expect("tls on");
        assert_eq!(
            config.alpn_protocols.first().map(Vec::as_slice),
            Some(&b"h2"[..])
        );
    }

    #[test]
    fn plain_mode_has_no_tls() {
        assert!(server_config(&TlsMode::Off).expect("off").is_none());
    }

    #[test]
    fn missing_and_malformed_files_name_the_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cert = dir.path().join("cert.pem");
        let key = dir.path().join("key.pem");
        let error = server_config(&TlsMode::Files {
            cert: cert.clone(),
            key: key.clone(),
        })
        .expect_err("missing");
        assert!(error.to_string().contains("tls.cert"), "{error}");

        std::fs::write(&cert, "not pem").expect("write");
        std::fs::write(&key, "not pem").expect("write");
        let error = server_config(&TlsMode::Files {
            cert: cert.clone(),
            key: key.clone(),
        })
        .expect_err("garbage");
        assert!(error.to_string().contains("tls.cert"), "{error}");

        let generated =
            rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("generate");
        std::fs::write(&cert, generated.cert.pem()).expect("write");
        let error = server_config(&TlsMode::Files {
            cert: cert.clone(),
            key: key.clone(),
        })
        .expect_err("bad key");
        assert!(error.to_string().contains("tls.key"), "{error}");

        std::fs::write(&key, generated.signing_key.serialize_pem()).expect("write");
        assert!(
            server_config(&TlsMode::Files { cert, key })
                .expect("valid files")
                .is_some()
        );
    }
}
