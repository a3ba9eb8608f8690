//! TLS for PostgreSQL connections, as libpq's `sslmode` asks for it, with rustls.
//!
//! The URL's `sslmode` and `sslrootcert` are read here: tokio-postgres knows `disable`,
//! `prefer` and `require` only, so `verify-ca` and `verify-full` reach it as `require` and the
//! certificate checks they add are made by the rustls configuration built here.

use std::path::PathBuf;
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::postgres::PostgresError;

/// How a connection uses TLS: libpq's `sslmode` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    /// No TLS.
    Disable,
    /// TLS if the server offers it, else a plain connection (tokio-postgres's default, as
    /// libpq's); the certificate is not checked.
    Prefer,
    /// TLS or no connection; the certificate is not checked (as libpq without a root
    /// certificate): the traffic is encrypted, but a man in the middle is not detected.
    Require,
    /// TLS, with a certificate signed by a trusted authority (any host name).
    VerifyCa,
    /// TLS, with a certificate signed by a trusted authority and issued for the host.
    VerifyFull,
}

impl SslMode {
    fn parse(value: &str) -> Result<SslMode, PostgresError> {
        Ok(match value {
            "disable" => SslMode::Disable,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            other => {
                return Err(PostgresError::Tls(format!(
                    "sslmode `{other}`: use disable, prefer, require, verify-ca or verify-full"
                )));
            }
        })
    }

    /// The mode tokio-postgres is given: it negotiates TLS, the rustls configuration checks.
    fn negotiated(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => "require",
        }
    }
}

/// A connection URL split into what tokio-postgres reads and the TLS settings read here.
#[derive(Debug)]
pub struct TlsUrl {
    /// The URL with `sslmode` one that tokio-postgres knows, and no `sslrootcert`.
    pub url: String,
    /// The mode asked for (`prefer` when the URL names none, as libpq).
    pub mode: SslMode,
    /// PEM file of the authorities trusted by `verify-ca` and `verify-full` (without it, the
    /// Mozilla roots of `webpki-roots`).
    pub root_cert: Option<PathBuf>,
}

impl TlsUrl {
    /// Reads `sslmode` and `sslrootcert` from a `postgres://` URL's query. A key=value
    /// connection string is left to tokio-postgres (`disable`, `prefer` or `require`).
    pub fn parse(url: &str) -> Result<TlsUrl, PostgresError> {
        let is_url = url.starts_with("postgres://") || url.starts_with("postgresql://");
        let (base, query) = match url.split_once('?') {
            Some((base, query)) if is_url => (base, query),
            _ => {
                return Ok(TlsUrl {
                    url: url.to_owned(),
                    mode: SslMode::Prefer,
                    root_cert: None,
                });
            }
        };
        let (mut mode, mut root_cert, mut kept) = (SslMode::Prefer, None, Vec::new());
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            match pair.split_once('=') {
                Some(("sslmode", value)) => mode = SslMode::parse(&percent_decode(value)?)?,
                Some(("sslrootcert", value)) => {
                    root_cert = Some(PathBuf::from(percent_decode(value)?));
                }
                _ => kept.push(pair),
            }
        }
        let sslmode = format!("sslmode={}", mode.negotiated());
        kept.push(&sslmode);
        Ok(TlsUrl {
            url: format!("{base}?{}", kept.join("&")),
            mode,
            root_cert,
        })
    }

    /// The rustls connector that makes the checks this mode asks for.
    pub fn connector(&self) -> Result<MakeRustlsConnect, PostgresError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .map_err(|e| PostgresError::Tls(e.to_string()))?;
        let config = match self.mode {
            SslMode::Disable | SslMode::Prefer | SslMode::Require => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(Unchecked(provider)))
                .with_no_client_auth(),
            SslMode::VerifyCa => {
                let verifier =
                    WebPkiServerVerifier::builder_with_provider(Arc::new(self.roots()?), provider)
                        .build()
                        .map_err(|e| PostgresError::Tls(e.to_string()))?;
                builder
                    .dangerous()
                    .with_custom_certificate_verifier(Arc::new(AnyHostName(verifier)))
                    .with_no_client_auth()
            }
            SslMode::VerifyFull => builder
                .with_root_certificates(self.roots()?)
                .with_no_client_auth(),
        };
        Ok(MakeRustlsConnect::new(config))
    }

    /// The trusted authorities: `sslrootcert`'s, or the Mozilla roots.
    fn roots(&self) -> Result<RootCertStore, PostgresError> {
        let Some(path) = &self.root_cert else {
            return Ok(RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
            });
        };
        let unreadable =
            |e: &dyn std::fmt::Display| PostgresError::Tls(format!("{}: {e}", path.display()));
        let mut roots = RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(path).map_err(|e| unreadable(&e))? {
            roots
                .add(cert.map_err(|e| unreadable(&e))?)
                .map_err(|e| unreadable(&e))?;
        }
        if roots.is_empty() {
            return Err(unreadable(&"no certificate in the file"));
        }
        Ok(roots)
    }
}

/// `%XX` escapes of a URL query value, decoded (a path may need them); a `%` not followed
/// by two hex digits stays as it is, as URL parsers read it.
fn percent_decode(value: &str) -> Result<String, PostgresError> {
    percent_encoding::percent_decode_str(value)
        .decode_utf8()
        .map(std::borrow::Cow::into_owned)
        .map_err(|_| PostgresError::Tls(format!("`{value}` is not a valid URL query value")))
}

/// `prefer` and `require`: any certificate, as libpq without a root certificate; the
/// handshake's signatures are still checked, so the session is encrypted to whoever holds the
/// certificate's key.
#[derive(Debug)]
struct Unchecked(Arc<CryptoProvider>);

impl ServerCertVerifier for Unchecked {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// `verify-ca`: the chain must lead to a trusted authority; the host name is not checked
/// (WebPKI checks the chain before the name, so a name mismatch means the chain was good).
#[derive(Debug)]
struct AnyHostName(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for AnyHostName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sslmode_is_read_from_the_url_and_tokio_postgres_gets_what_it_knows() {
        let cases = [
            ("postgres://u@h/db", SslMode::Prefer, "postgres://u@h/db"),
            (
                "postgres://u@h/db?sslmode=disable",
                SslMode::Disable,
                "postgres://u@h/db?sslmode=disable",
            ),
            (
                "postgresql://u@h/db?connect_timeout=5&sslmode=require",
                SslMode::Require,
                "postgresql://u@h/db?connect_timeout=5&sslmode=require",
            ),
            (
                "postgres://u@h/db?sslmode=verify-ca&sslrootcert=%2Ftmp%2Fca.pem",
                SslMode::VerifyCa,
                "postgres://u@h/db?sslmode=require",
            ),
            (
                "postgres://u@h/db?sslmode=verify-full",
                SslMode::VerifyFull,
                "postgres://u@h/db?sslmode=require",
            ),
            // A connection string of key=value pairs goes to tokio-postgres as it is.
            (
                "host=h user=u sslmode=require",
                SslMode::Prefer,
                "host=h user=u sslmode=require",
            ),
        ];
        for (url, mode, passed) in cases {
            let parsed = TlsUrl::parse(url).unwrap();
            assert_eq!((parsed.mode, parsed.url.as_str()), (mode, passed), "{url}");
            let config: postgres::Config = parsed.url.parse().unwrap();
            let expected = match mode {
                SslMode::Disable => postgres::config::SslMode::Disable,
                SslMode::Prefer if url.contains("sslmode=require") => {
                    postgres::config::SslMode::Require
                }
                SslMode::Prefer => postgres::config::SslMode::Prefer,
                _ => postgres::config::SslMode::Require,
            };
            assert_eq!(config.get_ssl_mode(), expected, "{url}");
        }
        let ca = TlsUrl::parse("postgres://u@h/db?sslrootcert=%2Ftmp%2Fca.pem&sslmode=verify-ca");
        assert_eq!(ca.unwrap().root_cert, Some(PathBuf::from("/tmp/ca.pem")));
    }

    #[test]
    fn bad_tls_settings_are_typed_errors() {
        for url in [
            "postgres://u@h/db?sslmode=always",
            "postgres://u@h/db?sslmode=%zz",
            "postgres://u@h/db?sslmode=verify-full&sslrootcert=%E2%28",
        ] {
            let e = TlsUrl::parse(url).unwrap_err();
            assert!(matches!(e, PostgresError::Tls(_)), "{url}: {e}");
        }
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate").unwrap();
        for root in [dir.path().join("missing.pem"), empty] {
            let url = format!(
                "postgres://u@h/db?sslmode=verify-full&sslrootcert={}",
                root.display()
            );
            let e = TlsUrl::parse(&url).unwrap().connector().err().unwrap();
            assert!(e.to_string().contains(&root.display().to_string()), "{e}");
        }
        // Every mode builds a connector (verify-* from the Mozilla roots).
        for mode in ["disable", "prefer", "require", "verify-ca", "verify-full"] {
            let url = format!("postgres://u@h/db?sslmode={mode}");
            assert!(TlsUrl::parse(&url).unwrap().connector().is_ok(), "{mode}");
        }
    }
}
