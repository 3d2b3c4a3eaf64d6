//! A CA certificate an operator gives for an account's private callback endpoint: PEM text with
//! one or more certificates and nothing else. Checked when it is set, so a bad file is refused at
//! the CLI instead of failing every delivery later.

use base64::Engine;

/// Far beyond any real CA bundle; keeps a wrong file (a log, a binary) out of the database.
pub const MAX_PEM_BYTES: usize = 64 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CaCertError {
    #[error("the CA file is over {MAX_PEM_BYTES} bytes")]
    TooLarge,
    #[error("the CA file has no `-----BEGIN CERTIFICATE-----` block")]
    NoCertificate,
    #[error("the CA file holds a private key: give only the certificate")]
    PrivateKey,
    #[error("certificate {0} of the CA file is not valid PEM (base64 DER)")]
    Malformed(usize),
}

const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
const END: &str = "-----END CERTIFICATE-----";

/// Checks `pem` and returns how many certificates it holds.
pub fn check_pem(pem: &str) -> Result<usize, CaCertError> {
    if pem.len() > MAX_PEM_BYTES {
        return Err(CaCertError::TooLarge);
    }
    // A key next to the certificate is an operator's slip that would put a secret in the database.
    if pem.contains("PRIVATE KEY-----") {
        return Err(CaCertError::PrivateKey);
    }
    let mut count = 0;
    let mut rest = pem;
    while let Some(start) = rest.find(BEGIN) {
        count += 1;
        let body_and_more = &rest[start + BEGIN.len()..];
        let end = body_and_more
            .find(END)
            .ok_or(CaCertError::Malformed(count))?;
        let b64: String = body_and_more[..end]
            .chars()
            .filter(|c| !c.is_ascii_whitespace())
            .collect();
        let der = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|_| CaCertError::Malformed(count))?;
        // An X.509 certificate is a DER SEQUENCE.
        if der.first() != Some(&0x30) || der.len() < 64 {
            return Err(CaCertError::Malformed(count));
        }
        rest = &body_and_more[end + END.len()..];
    }
    if count == 0 {
        return Err(CaCertError::NoCertificate);
    }
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(der: &[u8]) -> String {
        let b64 = base64::engine::general_purpose::STANDARD.encode(der);
        format!("{BEGIN}\n{b64}\n{END}\n")
    }

    #[test]
    fn certificates_are_counted_and_anything_else_refused() {
        let cert = block(&[&[0x30u8, 0x82, 0x01, 0x0a][..], &[7u8; 266]].concat());
        assert_eq!(check_pem(&cert), Ok(1));
        assert_eq!(check_pem(&format!("{cert}{cert}")), Ok(2));
        assert_eq!(check_pem("hello"), Err(CaCertError::NoCertificate));
        assert_eq!(
            check_pem(&format!(
                "{cert}-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"
            )),
            Err(CaCertError::PrivateKey)
        );
        assert_eq!(
            check_pem(&format!("{BEGIN}\nnot base64!\n{END}\n")),
            Err(CaCertError::Malformed(1))
        );
        assert_eq!(
            check_pem(&block(&[1u8; 100])),
            Err(CaCertError::Malformed(1))
        );
        assert_eq!(
            check_pem(&format!("{cert}{BEGIN}\nMII")),
            Err(CaCertError::Malformed(2))
        );
        assert_eq!(
            check_pem(&"x".repeat(MAX_PEM_BYTES + 1)),
            Err(CaCertError::TooLarge)
        );
    }
}
