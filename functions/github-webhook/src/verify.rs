//! The signature check: the one step between reading a request and trusting it. The header is
//! checked against the cached webhook secrets, and once more against a fresh copy (a rotated
//! secret), at most as often as the cache allows.

use flavor_ci::webhook::signature::{self, SignatureError};
use flavor_ci_aws::secrets::SecretError;

use crate::edge::{HttpRequest, Verified};
use crate::outcome::{Fault, Refusal};
use crate::ports::{Deps, Ports};

/// `request`, once its `X-Hub-Signature-256` matches one of the webhook secrets.
pub(crate) async fn verify<P: Ports>(
    deps: &Deps<P>,
    request: HttpRequest,
) -> Result<Verified, Refusal> {
    let header = request.header("x-hub-signature-256");
    let unauthorized = |e: SignatureError| Refusal::new(Fault::Unauthenticated, e.to_string());
    // A missing or malformed header is rejected before any secret is read.
    let missing = if request.header("x-hub-signature").is_some() {
        SignatureError::OnlySha1
    } else {
        SignatureError::Missing
    };
    let header = header.ok_or(missing).map_err(unauthorized)?;
    signature::parse(header).map_err(unauthorized)?;
    let unavailable = |e: SecretError| {
        Refusal::withheld(
            Fault::Unavailable,
            "cannot verify the delivery right now; redeliver it later",
            format!("cannot verify the delivery: {e}"),
        )
    };
    let secrets = deps.webhook_secrets.get().await.map_err(unavailable)?;
    let checked = match signature::verify(&secrets, &request.body, Some(header)) {
        Ok(_) => Ok(()),
        Err(SignatureError::Mismatch) => {
            match deps
                .webhook_secrets
                .refresh(&secrets)
                .await
                .map_err(unavailable)?
            {
                Some(fresh) => signature::verify(&fresh, &request.body, Some(header))
                    .map(|_| ())
                    .map_err(unauthorized),
                None => Err(unauthorized(SignatureError::Mismatch)),
            }
        }
        Err(e) => Err(unauthorized(e)),
    };
    checked.map(|()| Verified(request))
}
