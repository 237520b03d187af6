//! Who may connect: the `user:password` pairs a server accepts.

use subtle::ConstantTimeEq;

/// The accepted credentials. Passwords are compared in constant time.
#[derive(Clone, Default)]
pub struct Credentials {
    pairs: Vec<(String, String)>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print passwords.
        let users: Vec<&str> = self.pairs.iter().map(|(u, _)| u.as_str()).collect();
        f.debug_struct("Credentials")
            .field("users", &users)
            .finish()
    }
}

/// Why a credentials spec or file could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// A line is not `user:password`.
    #[error("line {line}: expected user:password")]
    BadLine {
        /// 1-based line number.
        line: usize,
    },
    /// The credentials file could not be read.
    #[error("cannot read credentials file: {0}")]
    Io(#[from] std::io::Error),
    /// No credentials were given.
    #[error("no credentials")]
    Empty,
}

impl Credentials {
    /// Parses one `user:password` (the password may contain `:`).
    pub fn parse(spec: &str) -> Result<Credentials, AuthError> {
        Self::parse_lines(spec)
    }

    /// Parses one `user:password` a line; blank lines and `#` comments are skipped.
    pub fn parse_lines(text: &str) -> Result<Credentials, AuthError> {
        let mut pairs = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (u, p) = line
                .split_once(':')
                .ok_or(AuthError::BadLine { line: i + 1 })?;
            pairs.push((u.to_owned(), p.to_owned()));
        }
        if pairs.is_empty() {
            return Err(AuthError::Empty);
        }
        Ok(Credentials { pairs })
    }

    /// Reads a file of `user:password` lines.
    pub fn from_file(path: &std::path::Path) -> Result<Credentials, AuthError> {
        Self::parse_lines(&std::fs::read_to_string(path)?)
    }

    /// Whether `user` with `password` may connect. Every stored pair is compared,
    /// each in constant time, so the time taken says nothing about the secrets.
    pub fn check(&self, user: &str, password: &str) -> bool {
        let mut ok = subtle::Choice::from(0);
        for (u, p) in &self.pairs {
            ok |= u.as_bytes().ct_eq(user.as_bytes()) & p.as_bytes().ct_eq(password.as_bytes());
        }
        ok.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_checks() {
        let c = Credentials::parse_lines("# users\nalice:s3cret\n\nbob:pa:ss\n").unwrap();
        assert!(c.check("alice", "s3cret"));
        assert!(c.check("bob", "pa:ss"));
        assert!(!c.check("alice", "pa:ss"));
        assert!(!c.check("carol", ""));
        assert!(matches!(
            Credentials::parse("nocolon"),
            Err(AuthError::BadLine { line: 1 })
        ));
        assert!(matches!(
            Credentials::parse_lines("\n#x\n"),
            Err(AuthError::Empty)
        ));
        assert!(!format!("{c:?}").contains("s3cret"));
    }
}
