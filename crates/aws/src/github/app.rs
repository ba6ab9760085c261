//! Authenticating as a GitHub App: the App's JWT (RS256, signed with aws-lc-rs, the crypto
//! rustls already brings), and an installation token for one repository with the permissions
//! one function needs, kept until five minutes before it expires and fetched again once when
//! GitHub rejects it. The key, the JWT and the tokens never reach a log: their types print as
//! `…`, and no message quotes them.

use std::fmt;
use std::sync::Arc;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use tokio::sync::Mutex;

use super::{Auth, AuthError, Call, CallError, GitHubClient};
use crate::secrets::{Cached, SecretProblem, SecretSource};
use crate::undo::now_ms;

/// How long before `iat` the clock may run behind GitHub's: GitHub's own advice.
const CLOCK_SKEW_S: u64 = 60;
/// A JWT's life after `iat` (GitHub accepts at most 10 minutes).
const JWT_LIFE_S: u64 = 9 * 60;
/// A JWT is signed again this long before it expires.
const JWT_RENEW_S: u64 = 60;
/// An installation token is fetched again this long before it expires.
const TOKEN_RENEW_S: u64 = 5 * 60;

/// An App's private key, as GitHub hands it out (PEM, PKCS#1) or as PKCS#8.
pub struct AppKey(RsaKeyPair);

impl fmt::Debug for AppKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AppKey(…)")
    }
}

/// Why a key cannot be used. No variant quotes the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error(
        "the App's private key is not a PEM block; store the .pem file GitHub gave you, from `-----BEGIN RSA PRIVATE KEY-----` to the END line"
    )]
    NotPem,
    #[error(
        "the App's private key is a PEM `{0}`, not an RSA private key; store the .pem file GitHub gave you (`RSA PRIVATE KEY`, or `PRIVATE KEY` in PKCS#8)"
    )]
    NotAKey(String),
    #[error("the App's private key's PEM body is not base64; store the .pem file unchanged")]
    Base64,
    #[error(
        "the App's private key was refused ({0}); store the .pem file GitHub gave you, or generate a new key in the App's settings"
    )]
    Rejected(String),
    #[error("signing the App's JWT failed")]
    Signing,
}

impl AppKey {
    /// Reads a PEM private key: `RSA PRIVATE KEY` (PKCS#1, what GitHub hands out) or
    /// `PRIVATE KEY` (PKCS#8).
    pub fn from_pem(text: &str) -> Result<Self, KeyError> {
        let text = text.trim();
        let label = text
            .strip_prefix("-----BEGIN ")
            .and_then(|rest| rest.split_once("-----"))
            .map(|(label, _)| label)
            .ok_or(KeyError::NotPem)?;
        let end = format!("-----END {label}-----");
        let body = text
            .split_once("-----\n")
            .or_else(|| text.split_once("-----\r\n"))
            .map(|(_, rest)| rest)
            .and_then(|rest| rest.split_once(end.as_str()))
            .map(|(body, _)| body)
            .ok_or(KeyError::NotPem)?;
        let compact: String = body.split_whitespace().collect();
        let der = STANDARD.decode(compact).map_err(|_| KeyError::Base64)?;
        let pair = match label {
            "RSA PRIVATE KEY" => RsaKeyPair::from_der(&der),
            "PRIVATE KEY" => RsaKeyPair::from_pkcs8(&der),
            other => return Err(KeyError::NotAKey(other.to_owned())),
        }
        .map_err(|e| KeyError::Rejected(e.to_string()))?;
        Ok(Self(pair))
    }

    /// The App's JWT at `now` (seconds since the epoch): RS256, `iat` a minute in the past,
    /// `exp` nine minutes after it, `iss` the App's id.
    pub fn jwt(&self, app_id: &str, now: u64) -> Result<String, KeyError> {
        let iat = now.saturating_sub(CLOCK_SKEW_S);
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","typ":"JWT"}"#);
        let claims = serde_json::json!({"iat": iat, "exp": iat + JWT_LIFE_S, "iss": app_id});
        let claims = URL_SAFE_NO_PAD.encode(claims.to_string());
        let input = format!("{header}.{claims}");
        let mut signature = vec![0; self.0.public_modulus_len()];
        self.0
            .sign(
                &RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                input.as_bytes(),
                &mut signature,
            )
            .map_err(|_| KeyError::Signing)?;
        Ok(format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature)))
    }
}

/// A secret value kept out of logs.
#[derive(Clone)]
struct Kept {
    value: Arc<String>,
    /// Seconds since the epoch.
    expires: u64,
}

/// Authenticates as the App itself (`/app`, `/repos/{repo}/installation`,
/// `/app/installations/{id}/access_tokens`): a JWT, signed again shortly before it expires.
pub struct AppJwt {
    app_id: String,
    key: Arc<AppKey>,
    jwt: Mutex<Option<Kept>>,
}

impl fmt::Debug for AppJwt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppJwt")
            .field("app_id", &self.app_id)
            .finish_non_exhaustive()
    }
}

impl AppJwt {
    pub fn new(app_id: impl Into<String>, key: Arc<AppKey>) -> Self {
        Self {
            app_id: app_id.into(),
            key,
            jwt: Mutex::new(None),
        }
    }

    async fn current(&self, renew: bool) -> Result<Arc<String>, AuthError> {
        let now = now_ms() / 1000;
        let mut kept = self.jwt.lock().await;
        if let Some(k) = kept.as_ref()
            && !renew
            && now + JWT_RENEW_S < k.expires
        {
            return Ok(k.value.clone());
        }
        let value = Arc::new(
            self.key
                .jwt(&self.app_id, now)
                .map_err(|e| AuthError(e.to_string()))?,
        );
        let expires = now.saturating_sub(CLOCK_SKEW_S) + JWT_LIFE_S;
        *kept = Some(Kept {
            value: value.clone(),
            expires,
        });
        Ok(value)
    }
}

impl Auth for AppJwt {
    async fn token(&self) -> Result<Option<Arc<String>>, AuthError> {
        self.current(false).await.map(Some)
    }

    async fn refresh(&self, _stale: &Arc<String>) -> Result<Option<Arc<String>>, AuthError> {
        self.current(true).await.map(Some)
    }
}

/// Authenticates as the App's installation on one repository: a token for that repository
/// alone, with `permissions` alone, kept until five minutes before it expires.
pub struct Installation {
    client: GitHubClient,
    jwt: AppJwt,
    /// `owner/name`.
    repository: String,
    /// What the token may do (`{"checks": "write", "contents": "read"}`).
    permissions: serde_json::Value,
    id: Mutex<Option<u64>>,
    token: Mutex<Option<Kept>>,
}

impl fmt::Debug for Installation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Installation")
            .field("repository", &self.repository)
            .field("permissions", &self.permissions)
            .finish_non_exhaustive()
    }
}

impl Installation {
    /// `permissions` as GitHub names them: `[("checks", "write"), ("contents", "read")]`.
    pub fn new(
        client: GitHubClient,
        jwt: AppJwt,
        repository: impl Into<String>,
        permissions: &[(&str, &str)],
    ) -> Self {
        let permissions = permissions
            .iter()
            .map(|(k, v)| ((*k).to_owned(), serde_json::Value::from(*v)))
            .collect::<serde_json::Map<_, _>>()
            .into();
        Self {
            client,
            jwt,
            repository: repository.into(),
            permissions,
            id: Mutex::new(None),
            token: Mutex::new(None),
        }
    }

    /// The installation a delivery names (`installation.id`), which saves looking it up.
    pub async fn use_installation(&self, id: u64) {
        *self.id.lock().await = Some(id);
    }

    /// The App itself, for its own endpoints (`/app/...`).
    pub fn app(&self) -> &AppJwt {
        &self.jwt
    }

    /// The installation on the repository: the one given, or GitHub's answer.
    async fn installation_id(&self) -> Result<u64, AuthError> {
        let mut id = self.id.lock().await;
        if let Some(known) = *id {
            return Ok(known);
        }
        #[derive(serde::Deserialize)]
        struct Found {
            id: u64,
        }
        let path = format!("/repos/{}/installation", self.repository);
        let call = Call::get(&path, "the App installed on the repository");
        let found: Found = read(&self.client, &self.jwt, &call).await?;
        *id = Some(found.id);
        Ok(found.id)
    }

    /// A new token for the repository.
    async fn fetch(&self) -> Result<Kept, AuthError> {
        #[derive(serde::Deserialize)]
        struct Issued {
            token: String,
            expires_at: String,
        }
        let id = self.installation_id().await?;
        let name = self
            .repository
            .split_once('/')
            .map_or(self.repository.as_str(), |(_, n)| n);
        let body = serde_json::json!({"repositories": [name], "permissions": self.permissions})
            .to_string();
        let path = format!("/app/installations/{id}/access_tokens");
        let call = Call::post(
            &path,
            body.as_bytes(),
            "the App installed on the repository",
        );
        let issued: Issued = read(&self.client, &self.jwt, &call).await?;
        let expires = epoch_seconds(&issued.expires_at).ok_or_else(|| {
            AuthError(format!(
                "GitHub's installation token expires at `{}`, which is not a time",
                issued.expires_at
            ))
        })?;
        Ok(Kept {
            value: Arc::new(issued.token),
            expires,
        })
    }
}

impl Auth for Installation {
    async fn token(&self) -> Result<Option<Arc<String>>, AuthError> {
        let mut kept = self.token.lock().await;
        if let Some(k) = kept.as_ref()
            && now_ms() / 1000 + TOKEN_RENEW_S < k.expires
        {
            return Ok(Some(k.value.clone()));
        }
        let fresh = self.fetch().await?;
        let value = fresh.value.clone();
        *kept = Some(fresh);
        Ok(Some(value))
    }

    async fn refresh(&self, stale: &Arc<String>) -> Result<Option<Arc<String>>, AuthError> {
        let mut kept = self.token.lock().await;
        // Another request may have fetched a new one meanwhile.
        if let Some(k) = kept.as_ref()
            && !Arc::ptr_eq(&k.value, stale)
        {
            return Ok(Some(k.value.clone()));
        }
        let fresh = self.fetch().await?;
        let value = fresh.value.clone();
        *kept = Some(fresh);
        Ok(Some(value))
    }
}

/// The App's private key in a Secrets Manager secret: the `.pem` file GitHub hands out.
pub fn app_key(text: &str) -> Result<Arc<AppKey>, SecretProblem> {
    AppKey::from_pem(text)
        .map(Arc::new)
        .map_err(|e| SecretProblem::NotAnAppKey(e.to_string()))
}

/// An installation whose App key is read from a secret on the first request that needs a
/// token (not during the cold start), then parsed once.
pub struct SecretApp<K> {
    client: GitHubClient,
    app_id: String,
    key: Cached<K, Arc<AppKey>>,
    repository: String,
    permissions: Vec<(&'static str, &'static str)>,
    /// The installation a delivery named before the key was read.
    hint: Mutex<Option<u64>>,
    installation: tokio::sync::OnceCell<Installation>,
}

impl<K> fmt::Debug for SecretApp<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretApp")
            .field("app_id", &self.app_id)
            .field("repository", &self.repository)
            .finish_non_exhaustive()
    }
}

impl<K: SecretSource> SecretApp<K> {
    /// The App `app_id` installed on `repository`, its key in `key`, asking for `permissions`.
    pub fn new(
        client: GitHubClient,
        app_id: impl Into<String>,
        key: Cached<K, Arc<AppKey>>,
        repository: impl Into<String>,
        permissions: &[(&'static str, &'static str)],
    ) -> Self {
        Self {
            client,
            app_id: app_id.into(),
            key,
            repository: repository.into(),
            permissions: permissions.to_vec(),
            hint: Mutex::new(None),
            installation: tokio::sync::OnceCell::new(),
        }
    }

    /// The installation a delivery names (`installation.id`), which saves looking it up.
    pub async fn use_installation(&self, id: u64) {
        match self.installation.get() {
            Some(i) => i.use_installation(id).await,
            None => *self.hint.lock().await = Some(id),
        }
    }

    /// The App itself (its JWT), for its own endpoints such as `/app/hook/deliveries`.
    pub async fn app(&self) -> Result<&AppJwt, AuthError> {
        self.installation().await.map(Installation::app)
    }

    async fn installation(&self) -> Result<&Installation, AuthError> {
        self.installation
            .get_or_try_init(|| async {
                let key = self.key.get().await.map_err(|e| AuthError(e.to_string()))?;
                let jwt = AppJwt::new(self.app_id.clone(), Arc::clone(&key));
                let installation = Installation::new(
                    self.client.clone(),
                    jwt,
                    self.repository.clone(),
                    &self.permissions,
                );
                if let Some(id) = *self.hint.lock().await {
                    installation.use_installation(id).await;
                }
                Ok(installation)
            })
            .await
    }
}

impl<K: SecretSource> Auth for SecretApp<K> {
    async fn token(&self) -> Result<Option<Arc<String>>, AuthError> {
        self.installation().await?.token().await
    }

    async fn refresh(&self, stale: &Arc<String>) -> Result<Option<Arc<String>>, AuthError> {
        self.installation().await?.refresh(stale).await
    }
}

/// How a function authenticates to GitHub, as the stack configures it: not at all, with a
/// token in a secret (commit statuses), or as the App's installation (check runs).
#[derive(Debug)]
pub enum Credentials<K> {
    None,
    Token(Cached<K, String>),
    App(Box<SecretApp<K>>),
}

impl<K: SecretSource> Auth for Credentials<K> {
    fn has_token(&self) -> bool {
        !matches!(self, Credentials::None)
    }

    fn is_app(&self) -> bool {
        matches!(self, Credentials::App(_))
    }

    async fn installation_hint(&self, id: u64) {
        if let Credentials::App(app) = self {
            app.use_installation(id).await;
        }
    }

    async fn token(&self) -> Result<Option<Arc<String>>, AuthError> {
        match self {
            Credentials::None => Ok(None),
            Credentials::Token(t) => Auth::token(t).await,
            Credentials::App(a) => a.token().await,
        }
    }

    async fn refresh(&self, stale: &Arc<String>) -> Result<Option<Arc<String>>, AuthError> {
        match self {
            Credentials::None => Ok(None),
            Credentials::Token(t) => Auth::refresh(t, stale).await,
            Credentials::App(a) => a.refresh(stale).await,
        }
    }
}

/// Sends `call` as the App and reads the answer; any failure is an authentication failure
/// that says what GitHub answered.
async fn read<T: serde::de::DeserializeOwned>(
    client: &GitHubClient,
    jwt: &AppJwt,
    call: &Call<'_>,
) -> Result<T, AuthError> {
    let answer = client.send(jwt, call).await.map_err(|e| match e {
        CallError::Auth(e) => e,
        other => AuthError(other.to_string()),
    })?;
    if !answer.is_success() {
        let fix = match answer.status {
            401 => "; check the App id and that the key is the App's current one",
            404 => "; install the App on the repository (the App's settings, Install App)",
            403 => "; give the App the permissions it asks for and accept them on the installation",
            _ => "",
        };
        return Err(AuthError(format!(
            "{} answered {}: {}{fix}",
            answer.call,
            answer.status,
            answer.message()
        )));
    }
    serde_json::from_slice(&answer.body).map_err(|e| {
        AuthError(format!(
            "{} answered with a body that is not the expected JSON: {e}",
            answer.call
        ))
    })
}

/// Seconds since the epoch of a UTC time as GitHub writes it (`2016-07-11T22:14:10Z`).
pub fn epoch_seconds(text: &str) -> Option<u64> {
    let (date, time) = text.strip_suffix('Z')?.split_once('T')?;
    let mut d = date.splitn(3, '-').map(|p| p.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let time = time.split_once('.').map_or(time, |(whole, _)| whole);
    let mut t = time.splitn(3, ':').map(|p| p.parse::<i64>().ok());
    let (h, min, s) = (t.next()??, t.next()??, t.next()??);
    if !(1..=12).contains(&m) || !(1..=31).contains(&day) || h > 23 || min > 59 || s > 60 {
        return None;
    }
    // Days from the civil date (proleptic Gregorian), after Howard Hinnant's algorithm.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(days * 86_400 + h * 3600 + min * 60 + s).ok()
}

#[cfg(test)]
mod tests {
    use aws_lc_rs::encoding::AsDer;
    use aws_lc_rs::rsa::KeySize;
    use aws_lc_rs::signature::{KeyPair, RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey};

    use super::*;

    fn pem(label: &str, der: &[u8]) -> String {
        let body = STANDARD.encode(der);
        let lines: Vec<&str> = body
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        format!(
            "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
            lines.join("\n")
        )
    }

    /// The RSAPrivateKey (PKCS#1) inside a PKCS#8 PrivateKeyInfo: its last element, an
    /// OCTET STRING.
    fn pkcs1_of(pkcs8: &[u8]) -> Vec<u8> {
        fn header(der: &[u8]) -> (usize, usize) {
            // (length, header size) of the element at the start of `der`.
            match der[1] {
                n if n < 0x80 => (usize::from(n), 2),
                0x81 => (usize::from(der[2]), 3),
                0x82 => (usize::from(der[2]) << 8 | usize::from(der[3]), 4),
                _ => panic!("unexpected DER length"),
            }
        }
        let (_, outer) = header(pkcs8);
        let mut at = outer;
        for _ in 0..2 {
            let (len, head) = header(&pkcs8[at..]);
            at += head + len;
        }
        assert_eq!(pkcs8[at], 0x04, "an OCTET STRING");
        let (len, head) = header(&pkcs8[at..]);
        pkcs8[at + head..at + head + len].to_vec()
    }

    fn decode(part: &str) -> serde_json::Value {
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
    }

    #[test]
    fn keys_in_either_pem_form_sign_jwts_github_accepts() {
        let pair = RsaKeyPair::generate(KeySize::Rsa2048).unwrap();
        let pkcs8 = pair.as_der().unwrap();
        let public = pair.public_key().as_ref().to_vec();
        for text in [
            pem("PRIVATE KEY", pkcs8.as_ref()),
            pem("RSA PRIVATE KEY", &pkcs1_of(pkcs8.as_ref())),
            pem("RSA PRIVATE KEY", &pkcs1_of(pkcs8.as_ref())).replace('\n', "\r\n"),
        ] {
            let key = AppKey::from_pem(&text).unwrap();
            assert_eq!(format!("{key:?}"), "AppKey(…)");
            let jwt = key.jwt("12345", 1_800_000_000).unwrap();
            let parts: Vec<&str> = jwt.split('.').collect();
            assert_eq!(parts.len(), 3);
            assert_eq!(
                decode(parts[0]),
                serde_json::json!({"alg": "RS256", "typ": "JWT"})
            );
            let claims = decode(parts[1]);
            assert_eq!(claims["iss"], "12345");
            let (iat, exp) = (
                claims["iat"].as_u64().unwrap(),
                claims["exp"].as_u64().unwrap(),
            );
            assert_eq!(iat, 1_800_000_000 - 60);
            assert!(exp > iat && exp - iat <= 600, "{claims}");
            let signed = format!("{}.{}", parts[0], parts[1]);
            UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, &public)
                .verify(
                    signed.as_bytes(),
                    &URL_SAFE_NO_PAD.decode(parts[2]).unwrap(),
                )
                .expect("the signature verifies with the App's public key");
        }
    }

    #[test]
    fn unusable_keys_name_the_problem_and_never_the_key() {
        assert_eq!(AppKey::from_pem("ghp_token").unwrap_err(), KeyError::NotPem);
        assert_eq!(
            AppKey::from_pem("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----")
                .unwrap_err(),
            KeyError::NotAKey("CERTIFICATE".into())
        );
        assert_eq!(
            AppKey::from_pem(
                "-----BEGIN RSA PRIVATE KEY-----\n!!!!\n-----END RSA PRIVATE KEY-----"
            )
            .unwrap_err(),
            KeyError::Base64
        );
        let secret = "-----BEGIN RSA PRIVATE KEY-----\nc2VjcmV0LWtleS1ieXRlcw==\n-----END RSA PRIVATE KEY-----";
        let err = AppKey::from_pem(secret).unwrap_err().to_string();
        assert!(
            err.contains("refused") && !err.contains("c2VjcmV0"),
            "{err}"
        );
    }

    #[test]
    fn github_times_read_as_epoch_seconds() {
        assert_eq!(epoch_seconds("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(epoch_seconds("2016-07-11T22:14:10Z"), Some(1_468_275_250));
        assert_eq!(
            epoch_seconds("2024-02-29T12:00:00.123Z"),
            Some(1_709_208_000)
        );
        for bad in [
            "",
            "2016-07-11 22:14:10",
            "2016-13-11T22:14:10Z",
            "x-y-zTa:b:cZ",
        ] {
            assert_eq!(epoch_seconds(bad), None, "{bad}");
        }
    }

    /// GitHub's App endpoints on a local port: the installation of `acme/slc` (id 42) and its
    /// tokens, each `ghs_<n>` expiring `life` seconds from now. Records each request.
    struct AppStandIn {
        url: String,
        requests: Arc<std::sync::Mutex<Vec<String>>>,
    }

    impl AppStandIn {
        fn start(life: u64) -> Self {
            let requests = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
            let seen = requests.clone();
            let url = super::super::local::serve(move |request| {
                let mut seen = seen.lock().unwrap();
                seen.push(request.call.clone());
                let issued = seen.iter().filter(|r| r.starts_with("POST")).count();
                let jwt = request
                    .bearer
                    .as_deref()
                    .is_some_and(|b| b.split('.').count() == 3);
                match request.call.as_str() {
                    _ if !jwt => (
                        "401 Unauthorized",
                        r#"{"message":"A JSON web token could not be decoded"}"#.to_owned(),
                    ),
                    "GET /repos/acme/slc/installation" => ("200 OK", r#"{"id":42}"#.to_owned()),
                    "POST /app/installations/42/access_tokens" => {
                        let asked: serde_json::Value =
                            serde_json::from_slice(&request.body).unwrap();
                        assert_eq!(asked["repositories"], serde_json::json!(["slc"]));
                        assert_eq!(asked["permissions"], serde_json::json!({"checks": "write"}));
                        let expires = now_ms() / 1000 + life;
                        // The expiry as GitHub writes it.
                        let (y, m, d) = civil(expires / 86_400);
                        let rest = expires % 86_400;
                        let at = format!(
                            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
                            rest / 3600,
                            rest / 60 % 60,
                            rest % 60
                        );
                        (
                            "201 Created",
                            format!(r#"{{"token":"ghs_{issued}","expires_at":"{at}"}}"#),
                        )
                    }
                    _ => ("404 Not Found", r#"{"message":"Not Found"}"#.to_owned()),
                }
            });
            Self { url, requests }
        }

        fn requests(&self) -> Vec<String> {
            self.requests.lock().unwrap().clone()
        }
    }

    /// The civil date of a day count since the epoch (Howard Hinnant's algorithm).
    fn civil(days: u64) -> (i64, i64, i64) {
        let z = i64::try_from(days).unwrap() + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let d = doy - (153 * mp + 2) / 5 + 1;
        let m = if mp < 10 { mp + 3 } else { mp - 9 };
        (yoe + era * 400 + i64::from(m <= 2), m, d)
    }

    /// The App installed as the stand-in has it, asking for a token for `repository`.
    fn installation(stand_in: &AppStandIn, repository: &str) -> Installation {
        let pair = RsaKeyPair::generate(KeySize::Rsa2048).unwrap();
        let key = AppKey::from_pem(&pem("PRIVATE KEY", pair.as_der().unwrap().as_ref())).unwrap();
        Installation::new(
            super::super::local::client(&stand_in.url),
            AppJwt::new("12345", Arc::new(key)),
            repository,
            &[("checks", "write")],
        )
    }

    #[tokio::test]
    async fn an_installation_token_is_fetched_once_kept_and_replaced_when_rejected() {
        let github = AppStandIn::start(3600);
        let app = installation(&github, "acme/slc");
        let first = app.token().await.unwrap().unwrap();
        assert_eq!(first.as_str(), "ghs_1");
        assert_eq!(app.token().await.unwrap().unwrap().as_str(), "ghs_1");
        assert_eq!(
            github.requests(),
            [
                "GET /repos/acme/slc/installation",
                "POST /app/installations/42/access_tokens"
            ]
        );
        // GitHub rejected it: a new one, once, however many requests saw the old one.
        let fresh = app.refresh(&first).await.unwrap().unwrap();
        assert_eq!(fresh.as_str(), "ghs_2");
        assert_eq!(
            app.refresh(&first).await.unwrap().unwrap().as_str(),
            "ghs_2"
        );
        assert_eq!(github.requests().len(), 3);
        assert!(!format!("{app:?}").contains("ghs_"), "{app:?}");
    }

    #[tokio::test]
    async fn a_token_close_to_its_expiry_is_replaced_and_a_known_installation_not_looked_up() {
        let github = AppStandIn::start(4 * 60);
        let app = installation(&github, "acme/slc");
        app.use_installation(42).await;
        assert_eq!(app.token().await.unwrap().unwrap().as_str(), "ghs_1");
        // It expires within five minutes: the next request gets a new one.
        assert_eq!(app.token().await.unwrap().unwrap().as_str(), "ghs_2");
        assert_eq!(
            github.requests(),
            [
                "POST /app/installations/42/access_tokens",
                "POST /app/installations/42/access_tokens"
            ]
        );
    }

    #[tokio::test]
    async fn an_app_not_installed_on_the_repository_says_how_to_install_it() {
        let github = AppStandIn::start(3600);
        let app = installation(&github, "acme/other");
        let err = app.token().await.unwrap_err().to_string();
        assert!(
            err.contains("answered 404") && err.contains("install the App"),
            "{err}"
        );
    }
}
